"""The Slack app: listeners for commands and actions, wired to runs and the advisor.

Every listener validates what it can in memory, calls `ack()` (3 s limit), and only then does
slow work in a background task. Nothing slow runs before ack: authorization is answered from a
cached auth.test, and the Web API client's retry handlers are only used after ack.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from advisor import advise
from bot import imageroute_cmd
from bot.commands import parse_generate
from bot.generate_flow import GenerateFlow, SlackAsk
from bot.runtime import Runtime
from bot.slack_client import NotInChannel, SlackPoster
from routes.errors import InvalidRequest

log = logging.getLogger(__name__)

IMAGEGEN_USAGE = (
    'Usage: `/imagegen route=<id> prompt="..." [size=1024x1024] [quality=low|medium|high] '
    "[n=1..4] [background=transparent|opaque|auto] [format=png|jpeg|webp] [seed=N]`. "
    "Compare with `route=a,b`, `route=all` or `route=board:<row>`."
)


class BackgroundTasks:
    """Keeps references to running tasks (so they are not garbage collected) and lets
    shutdown wait for them: a run in flight is finished, not dropped."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, seconds: float) -> None:
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


class SlackBot:
    def __init__(
        self,
        runtime: Runtime,
        client: AsyncWebClient,
        *,
        signing_secret: str | None,
        auth: AuthorizeResult,
    ) -> None:
        self.runtime = runtime
        self.client = client
        self.auth = auth
        self.tasks = BackgroundTasks()
        self.poster = SlackPoster(client, runtime.redactor)
        self.flow = GenerateFlow(runtime.runs, self.poster)
        self.app = AsyncApp(
            client=client,
            signing_secret=signing_secret or "",
            request_verification_enabled=bool(signing_secret),
            authorize=self._make_authorize(),
            raise_error_for_unhandled_request=False,
        )
        self.subcommands: dict[str, SubcommandHandler] = {}
        self._register()

    @classmethod
    async def create(
        cls, runtime: Runtime, client: AsyncWebClient, *, signing_secret: str | None
    ) -> SlackBot:
        """Builds the bot after one auth.test, whose answer serves every request's authorization."""
        response = await client.auth_test()
        auth = AuthorizeResult.from_auth_test_response(
            auth_test_response=response,
            bot_token=client.token,
        )
        return cls(runtime, client, signing_secret=signing_secret, auth=auth)

    def _make_authorize(self) -> Callable[..., Awaitable[AuthorizeResult]]:
        # Bolt passes arguments by name, so this must be a plain function, not a method.
        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            return self.auth

        return authorize

    # -- listeners -----------------------------------------------------------------------
    def _register(self) -> None:
        app = self.app
        app.command("/imagegen")(self.on_imagegen)
        app.command("/imageroute")(self.on_imageroute)
        # `/imageroute <word> ...` subcommands; features add theirs (health, bench).
        self.subcommands["routes"] = self._routes
        self.subcommands["stats"] = self._stats
        self.subcommands["runs"] = self._runs
        for action in ("rerun", "try_route", "compare_all", "advice_compare"):
            app.action(action)(self.on_run_action)

    async def on_imagegen(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        text = str(body.get("text") or "")
        if text.strip().lower() in ("", "help"):
            await ack(response_type="ephemeral", text=IMAGEGEN_USAGE)
            return
        runtime = self.runtime
        try:
            command = parse_generate(
                text,
                runtime.route_ids,
                runtime.board_rows,
                runtime.config.limits.max_routes_per_comparison,
            )
            runtime.runs.check(command.route_ids, command.request)
        except InvalidRequest as exc:
            await ack(response_type="ephemeral", text=str(exc))
            return
        await ack()
        ask = SlackAsk(
            team=body.get("team_id"),
            channel=str(body.get("channel_id")),
            user=body.get("user_id"),
            response_url=body.get("response_url"),
            request_key=f"cmd:{body.get('trigger_id')}" if body.get("trigger_id") else None,
        )
        self.tasks.spawn(self.flow.start(ask, command.route_ids, command.request), name="imagegen")

    async def on_imageroute(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        text = " ".join(str(body.get("text") or "").split())
        word = text.lower()
        if word in ("", "help") or (
            " " not in word and word not in self.subcommands and not advise(word).matched
        ):
            # An unknown subcommand (or nothing) gets help, not an error.
            await ack(
                response_type="ephemeral",
                blocks=imageroute_cmd.help_blocks(),
                text="imageroute help",
            )
            return
        await ack()
        self.tasks.spawn(self._imageroute_reply(body, word, text), name="imageroute")

    async def _imageroute_reply(self, body: dict[str, Any], word: str, text: str) -> None:
        channel = str(body.get("channel_id"))
        handler = self.subcommands.get(word.split(" ", 1)[0])
        if handler is not None:
            summary, blocks = await handler(body, text)
        else:
            summary, blocks = await asyncio.to_thread(imageroute_cmd.answer, self.runtime, text)
        try:
            await self.poster.post(channel, summary, blocks=blocks)
        except NotInChannel:
            await self.poster.respond(
                body.get("response_url"), summary + "\n" + _blocks_text(blocks), public=True
            )

    async def _routes(self, _body: dict[str, Any], _text: str) -> Reply:
        return "Configured routes", imageroute_cmd.routes_blocks(self.runtime)

    async def _stats(self, _body: dict[str, Any], _text: str) -> Reply:
        runlog = self.runtime.runlog
        all_time = await asyncio.to_thread(runlog.route_stats)
        week = await asyncio.to_thread(runlog.route_stats, imageroute_cmd.since_week())
        verdicts = await asyncio.to_thread(runlog.verdict_counts)
        blocks = imageroute_cmd.stats_blocks(all_time, week, self.runtime.route_ids, verdicts)
        return "Route stats", blocks

    async def _runs(self, _body: dict[str, Any], _text: str) -> Reply:
        runs = await asyncio.to_thread(self.runtime.runlog.recent, 15)
        links = await self._permalinks(runs)
        return "Recent runs", imageroute_cmd.runs_blocks(runs, links)

    async def _permalinks(self, runs: list[Any]) -> dict[int, str]:
        links: dict[int, str] = {}
        for run in runs:
            if run.slack_channel and run.slack_thread_ts and run.id is not None:
                try:
                    response = await self.client.chat_getPermalink(
                        channel=run.slack_channel, message_ts=run.slack_thread_ts
                    )
                    links[run.id] = str(response.get("permalink"))
                except Exception as exc:
                    log.debug("no permalink for run %s: %s", run.id, exc)
        return links

    async def on_run_action(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]
    ) -> None:
        await ack()
        self.tasks.spawn(self._run_action(body, action), name=f"action:{action.get('action_id')}")

    async def _run_action(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        runtime = self.runtime
        action_id = action.get("action_id")
        user = (body.get("user") or {}).get("id")
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        message = body.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts")
        if not channel:
            return
        if action_id == "advice_compare":
            route_ids = [r for r in str(action.get("value", "")).split(",") if r in runtime.routes]
            request = None
            thread_ts = None
        else:
            value = str(
                action.get("value") or (action.get("selected_option") or {}).get("value") or ""
            )
            run_id = value.split(":", 1)[0]
            source = (
                await asyncio.to_thread(runtime.runlog.get, int(run_id))
                if run_id.isdigit()
                else None
            )
            if source is None:
                await self.poster.ephemeral(channel, user, "That run is no longer in the log.")
                return
            from bot.replay import request_from_run

            request = await asyncio.to_thread(request_from_run, runtime, source)
            if action_id == "rerun":
                route_ids = [source.route_id] if source.route_id in runtime.routes else []
            elif action_id == "try_route":
                route_ids = [value.split(":", 1)[1]] if ":" in value else []
            else:
                route_ids = list(runtime.routes)[: runtime.config.limits.max_routes_per_comparison]
            thread_ts = source.slack_thread_ts or thread_ts
        route_ids = [r for r in route_ids if r in runtime.routes]
        if not route_ids:
            await self.poster.ephemeral(channel, user, "That route is not configured any more.")
            return
        if request is None:
            await self.poster.ephemeral(
                channel,
                user,
                "Type `/imagegen route="
                + ",".join(route_ids)
                + ' prompt="..."` to compare these routes.',
            )
            return
        try:
            runtime.runs.check(route_ids, request)
        except InvalidRequest as exc:
            await self.poster.ephemeral(channel, user, str(exc))
            return
        key = f"act:{action_id}:{message.get('ts')}:{action.get('action_ts')}:{user}"
        ask = SlackAsk(
            team=(body.get("team") or {}).get("id"),
            channel=channel,
            user=user,
            response_url=body.get("response_url"),
            request_key=key,
            thread_ts=thread_ts,
        )
        await self.flow.start(ask, route_ids, request)

    # -- lifecycle -----------------------------------------------------------------------
    async def notify_interrupted(self, runs: list[Any]) -> None:
        """Tell each interrupted run's thread (or its requester) that it did not finish."""
        for run in runs:
            text = (
                f":warning: Run #{run.id} on `{run.route_id}` was interrupted because the bot "
                "restarted before it finished. Run it again with the Re-run button or /imagegen."
            )
            if run.slack_channel and run.slack_thread_ts:
                await self.poster.post(run.slack_channel, text, thread_ts=run.slack_thread_ts)
            elif run.slack_response_url:
                await self.poster.respond(run.slack_response_url, text)


def _blocks_text(blocks: list[dict[str, Any]]) -> str:
    parts = []
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(str(text.get("text", "")))
    return "\n".join(parts)


Reply = tuple[str, list[dict[str, Any]]]
# (command body, full text) -> (fallback text, blocks) posted in the channel.
SubcommandHandler = Callable[[dict[str, Any], str], Awaitable[Reply]]
