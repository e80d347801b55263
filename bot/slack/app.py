"""The Slack surface of one process: Bolt's AsyncApp with its listeners, client and tasks.

Nothing slow runs before a listener's ack: authorization is answered from one cached
auth.test, the Web API client's retry handlers are only used after ack, and every listener
(events too) returns as soon as it has acked and spawned its work, which is when Bolt answers.
Each listener module receives exactly the parts of the product it uses (see bot.wiring.runtime).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.recovery import orphans_to_settle, settle_orphan, stored_task
from bot.slack import listeners, messages
from bot.slack.access import Access
from bot.slack.bench_thread import BenchThread
from bot.slack.generate import GenerateFlow
from bot.slack.listeners import Product
from bot.slack.messages import (
    COLLECTED,
    INTERRUPTED,
    INTERRUPTED_TASK,
    run_context,
    run_failure,
)
from bot.slack.middleware import Next, plain
from bot.slack.poster import SlackPoster
from bot.slack.scoreboard import Scoreboard
from bot.slack.tasks import BackgroundTasks
from storage.tables import Run

log = logging.getLogger(__name__)


class ListenedApp(AsyncApp):
    """An AsyncApp that remembers what it listens for, so tests can hold it against
    bot/manifest.yml and the two cannot drift apart."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Without a name, Bolt takes the caller's file name from inspect.stack(), which looks up
        # the module of every frame among all loaded modules: a quarter of a second at start-up
        # once the provider SDKs are loaded.
        kwargs.setdefault("name", "imageroute")
        super().__init__(*args, **kwargs)
        self.registered: dict[str, set[str]] = {}

    def _note(self, kind: str, name: object) -> None:
        if isinstance(name, str):
            self.registered.setdefault(kind, set()).add(name)

    def command(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        self._note("command", command)
        return super().command(command, *args, **kwargs)

    def action(self, constraints: Any, *args: Any, **kwargs: Any) -> Any:
        self._note("action", constraints)
        return super().action(constraints, *args, **kwargs)

    def view(self, constraints: Any, *args: Any, **kwargs: Any) -> Any:
        self._note("view", constraints)
        return super().view(constraints, *args, **kwargs)

    def shortcut(self, constraints: Any, *args: Any, **kwargs: Any) -> Any:
        self._note("shortcut", constraints)
        return super().shortcut(constraints, *args, **kwargs)

    def event(self, event: Any, *args: Any, **kwargs: Any) -> Any:
        self._note("event", event)
        return super().event(event, *args, **kwargs)


class SlackBot:
    def __init__(
        self,
        product: Product,
        client: AsyncWebClient,
        poster: SlackPoster,
        *,
        signing_secret: str | None,
        auth: AuthorizeResult,
        api_url: str,
    ) -> None:
        self.client = client
        self.poster = poster
        self.monitor = product.monitor
        self.tasks = BackgroundTasks()
        self.runlog = product.runs.runlog
        # Set when the process is stopping: new work is answered "restarting", not started.
        self.draining = False
        self.app = ListenedApp(
            client=client,
            signing_secret=signing_secret or "",
            request_verification_enabled=bool(signing_secret),
            authorize=_cached_authorize(auth),
            raise_error_for_unhandled_request=False,
            # Every listener acks, hands its work to a background task and returns, so Bolt
            # can answer Slack as soon as the listener returns. (By default Bolt runs the
            # listener as a task and polls every 10 ms for the ack: at 200 requests in flight
            # that polling alone costs the event loop 20,000 wake-ups a second.)
            process_before_response=True,
        )
        # Objects Bolt calls directly (bot.slack.middleware): no argument injection per request.
        self.app.middleware(plain(skip_event_retries))
        self.app.middleware(plain(self._refuse_while_draining))
        self.app.middleware(plain(self.tasks.answering.middleware))
        access = Access(product.validator.routes, product.spend, client)
        flow = GenerateFlow(
            product.runs,
            poster,
            access,
            product.checks,
            slots=product.slots,
        )
        self.runs = product.runs
        self.flow = flow
        self.slots = product.slots
        bench = BenchThread(
            product.bench_runner, access, product.spend, poster, product.runs.assets
        )
        listeners.register(
            self.app,
            product=product,
            access=access,
            flow=flow,
            bench=bench,
            poster=poster,
            tasks=self.tasks,
            api_url=api_url,
        )

    @classmethod
    async def create(
        cls,
        product: Product,
        client: AsyncWebClient,
        poster: SlackPoster,
        *,
        signing_secret: str | None,
        api_url: str,
    ) -> SlackBot:
        """Builds the bot after one auth.test, whose answer serves every request's authorization.

        The Web API client gets one connection pool for the bot's life (close it with
        aclose()): without one, slack_sdk opens a session and a connection per call, and a run
        makes five or six calls."""
        if client.session is None:
            client.session = aiohttp.ClientSession()
        response = await client.auth_test()
        auth = AuthorizeResult.from_auth_test_response(
            auth_test_response=response, bot_token=client.token
        )
        return cls(
            product, client, poster, signing_secret=signing_secret, auth=auth, api_url=api_url
        )

    async def aclose(self) -> None:
        """Close the Web API client's connections (after the background tasks are drained)."""
        if self.client.session is not None and not self.client.session.closed:
            await self.client.session.close()

    @property
    def registered(self) -> Mapping[str, set[str]]:
        return self.app.registered

    async def recover(self, orphans: list[Run]) -> None:
        """Runs a stopped process left: each billed task the provider still keeps is collected
        in the background and its result posted in its thread like any run; the others are
        told at once that they were interrupted."""
        settling = await asyncio.to_thread(
            orphans_to_settle, self.runs.runlog, orphans, self.runs.executors
        )
        lost = [run for run in settling if stored_task(run) is None]
        for run in lost:
            self.runs.finished(run)  # reported once, by the process that claimed it
        await self.notify_interrupted(lost)
        for run in settling:
            if stored_task(run) is not None:
                self.tasks.spawn(self._collect(run), name=f"collect-run-{run.id}")

    async def _collect(self, run: Run) -> None:
        outcome = await settle_orphan(self.runs, run)
        if outcome is None:
            return  # another process took it and will post it
        final = outcome.run
        if final.status == "interrupted":
            await self.notify_interrupted([final])
            return
        text = COLLECTED.format(run_id=final.id, route_id=final.route_id, task_id=final.task_id)
        if final.slack_channel and final.slack_thread_ts:
            await self.poster.post(final.slack_channel, text, thread_ts=final.slack_thread_ts)
            await self.flow.post_outcome(
                final.slack_channel,
                final.slack_thread_ts,
                outcome,
                list(self.runs.executors),
                response_url=final.slack_response_url,
            )
            if final.slack_parent_ts:
                await self._resolve_parent(final.slack_channel, final.slack_parent_ts, final)
        elif final.slack_response_url:
            detail = run_context(final) if outcome.ok else run_failure(final)
            await self.poster.respond(final.slack_response_url, f"{text}\n{detail}")

    async def notify_interrupted(self, runs: list[Run]) -> None:
        """Tell each interrupted run's thread (or its requester) that it did not finish, and
        resolve the parent message its request opened."""
        for run in runs:
            text = INTERRUPTED.format(run_id=run.id, route_id=run.route_id)
            if run.task_id:
                text += INTERRUPTED_TASK.format(task_id=run.task_id)
            if run.slack_channel and run.slack_thread_ts:
                await self.poster.post(
                    run.slack_channel,
                    text,
                    thread_ts=run.slack_thread_ts,
                    fallback=run.slack_response_url,
                )
            elif run.slack_response_url:
                await self.poster.respond(run.slack_response_url, text)
        parents = {(r.slack_channel, r.slack_parent_ts): r for r in runs if r.slack_parent_ts}
        for (channel, ts), run in parents.items():
            assert channel is not None and ts is not None
            await self._resolve_parent(channel, ts, run)

    async def _resolve_parent(self, channel: str, ts: str, run: Run) -> None:
        """The scoreboard of a request its process could not finish, rewritten with how far
        it got: interrupted, or done once a billed task was collected after the restart."""
        group = [run]
        if run.group_id:
            group = await asyncio.to_thread(self.runlog.recent, 100, group_id=run.group_id)
            group.sort(key=lambda r: r.id or 0)
        if any(r.status == "pending" for r in group):
            return  # still being collected: its own end resolves the scoreboard
        route_ids = list(dict.fromkeys(r.route_id for r in group))
        ok = sum(1 for r in group if r.status == "succeeded")
        if any(r.status == "interrupted" for r in group):
            footer = messages.interrupted_status(ok, len(route_ids))
        else:
            footer = f"{messages.done_line(group)} · collected after a restart"
        board = Scoreboard(
            self.poster,
            self.flow.pacer,
            channel,
            messages.headline(run.slack_user, route_ids),
            run.prompt,
            route_ids,
        )
        board.ts = ts
        await board.finish(group, footer=footer)

    async def _refuse_while_draining(self, req: AsyncBoltRequest, next: Next) -> Any:
        """While the process stops, new work gets one sentence instead of a start: commands
        in their ack, buttons through their response_url, modals as a form error. Events
        (App Home) still read."""
        if not self.draining:
            return await next()
        body = req.body
        kind = body.get("type")
        if body.get("command"):
            answer = {"response_type": "ephemeral", "text": messages.RESTARTING}
            return _json_response(answer)
        if kind == "view_submission":
            first = next_input_block((body.get("view") or {}).get("blocks") or [])
            if first is not None:
                return _json_response(
                    {"response_action": "errors", "errors": {first: messages.RESTARTING}}
                )
            return BoltResponse(status=200, body="")
        if kind in ("block_actions", "message_action", "shortcut"):
            url = body.get("response_url")
            if url:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.poster.respond(url, messages.RESTARTING), 2.0)
            return BoltResponse(status=200, body="")
        return await next()


def next_input_block(view_blocks: list[dict[str, Any]]) -> str | None:
    """The block id of a modal's first input, where a form error can be shown."""
    for block in view_blocks:
        if block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    return None


def _json_response(body: dict[str, Any]) -> BoltResponse:
    return BoltResponse(
        status=200, body=json.dumps(body), headers={"content-type": "application/json"}
    )


def _cached_authorize(auth: AuthorizeResult) -> Callable[..., Awaitable[AuthorizeResult]]:
    # Bolt passes arguments by name, so this must be a plain function, not a method.
    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return auth

    return authorize


async def skip_event_retries(req: AsyncBoltRequest, next: Next) -> Any:
    """Events Slack re-delivers (X-Slack-Retry-Num) were already handled: acknowledge only.

    Nothing that starts a run comes as an event, so skipping a retry can lose no work."""
    retry = req.headers.get("x-slack-retry-num") or []
    if req.body.get("type") == "event_callback" and retry:
        log.info("ignoring Slack retry %s of event %s", retry[0], req.body.get("event_id"))
        return BoltResponse(status=200, body="")
    return await next()
