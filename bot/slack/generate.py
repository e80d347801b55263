"""A checked request in Slack: parent message, concurrent runs, one thread of results.

Every entry point (the command, buttons, the compare modal, the edit shortcut) hands a checked
request here after its own channel check; user groups and spend caps are checked here, after ack
and before any provider call. Each route's result is posted as soon as it arrives, so a slow or
failing route never holds the others; a comparison then gets a summary table and a montage.
The acceptance checks run after each image is posted, off the event loop, and their line is
added to the result's message (and the comparison summary) in place once they are in.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.checks import AcceptanceChecks, CheckReport
from bot.core.comparisons import Tile, fit_tile, render_montage
from bot.core.requests import CheckedRequest
from bot.core.runs import RunOrigin, RunOutcome, RunService
from bot.core.spend import Reservation
from bot.slack import blocks, messages
from bot.slack.access import Access, Refused
from bot.slack.poster import INVITE_HINT, NotInChannel, SlackPoster
from routes.media import extension_for
from storage.runlog import DuplicateRequest
from storage.tables import Run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackAsk:
    """Who asked, where, and how to reach them if the channel is closed to the bot."""

    team: str | None
    channel: str
    user: str | None
    response_url: str | None
    # Unique per user action (trigger id, action ts): retried deliveries reuse it.
    request_key: str | None = None
    thread_ts: str | None = None  # run inside an existing thread (buttons, edits)


@dataclass
class FlowResult:
    parent_ts: str | None
    outcomes: list[RunOutcome]


class GenerateFlow:
    def __init__(
        self,
        runs: RunService,
        poster: SlackPoster,
        access: Access,
        checks: AcceptanceChecks | None = None,
    ) -> None:
        self.runs = runs
        self.poster = poster
        self.access = access
        self.checks = checks

    async def start(self, ask: SlackAsk, checked: CheckedRequest) -> FlowResult:
        """Post the parent (or use the given thread), run every route, post as they finish."""
        route_ids, request = checked.route_ids, checked.request
        try:
            hold = await self.access.admit(
                route_ids, ask.user, request, request_key=ask.request_key
            )
        except Refused as exc:
            # Nothing is sent to a provider; only the requester sees why.
            if not await self.poster.ephemeral(ask.channel, ask.user, str(exc)):
                await self.poster.respond(ask.response_url, str(exc))
            return FlowResult(None, [])
        except DuplicateRequest:
            # Slack delivered this request again: the first delivery has its own parent.
            log.info("ignoring a repeated request (%s)", ask.request_key)
            return FlowResult(None, [])
        try:
            return await self._admitted(ask, checked, hold)
        finally:
            await self.access.spend.release(hold)

    async def _admitted(
        self, ask: SlackAsk, checked: CheckedRequest, hold: Reservation
    ) -> FlowResult:
        route_ids, request = checked.route_ids, checked.request
        text = messages.parent_text(ask.user, request.prompt, route_ids)
        parent_ts = ask.thread_ts or await self._open_thread(ask, text, len(route_ids))
        if parent_ts is None:
            return FlowResult(None, [])
        origin = RunOrigin(
            source="slack",
            slack_team=ask.team,
            slack_channel=ask.channel,
            slack_user=ask.user,
            slack_thread_ts=parent_ts,
            slack_response_url=ask.response_url,
            group_id=uuid.uuid4().hex[:16] if len(route_ids) > 1 else None,
        )
        outcomes, tiles, checking = await self._run_all(ask, checked, origin, parent_ts, hold)
        if not outcomes:
            return FlowResult(parent_ts, [])
        comparing: asyncio.Future[str | None] | None = None
        if len(outcomes) > 1:
            ready = [await tiles[o.run.route_id] for o in outcomes if o.run.route_id in tiles]
            comparing = asyncio.ensure_future(
                self.post_comparison(ask.channel, parent_ts, outcomes, ready)
            )
        if ask.thread_ts is None:
            ok = sum(1 for o in outcomes if o.ok)
            done = (
                f"Done: {ok} of {len(outcomes)} route(s) returned an image. Results in the thread."
            )
            await self.poster.update(
                ask.channel, parent_ts, text, blocks=blocks.parent_blocks(text, done)
            )
        # The summary and the parent's "Done" go out together: neither waits for the other,
        # and neither waits for the checks.
        summary_ts = await comparing if comparing is not None else None
        reports = {rid: await job for rid, job in checking.items()}
        if summary_ts is not None and any(r.rows for r in reports.values()):
            by_run = {
                o.run.id or 0: reports[o.run.route_id]
                for o in outcomes
                if o.run.route_id in reports
            }
            summary = messages.comparison_summary([o.run for o in outcomes], by_run)
            await self.poster.update(ask.channel, summary_ts, summary)
        return FlowResult(parent_ts, outcomes)

    async def _open_thread(self, ask: SlackAsk, text: str, routes: int) -> str | None:
        """The parent message's ts, or None (the user told why) when Slack would not take it."""
        status = f"Running on {routes} route(s)…"
        try:
            parent_ts = await self.poster.post(
                ask.channel, text, blocks=blocks.parent_blocks(text, status)
            )
        except NotInChannel:
            # No provider call: the user could not see the result anyway.
            await self.poster.respond(ask.response_url, INVITE_HINT)
            return None
        if parent_ts is None:
            await self.poster.respond(
                ask.response_url, "Slack did not accept my message; nothing was run. Try again."
            )
        return parent_ts

    async def _run_all(
        self,
        ask: SlackAsk,
        checked: CheckedRequest,
        origin: RunOrigin,
        parent_ts: str,
        hold: Reservation,
    ) -> tuple[
        list[RunOutcome], dict[str, asyncio.Future[Tile]], dict[str, asyncio.Future[CheckReport]]
    ]:
        """Every route at once; each result is posted as it arrives, then checked. A route
        whose request key was already run (a repeated delivery) is left out."""
        route_ids = checked.route_ids
        tiles: dict[str, asyncio.Future[Tile]] = {}
        checking: dict[str, asyncio.Future[CheckReport]] = {}

        async def one(route_id: str) -> RunOutcome | None:
            key = f"{ask.request_key}:{route_id}" if ask.request_key else None
            try:
                outcome = await self.runs.run(
                    route_id, checked.request, replace(origin, request_key=key)
                )
            except DuplicateRequest as dup:
                log.info("ignoring a repeated request (run #%s already exists)", dup.run_id)
                return None
            finally:
                # The run log has the real cost now (or nothing was spent): the hold goes.
                await self.access.spend.release(hold, route_id)
            if len(route_ids) > 1:
                # Decode and scale this route's montage tile while slower routes still run.
                tiles[route_id] = asyncio.ensure_future(asyncio.to_thread(fit_tile, _tile(outcome)))
            actions_ts = await self.post_outcome(ask.channel, parent_ts, outcome, route_ids)
            if self.checks is not None and outcome.ok:
                checking[route_id] = asyncio.ensure_future(
                    self.check_result(ask.channel, actions_ts, outcome, checked)
                )
            return outcome

        results = await asyncio.gather(*(one(rid) for rid in route_ids))
        return [o for o in results if o is not None], tiles, checking

    async def check_result(
        self,
        channel: str,
        message_ts: str | None,
        outcome: RunOutcome,
        checked: CheckedRequest,
    ) -> CheckReport:
        """Check a posted result and add the checks line to its message in place."""
        assert self.checks is not None
        run = outcome.run
        report = await self.checks.check(run, [i.data for i in outcome.images], checked.request)
        if message_ts is not None and report.rows:
            await self.poster.update(
                channel,
                message_ts,
                f"Actions for run #{run.id} · checks: {report.text()}",
                blocks=blocks.checked_result_actions(run, list(self.runs.executors), report),
            )
        return report

    async def post_outcome(
        self, channel: str, thread_ts: str, outcome: RunOutcome, route_ids: Sequence[str]
    ) -> str | None:
        """Post one route's result in the thread; returns the ts of its buttons' message (where
        its checks line goes once the checks are in)."""
        run = outcome.run
        all_routes = list(self.runs.executors)
        if outcome.images:
            context = messages.run_context(run)
            if run.status != "succeeded":  # images made but not stored: say so, still show them
                context += f"\n:warning: {run.error_message}"
            files = [
                (
                    f"{run.route_id}-run{run.id}-{i}.{extension_for(img.mime)}",
                    img.data,
                    f"{run.route_id} #{run.id}",
                )
                for i, img in enumerate(outcome.images)
            ]
            uploaded = await self.poster.upload(channel, thread_ts, files, context)
            if not uploaded:
                await self.poster.post(
                    channel,
                    f"{context}\nThe image could not be uploaded to Slack; it is kept "
                    f"as run #{run.id} (`imageroute runs`).",
                    thread_ts=thread_ts,
                )
        else:
            await self.poster.post(channel, messages.run_failure(run), thread_ts=thread_ts)
        return await self.poster.post(
            channel,
            f"Actions for run #{run.id}",
            blocks=blocks.result_actions(run, all_routes),
            thread_ts=thread_ts,
        )

    async def post_comparison(
        self,
        channel: str,
        thread_ts: str,
        outcomes: Sequence[RunOutcome],
        tiles: Sequence[Tile] | None = None,
    ) -> str | None:
        """The summary table and the montage; returns the summary's ts (checks are added to
        it once they are in)."""
        runs: list[Run] = [o.run for o in outcomes]
        if tiles is None or len(tiles) != len(outcomes):
            tiles = [_tile(o) for o in outcomes]
        # Compose the montage while the summary table is being posted.
        rendering = asyncio.ensure_future(asyncio.to_thread(render_montage, tiles))
        summary_ts = await self.poster.post(
            channel, messages.comparison_summary(runs), thread_ts=thread_ts
        )
        montage = await rendering
        await self.poster.upload(
            channel,
            thread_ts,
            [("comparison.png", montage, "Side by side")],
            "Side by side: " + ", ".join(o.run.route_id for o in outcomes),
        )
        return summary_ts


def _tile(outcome: RunOutcome) -> Tile:
    return Tile(
        label=outcome.run.route_id,
        image=outcome.images[0].data if outcome.images else None,
        note=f"failed: {outcome.run.error_class}" if not outcome.images else "",
    )
