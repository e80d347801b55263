"""A checked request in Slack: a live scoreboard, concurrent runs, one message per result.

Every entry point (the command, buttons, modals, the edit shortcut, an alert's fallback button)
hands a checked request here after its own channel check; user groups and spend caps are checked
here, after ack and before any provider call. The scoreboard (the parent message, or a reply
when the run starts inside a thread) says who asked and shows each route's status as it changes;
each route's result is one thread message (image, context line, actions) posted as soon as it
arrives, so a slow or failing route never holds the others; a comparison ends with the verdict
and a montage on the scoreboard itself. The acceptance checks run after each image is posted,
off the event loop; their line is added to the result's message in place once they are in, and
to the scoreboard's route line with the montage.

Every way a request can end resolves its scoreboard and tells the requester: results, a
refusal, the run log being unreachable (one sentence, nothing run), the bot stopping (the routes
cut short say interrupted) or a failure of our own (logged whole, the scoreboard says so).
Where the bot may no longer post in the channel, results reach the requester through the
command's response_url.
"""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace

from PIL import Image

from bot.checks import AcceptanceChecks, CheckReport
from bot.core.admission import RunSlots, Ticket
from bot.core.comparisons import Tile, fit_tile, render_montage
from bot.core.markup import escape
from bot.core.requests import CheckedRequest
from bot.core.runs import RunOrigin, RunOutcome, RunService
from bot.core.spend import Reservation
from bot.slack import blocks, messages
from bot.slack.access import Access, Refused
from bot.slack.blocks import ShownImage
from bot.slack.messages import INTERRUPTED
from bot.slack.poster import BLOCK_IMAGE_TYPES, INVITE_HINT, NotInChannel, SlackImage, SlackPoster
from bot.slack.scoreboard import EditPacer, RouteStatus, Scoreboard
from routes.capabilities import find_unsupported
from routes.media import extension_for
from routes.model import ImageRequest
from routes.pacing import give_way
from storage.db import DatabaseUnavailable
from storage.runlog import DuplicateRequest
from storage.tables import Run

log = logging.getLogger(__name__)
# A queued request's place ("n ahead") is looked at this often; the scoreboard edit it causes
# is paced with every other scoreboard's (Slack's chat.update limit).
QUEUE_UPDATES_EVERY = 5.0


@dataclass(frozen=True)
class SlackAsk:
    """Who asked, where, and how to reach them if the channel is closed to the bot."""

    team: str | None
    channel: str
    user: str | None
    response_url: str | None
    # Unique per user action (trigger id, action ts): retried deliveries reuse it.
    request_key: str | None = None
    thread_ts: str | None = None  # run inside an existing thread (buttons, edits, alerts)
    # Who started it and how, when not a plain /imagegen ("<@U> re-ran run #12 on `demo`").
    headline: str | None = None


@dataclass
class FlowResult:
    parent_ts: str | None
    outcomes: list[RunOutcome]


@dataclass(frozen=True)
class Posted:
    """A result message in a thread: its ts and the images it shows (to rewrite it in place)."""

    ts: str | None
    shown: list[ShownImage]
    note: str | None = None


@dataclass
class _Progress:
    """One request's runs so far: written to the run log, and finished (posted)."""

    started: list[Run] = field(default_factory=list)
    finished: list[RunOutcome] = field(default_factory=list)


