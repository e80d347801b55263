"""The Slack app: listeners for commands and actions, wired to runs and the advisor.

Every listener validates what it can in memory, calls `ack()` (3 s limit), and only then does
slow work in a background task. Nothing slow runs before ack: authorization is answered from a
cached auth.test, and the Web API client's retry handlers are only used after ack.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from advisor import advise
from bot import app_home, edits, imageroute_cmd, messages
from bot.commands import build_request, parse_generate
from bot.generate_flow import GenerateFlow, SlackAsk
from bot.guardrails import Guardrails
from bot.health import health_blocks
from bot.imageroute_cmd import section
from bot.replay import request_from_run
from bot.runtime import Runtime
from bot.slack_client import NotInChannel, SlackPoster
from routes.errors import InvalidRequest
from storage.tables import utcnow

log = logging.getLogger(__name__)

COMPARE_MODAL = "compare_modal"
CLICK_WINDOW_SECONDS = 10.0

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
        self._idle = asyncio.Event()
        self._idle.set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._done)
        return task

    async def idle(self) -> None:
        """Return once no task is running (at once when none is)."""
        await self._idle.wait()

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()
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
        self.guardrails = Guardrails(runtime, client)
        self.flow = GenerateFlow(runtime.runs, self.poster, self.guardrails)
        # Health alerts go through this bot's Slack client; `serve` schedules its rounds.
        self.monitor = runtime.monitor(self.poster)
        self.app = AsyncApp(
            client=client,
            signing_secret=signing_secret or "",
            request_verification_enabled=bool(signing_secret),
            authorize=self._make_authorize(),
            raise_error_for_unhandled_request=False,
        )
        self.subcommands: dict[str, SubcommandHandler] = {}
        self.health_provider: Callable[[], Awaitable[dict[str, str]]] | None = self.monitor.states
        self._clicks: dict[str, float] = {}
        self.registered: dict[str, set[str]] = {}
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
        # Every command, shortcut, action, view and event goes through `_listen`, which keeps a
        # list that tests compare with bot/manifest.yml so the two cannot drift apart.
        listen = self._listen
        listen("command", "/imagegen", self.on_imagegen)
        listen("command", "/imageroute", self.on_imageroute)
        # `/imageroute <word> ...` subcommands; features add theirs (health, bench).
        self.subcommands["routes"] = self._routes
        self.subcommands["stats"] = self._stats
        self.subcommands["runs"] = self._runs
        self.subcommands["health"] = self._health
        self.subcommands["bench"] = self._bench
        for action in ("rerun", "try_route", "compare_all"):
            listen("action", action, self.on_run_action)
        for action in ("verdict_pass", "verdict_fail"):
            listen("action", action, self.on_verdict)
        listen("action", "advice_compare", self.on_advice_compare)
        listen("view", COMPARE_MODAL, self.on_compare_submit)
        listen("shortcut", edits.SHORTCUT_ID, self.on_edit_shortcut)
        listen("view", edits.MODAL_ID, self.on_edit_submit)
        listen("event", "app_home_opened", self.on_home_opened)
        self.app.middleware(skip_event_retries)

    def _listen(self, kind: str, name: str, handler: Callable[..., Awaitable[None]]) -> None:
        register = {
            "command": self.app.command,
            "action": self.app.action,
            "view": self.app.view,
            "shortcut": self.app.shortcut,
            "event": self.app.event,
        }[kind]
        register(name)(handler)
        self.registered.setdefault(kind, set()).add(name)

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
        refusal = self.guardrails.check_channel(command.route_ids, body.get("channel_id"))
        if refusal:
            await ack(response_type="ephemeral", text=refusal)
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
            reply = await handler(body, text)
            if reply is None:
                return
            summary, blocks = reply
        else:
            health = await self.health_states()
            summary, blocks = await asyncio.to_thread(
                imageroute_cmd.answer, self.runtime, text, health
            )
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

    async def _bench(self, body: dict[str, Any], text: str) -> Reply | None:
        from bot.benchmark_slack import run_in_slack

        await run_in_slack(self, body, text)
        return None  # the benchmark posts its own parent message and thread

    async def _health(self, _body: dict[str, Any], _text: str) -> Reply:
        report = await self.monitor.report()
        now = utcnow()
        spend = await asyncio.to_thread(
            self.runtime.health.probe_spend, now - datetime.timedelta(days=7)
        )
        return "Route health", health_blocks(report, spend, now)

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

    def _first_click(self, key: str) -> bool:
        """False for a repeat of the same click within a few seconds (double clicks)."""
        now = time.monotonic()
        for old, seen in list(self._clicks.items()):
            if now - seen > CLICK_WINDOW_SECONDS:
                del self._clicks[old]
        if key in self._clicks:
            return False
        self._clicks[key] = now
        return True

    async def on_run_action(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]
    ) -> None:
        await ack()
        user = (body.get("user") or {}).get("id")
        message_ts = (body.get("message") or {}).get("ts")
        value = action.get("value") or (action.get("selected_option") or {}).get("value")
        if not self._first_click(f"{action.get('action_id')}:{message_ts}:{user}:{value}"):
            log.info("ignoring a repeated click on %s", action.get("action_id"))
            return
        self.tasks.spawn(self._run_action(body, action), name=f"action:{action.get('action_id')}")

    async def _run_action(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        runtime = self.runtime
        action_id = action.get("action_id")
        user = (body.get("user") or {}).get("id")
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        message = body.get("message") or {}
        if not channel:
            return
        value = str(action.get("value") or (action.get("selected_option") or {}).get("value") or "")
        run_id = value.split(":", 1)[0]
        source = (
            await asyncio.to_thread(runtime.runlog.get, int(run_id)) if run_id.isdigit() else None
        )
        if source is None:
            await self.poster.ephemeral(channel, user, "That run is no longer in the log.")
            return
        request = await asyncio.to_thread(request_from_run, runtime, source)
        if action_id == "rerun":
            route_ids = [source.route_id]
        elif action_id == "try_route":
            route_ids = [value.split(":", 1)[1]] if ":" in value else []
        else:
            route_ids = list(runtime.routes)[: runtime.config.limits.max_routes_per_comparison]
        route_ids = [r for r in route_ids if r in runtime.routes]
        if not route_ids:
            await self.poster.ephemeral(channel, user, "That route is not configured any more.")
            return
        try:
            runtime.runs.check(route_ids, request)
        except InvalidRequest as exc:
            await self.poster.ephemeral(channel, user, str(exc))
            return
        ask = SlackAsk(
            team=(body.get("team") or {}).get("id"),
            channel=channel,
            user=user,
            response_url=body.get("response_url"),
            # The same payload delivered twice carries the same action_ts.
            request_key=f"act:{action_id}:{message.get('ts')}:{action.get('action_ts')}:{user}",
            thread_ts=source.slack_thread_ts or message.get("thread_ts") or message.get("ts"),
        )
        await self.flow.start(ask, route_ids, request)

    async def on_verdict(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        self.tasks.spawn(self._verdict(body, action), name="verdict")

    async def _verdict(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        runlog = self.runtime.runlog
        user = str((body.get("user") or {}).get("id") or "unknown")
        channel = (body.get("channel") or {}).get("id")
        message = body.get("message") or {}
        value = str(action.get("value") or "")
        run = await asyncio.to_thread(runlog.get, int(value)) if value.isdigit() else None
        if run is None or run.id is None:
            await self.poster.ephemeral(channel, user, "That run is no longer in the log.")
            return
        survives = action.get("action_id") == "verdict_pass"
        await asyncio.to_thread(runlog.set_verdict, run.id, survives, user)
        verdicts = await asyncio.to_thread(runlog.verdicts, run.id)
        good = sum(1 for v in verdicts if v.survives)
        line = (
            f"Verdicts on run #{run.id}: {good} survives the next step, "
            f"{len(verdicts) - good} does not (latest: <@{user}>)."
        )
        if channel and message.get("ts"):
            blocks = [*messages.result_actions(run, self.runtime.route_ids), section(line)]
            await self.poster.update(channel, str(message["ts"]), line, blocks=blocks)

    async def on_advice_compare(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        route_ids = [r for r in str(action.get("value", "")).split(",") if r in self.runtime.routes]
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        metadata = {"channel": channel, "routes": route_ids}
        # trigger_id expires within seconds: open the modal right away.
        await client.views_open(trigger_id=body["trigger_id"], view=compare_modal(metadata))

    async def on_compare_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        metadata = json.loads(view.get("private_metadata") or "{}")
        values = view.get("state", {}).get("values", {})
        prompt = str(values.get("prompt", {}).get("value", {}).get("value") or "")
        route_ids = [r for r in metadata.get("routes", []) if r in self.runtime.routes]
        try:
            request = build_request({"prompt": prompt})
            if not route_ids:
                raise InvalidRequest("Those routes are not configured any more.")
            self.runtime.runs.check(route_ids, request)
        except InvalidRequest as exc:
            await ack(response_action="errors", errors={"prompt": str(exc)})
            return
        await ack()
        user = (body.get("user") or {}).get("id")
        ask = SlackAsk(
            team=(body.get("team") or {}).get("id"),
            channel=str(metadata.get("channel")),
            user=user,
            response_url=None,
            request_key=f"view:{view.get('id')}:{view.get('hash')}",
        )
        self.tasks.spawn(self.flow.start(ask, route_ids, request), name="compare")

    async def on_edit_shortcut(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id")
        user = (body.get("user") or {}).get("id")
        files = edits.image_files(message)
        routes = [rid for rid, route in self.runtime.routes.items() if route.capabilities().edits]
        problem = None
        if not files:
            problem = "That message has no image to edit: use the shortcut on a message with one."
        elif not routes:
            problem = "No configured route can edit images (add an openai or gemini-image route)."
        if problem:
            await self.poster.ephemeral(channel, user, problem)
            return
        metadata = {
            "channel": channel,
            "thread_ts": message.get("thread_ts") or message.get("ts"),
            "file": files[0].get("id"),
        }
        await client.views_open(
            trigger_id=body["trigger_id"], view=edits.edit_modal(routes, metadata)
        )

    async def on_edit_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        metadata = json.loads(view.get("private_metadata") or "{}")
        values = view.get("state", {}).get("values", {})
        route_id = str(
            (values.get("route", {}).get("value", {}).get("selected_option") or {}).get("value")
            or ""
        )
        instruction = str(values.get("instruction", {}).get("value", {}).get("value") or "")
        mask_files = values.get("mask", {}).get("value", {}).get("files") or []
        errors: dict[str, str] = {}
        if route_id not in self.runtime.routes:
            errors["route"] = "That route is not configured any more."
        elif mask_files and not self.runtime.routes[route_id].capabilities().mask:
            errors["mask"] = f"Route {route_id} does not take a mask."
        try:
            build_request({"prompt": instruction})
        except InvalidRequest as exc:
            errors["instruction"] = str(exc)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        self.tasks.spawn(
            self._edit(body, view, metadata, route_id, instruction, mask_files), name="edit"
        )

    async def _edit(
        self,
        body: dict[str, Any],
        view: dict[str, Any],
        metadata: dict[str, Any],
        route_id: str,
        instruction: str,
        mask_files: list[dict[str, Any]],
    ) -> None:
        channel = str(metadata.get("channel"))
        user = (body.get("user") or {}).get("id")
        token = str(self.client.token or "")
        api_url = self.runtime.settings.slack_api_url
        try:
            image = await edits.fetch_slack_image(self.client, metadata["file"], api_url, token)
            mask = None
            if mask_files:
                mask = await edits.fetch_slack_image(
                    self.client, str(mask_files[0].get("id")), api_url, token
                )
            request = dataclasses.replace(
                build_request({"prompt": instruction}), input_images=(image,), mask=mask
            )
            self.runtime.runs.check([route_id], request)
        except InvalidRequest as exc:
            await self.poster.ephemeral(channel, user, str(exc))
            return
        except SlackApiError as exc:
            await self.poster.ephemeral(
                channel, user, f"Slack would not give me that file ({exc.response.get('error')})."
            )
            return
        ask = SlackAsk(
            team=(body.get("team") or {}).get("id"),
            channel=channel,
            user=user,
            response_url=None,
            request_key=f"view:{view.get('id')}:{view.get('hash')}",
            thread_ts=metadata.get("thread_ts"),
        )
        await self.flow.start(ask, [route_id], request)

    async def on_home_opened(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab") not in (None, "home"):
            return
        runtime = self.runtime
        runlog = runtime.runlog
        since = imageroute_cmd.since_week()
        recent = await asyncio.to_thread(runlog.recent, 8)
        week = await asyncio.to_thread(runlog.route_stats, since)
        owners = await asyncio.to_thread(runlog.spend_by_owner, since)
        verdicts = await asyncio.to_thread(runlog.verdict_counts)
        health = await self.health_states()
        routes = [
            (rid, r.kind, r.config.board_row, r.config.billing_owner)
            for rid, r in runtime.routes.items()
        ]
        view = app_home.home_view(routes, health, recent, week, owners, verdicts)
        await client.views_publish(user_id=event["user"], view=view)

    async def health_states(self) -> dict[str, str]:
        """Route id -> health state; the health feature replaces this provider."""
        if self.health_provider is None:
            return {}
        return await self.health_provider()

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


def compare_modal(metadata: dict[str, Any]) -> dict[str, Any]:
    routes = ", ".join(metadata.get("routes", []))
    return {
        "type": "modal",
        "callback_id": COMPARE_MODAL,
        "private_metadata": json.dumps(metadata)[:3000],
        "title": {"type": "plain_text", "text": "Compare routes"},
        "submit": {"type": "plain_text", "text": "Run"},
        "blocks": [
            section(f"Runs one prompt on {routes} side by side in the channel."),
            {
                "type": "input",
                "block_id": "prompt",
                "label": {"type": "plain_text", "text": "Prompt"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": 3000,
                },
            },
        ],
    }


async def skip_event_retries(
    body: dict[str, Any], request: AsyncBoltRequest, next: Callable[[], Awaitable[Any]]
) -> Any:
    """Events Slack re-delivers (X-Slack-Retry-Num) were already handled: acknowledge only.

    Nothing that starts a run comes as an event, so skipping a retry can lose no work."""
    retry = request.headers.get("x-slack-retry-num") or []
    if body.get("type") == "event_callback" and retry:
        log.info("ignoring Slack retry %s of event %s", retry[0], body.get("event_id"))
        return BoltResponse(status=200, body="")
    return await next()


def _blocks_text(blocks: list[dict[str, Any]]) -> str:
    parts = []
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(str(text.get("text", "")))
    return "\n".join(parts)


Reply = tuple[str, list[dict[str, Any]]]
# (command body, full text) -> (fallback text, blocks) posted in the channel.
SubcommandHandler = Callable[[dict[str, Any], str], Awaitable[Reply | None]]