class GenerateFlow:
    def __init__(
        self,
        runs: RunService,
        poster: SlackPoster,
        access: Access,
        checks: AcceptanceChecks | None = None,
        pacer: EditPacer | None = None,
        *,
        slots: RunSlots | None = None,
        queue_updates_every: float = QUEUE_UPDATES_EVERY,
    ) -> None:
        self.runs = runs
        self.poster = poster
        self.access = access
        self.checks = checks
        self.pacer = pacer or EditPacer()
        self.slots = slots or RunSlots()
        self.queue_updates_every = queue_updates_every

    async def start(self, ask: SlackAsk, checked: CheckedRequest) -> FlowResult:
        """Admit the request (user groups, spend caps held for its calls), then post the
        scoreboard, run every route and post each result as it finishes.

        Past this process's in-flight limit the request waits its turn: its routes show
        "queued (n ahead)" on the scoreboard, updated in place until the runs start."""
        route_ids, request = checked.route_ids, checked.request
        try:
            hold = await self.access.admit(
                route_ids, ask.user, request, request_key=ask.request_key
            )
        except Refused as exc:
            # Nothing is sent to a provider; only the requester sees why.
            await self._tell_requester(ask, str(exc))
            return FlowResult(None, [])
        except DuplicateRequest:
            # Slack delivered this request again: the first delivery has its own scoreboard.
            log.info("ignoring a repeated request (%s)", ask.request_key)
            return FlowResult(None, [])
        except DatabaseUnavailable:
            await self._tell_requester(ask, messages.RUN_LOG_DOWN)
            return FlowResult(None, [])
        ticket = self.slots.ticket(len(route_ids))
        try:
            return await self._admitted(ask, checked, hold, ticket)
        finally:
            ticket.release()
            await self.access.spend.release(hold)

    async def _tell_requester(self, ask: SlackAsk, sentence: str) -> None:
        if not await self.poster.ephemeral(
            ask.channel, ask.user, sentence, thread_ts=ask.thread_ts
        ):
            await self.poster.respond(ask.response_url, sentence)

    async def _admitted(
        self, ask: SlackAsk, checked: CheckedRequest, hold: Reservation, ticket: Ticket
    ) -> FlowResult:
        route_ids, request = checked.route_ids, checked.request
        board = Scoreboard(
            self.poster,
            self.pacer,
            ask.channel,
            ask.headline or messages.headline(ask.user, route_ids),
            request.prompt,
            route_ids,
            thread_ts=ask.thread_ts,
        )
        if not ticket.admitted:
            for rid in route_ids:
                board.queued(rid, ticket.ahead())
        if not await self._open(ask, board):
            return FlowResult(None, [])
        thread = ask.thread_ts or board.ts
        assert thread is not None
        if not ticket.admitted:
            await self._wait_turn(ticket, board, route_ids)
        origin = RunOrigin(
            source="slack",
            slack_team=ask.team,
            slack_channel=ask.channel,
            slack_user=ask.user,
            slack_thread_ts=thread,
            # The scoreboard, so that whoever settles these runs later can resolve it.
            slack_parent_ts=board.ts,
            slack_response_url=ask.response_url,
            group_id=uuid.uuid4().hex[:16] if len(route_ids) > 1 else None,
        )
        progress = _Progress()
        try:
            outcomes, tiles, checking = await self._run_all(
                ask, checked, origin, thread, board, hold, progress
            )
        except asyncio.CancelledError:
            # The process is stopping and its grace period is over: the runs still in flight
            # are interrupted (RunService marked them); say so before going.
            await _bounded(self._resolve(ask, thread, board, progress, None))
            raise
        except Exception:  # a bug of ours must still resolve the scoreboard (logged whole)
            log.exception("the /imagegen flow for %s failed", ask.request_key)
            await _bounded(self._resolve(ask, thread, board, progress, messages.FLOW_FAILED))
            return FlowResult(board.ts, progress.finished)
        # The runs are done and posted: their slots go to the next request now, not after the
        # scoreboard's last edit (paced by Slack's chat.update limit) or the montage.
        ticket.release()
        # Nor their images (`one` returns each outcome without them once posted): what follows
        # needs the runs and the montage's tiles, fitted as the runs finished. A burst of
        # requests waits minutes for its last edits; holding each run's image meanwhile took
        # one process to 3.7 GB over 1,400 requests.
        progress.finished.clear()
        await board.finish([o.run for o in outcomes])  # the verdict, at once
        if len(outcomes) > 1:
            ready = [await tiles[o.run.route_id] for o in outcomes if o.run.route_id in tiles]
            montage = await self.share_montage(outcomes, ready)
            reports = {rid: await job for rid, job in checking.items()}
            if montage is not None or any(r.rows for r in reports.values()):
                await board.complete(montage, reports)
        else:
            for job in checking.values():
                await job
        return FlowResult(board.ts, outcomes)

    async def _resolve(
        self,
        ask: SlackAsk,
        thread_ts: str,
        board: Scoreboard,
        progress: _Progress,
        failure: str | None,
    ) -> None:
        """The scoreboard's last word when the request could not finish normally, and the
        thread (or the requester) told: each run cut short by name, or the failure."""
        ok = sum(1 for o in progress.finished if o.ok)
        status = failure or messages.interrupted_status(ok, len(board.route_ids))
        await board.cut_short([o.run for o in progress.finished], status)
        done = {o.run.id for o in progress.finished}
        cut_short = [run for run in progress.started if run.id not in done]
        notes = [INTERRUPTED.format(run_id=r.id, route_id=r.route_id) for r in cut_short]
        if failure is not None or not notes:
            notes = [status]
        for note in notes:
            await self.poster.post(
                ask.channel, note, thread_ts=thread_ts, fallback=ask.response_url
            )

    async def _wait_turn(self, ticket: Ticket, board: Scoreboard, route_ids: Sequence[str]) -> None:
        """Wait for run slots; the scoreboard says how many requests are ahead (its edits are
        paced with every other scoreboard's), then that the runs started."""

        async def moved(ahead: int) -> bool:
            for rid in route_ids:
                board.queued(rid, ahead)
            return True

        await ticket.wait(moved, every=self.queue_updates_every)
        for rid in route_ids:
            board.set_status(rid, RouteStatus("running"))

    async def _open(self, ask: SlackAsk, board: Scoreboard) -> bool:
        """Post the scoreboard; False (the user told why) when Slack would not take it."""
        try:
            ts = await board.open()
        except NotInChannel:
            # No provider call: the user could not see the result anyway.
            await self.poster.respond(ask.response_url, INVITE_HINT)
            return False
        if ts is None:
            sorry = "Slack did not accept my message; nothing was run. Try again."
            if not await self.poster.respond(ask.response_url, sorry):
                await self.poster.ephemeral(ask.channel, ask.user, sorry, thread_ts=ask.thread_ts)
            return False
        return True

    async def _run_all(
        self,
        ask: SlackAsk,
        checked: CheckedRequest,
        origin: RunOrigin,
        thread_ts: str,
        board: Scoreboard,
        hold: Reservation,
        progress: _Progress,
    ) -> tuple[
        list[RunOutcome], dict[str, asyncio.Future[Tile]], dict[str, asyncio.Future[CheckReport]]
    ]:
        """Every route at once; each result is posted as it arrives, then checked (`progress`
        knows which runs started and which finished). A route whose request key was already
        run (a repeated delivery) is left out."""
        route_ids = checked.route_ids
        tiles: dict[str, asyncio.Future[Tile]] = {}
        checking: dict[str, asyncio.Future[CheckReport]] = {}

        async def one(route_id: str) -> RunOutcome | None:
            key = f"{ask.request_key}:{route_id}" if ask.request_key else None
            # From its answer arriving to its result posted, the run takes one of the few
            # places of this process's lane (routes.pacing).
            with self.slots.lane.turn():
                return await finish(route_id, key)

        async def finish(route_id: str, key: str | None) -> RunOutcome | None:
            try:
                outcome = await self.runs.run(
                    route_id,
                    checked.request,
                    replace(origin, request_key=key),
                    on_row=progress.started.append,
                )
            except DuplicateRequest as dup:
                log.info("ignoring a repeated request (run #%s already exists)", dup.run_id)
                return None
            finally:
                # The run log has the real cost now (or nothing was spent): the hold goes.
                await self.access.spend.release(hold, route_id)
            progress.finished.append(outcome)
            if len(route_ids) > 1:
                # Decode and scale this route's montage tile while slower routes still run.
                tiles[route_id] = asyncio.ensure_future(asyncio.to_thread(fit_tile, _tile(outcome)))
            # Uploading is the heaviest thing a run does on the event loop: requests being
            # acknowledged right now go first (routes.pacing).
            await give_way()
            posted = await self.post_outcome(
                ask.channel,
                thread_ts,
                outcome,
                self.route_ids,
                checked.request,
                response_url=ask.response_url,
            )
            board.finished(outcome.run)
            if self.checks is not None and outcome.ok:
                checking[route_id] = asyncio.ensure_future(
                    self.check_result(ask.channel, posted, outcome, checked)
                )
            return outcome.without_images()  # posted; the checks hold theirs until checked

        results = await asyncio.gather(*(one(rid) for rid in route_ids))
        return [o for o in results if o is not None], tiles, checking

    async def check_result(
        self, channel: str, posted: Posted, outcome: RunOutcome, checked: CheckedRequest
    ) -> CheckReport:
        """Check a posted result and add the checks line to its message in place."""
        assert self.checks is not None
        run = outcome.run
        images = [i.data for i in outcome.images]
        del outcome  # only the images are needed, and only until checked
        report = await self.checks.check(run, images, checked.request)
        del images
        if posted.ts is not None and report.rows and run.id is not None:
            # A verdict may have been given while the checks ran: keep its line.
            verdicts = await asyncio.to_thread(self.runs.runlog.verdicts, run.id)
            await self.poster.update(
                channel,
                posted.ts,
                messages.result_text(run),
                blocks=blocks.result_blocks(
                    run,
                    posted.shown,
                    self.route_ids,
                    note=posted.note,
                    checks=report,
                    verdict=messages.verdict_line(run.id, verdicts),
                ),
            )
        return report

    @property
    def route_ids(self) -> list[str]:
        return list(self.runs.executors)

    async def post_outcome(
        self,
        channel: str,
        thread_ts: str,
        outcome: RunOutcome,
        route_ids: Sequence[str],
        request: ImageRequest | None = None,
        *,
        response_url: str | None = None,
    ) -> Posted:
        """One message for one route's result: its images, context line and actions. Where the
        bot may no longer post in the channel, the requester gets the result's text through
        `response_url` instead."""
        run = outcome.run
        if run.id is None:
            # Never logged (the run log was down): nothing for buttons to act on.
            text = messages.run_failure(run)
            ts = await self.poster.post(channel, text, thread_ts=thread_ts, fallback=response_url)
            return Posted(ts, [])
        if not outcome.images:
            failure = blocks.failure_blocks(run, route_ids, self._supporting(run, request))
            if outcome.kept:
                failure = blocks.checked(
                    [*failure, blocks.context(f":floppy_disk: {outcome.kept}")]
                )
            ts = await self.poster.post(
                channel,
                messages.result_text(run),
                blocks=failure,
                thread_ts=thread_ts,
                fallback=response_url,
                fallback_text=f"{messages.run_failure(run)}\n{messages.failure_specs(run)}",
            )
            return Posted(ts, [])
        note = None
        if run.status != "succeeded":  # images made but not stored: say so, still show them
            note = f":warning: {escape(run.error_message or 'not stored')}"
        if outcome.kept:  # waiting in the spool for a store: stored automatically later
            note = (note + "\n" if note else "") + f":floppy_disk: {outcome.kept}"
        images = await asyncio.to_thread(_displayable, outcome)
        file_ids = await self.poster.share_images(images)
        shown = [ShownImage(fid, img.alt) for fid, img in zip(file_ids, images, strict=False)]
        if not shown:
            note = (note + "\n" if note else "") + (
                f":warning: The image could not be uploaded to Slack; it is kept as run "
                f"#{run.id} (`imageroute runs`)."
            )
        ts = await self.poster.post(
            channel,
            messages.result_text(run),
            blocks=blocks.result_blocks(run, shown, route_ids, note=note),
            thread_ts=thread_ts,
            # With images shown, a refused post is retried as a classic upload (which has
            # its own way to the requester); without, the requester hears it from here.
            fallback=None if shown else response_url,
            fallback_text=f"{messages.run_context(run)}\n{messages.run_specs(run)}\n{note or ''}",
        )
        if ts is None and shown:
            # Slack would not show the files in an image block: share them into the thread
            # the classic way, with the same actions underneath, rather than lose them.
            await self.poster.upload(
                channel,
                thread_ts,
                [(img.filename, img.data, img.title) for img in images],
                f"{messages.run_context(run)}\n{messages.run_specs(run)}\n{note or ''}".strip(),
                fallback=response_url,
            )
            ts = await self.poster.post(
                channel,
                messages.result_text(run),
                blocks=blocks.result_blocks(run, [], route_ids, note=note),
                thread_ts=thread_ts,
            )
            return Posted(ts, [], note)
        return Posted(ts, shown, note)

    def _supporting(self, run: Run, request: ImageRequest | None) -> list[str]:
        """Other configured routes that can serve the same request (every option as asked),
        for a failure's next step; none where another route would not help."""
        if run.error_class in ("bad_request", "moderation", "storage", "interrupted"):
            return []
        others = [r for r in self.route_ids if r != run.route_id]
        if request is None:  # a run collected after a restart: its options are in the log
            return others
        return [
            r for r in others if not find_unsupported(request, self.runs.route(r).capabilities())
        ]

    async def share_montage(
        self, outcomes: Sequence[RunOutcome], tiles: Sequence[Tile] | None = None
    ) -> ShownImage | None:
        """The side-by-side image, uploaded for the scoreboard; None when it could not be."""
        if tiles is None or len(tiles) != len(outcomes):
            tiles = [_tile(o) for o in outcomes]
        png = await asyncio.to_thread(render_montage, tiles)
        alt = messages.trim(
            "Side by side: "
            + "; ".join(f"{o.run.route_id} ({messages.tile_caption(o.run)})" for o in outcomes)
            + ". Prompt: "
            + messages.flat(outcomes[0].run.prompt, 300),
            messages.ALT_TEXT_LIMIT,
        )
        ids = await self.poster.share_images(
            [SlackImage("comparison.png", png, "Side by side", alt)]
        )
        return ShownImage(ids[0], alt) if ids else None


def _tile(outcome: RunOutcome) -> Tile:
    return Tile(
        label=outcome.run.route_id,
        image=outcome.images[0].data if outcome.images else None,
        note=f"failed: {outcome.run.error_class}" if not outcome.images else "",
        caption=messages.tile_caption(outcome.run),
    )


def _displayable(outcome: RunOutcome) -> list[SlackImage]:
    """The run's images as files an image block can show (PNG, JPEG or GIF: other formats,
    such as WebP, are shown as a PNG copy; the original stays in the asset store)."""
    run = outcome.run
    count = len(outcome.images)
    out = []
    for i, image in enumerate(outcome.images):
        data, mime = image.data, image.mime
        if mime not in BLOCK_IMAGE_TYPES:
            with Image.open(io.BytesIO(data)) as picture:
                buffer = io.BytesIO()
                picture.save(buffer, format="PNG")
            data, mime = buffer.getvalue(), "image/png"
        out.append(
            SlackImage(
                filename=f"{run.route_id}-run{run.id}-{i}.{extension_for(mime)}",
                data=data,
                title=f"{run.route_id} #{run.id}",
                alt=messages.alt_text(run, i, count),
            )
        )
    return out


async def _bounded(coro: Awaitable[object], seconds: float = 10.0) -> None:
    """Last words that must go out even from a cancelled task, but not hold it forever."""
    try:
        await asyncio.wait_for(asyncio.shield(asyncio.ensure_future(coro)), seconds)
    except (TimeoutError, asyncio.CancelledError):
        log.warning("could not finish telling Slack how the request ended")
