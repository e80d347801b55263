"""Re-run, Try another route and Compare on all routes: the logged request again, in its thread."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cachetools import TTLCache
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.core.replay import request_from_run
from bot.core.requests import RequestValidator
from bot.core.runs import RunService
from bot.slack.access import Access
from bot.slack.generate import GenerateFlow, SlackAsk
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks
from routes.errors import InvalidRequest

log = logging.getLogger(__name__)

CLICK_WINDOW_SECONDS = 10.0


def register(
    app: AsyncApp,
    *,
    runs: RunService,
    validator: RequestValidator,
    access: Access,
    flow: GenerateFlow,
    poster: SlackPoster,
    tasks: BackgroundTasks,
) -> None:
    buttons = RunButtons(runs, validator, access, flow, poster, tasks)
    for action_id in ("rerun", "try_route", "compare_all"):
        app.action(action_id)(buttons.clicked)


class RunButtons:
    def __init__(
        self,
        runs: RunService,
        validator: RequestValidator,
        access: Access,
        flow: GenerateFlow,
        poster: SlackPoster,
        tasks: BackgroundTasks,
    ) -> None:
        self.runs = runs
        self.validator = validator
        self.access = access
        self.flow = flow
        self.poster = poster
        self.tasks = tasks
        # A repeat of the same click within a few seconds is a double click, not a second run.
        self._clicks: TTLCache[str, bool] = TTLCache(1024, CLICK_WINDOW_SECONDS)

    async def clicked(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        message_ts = (body.get("message") or {}).get("ts")
        click = f"{action.get('action_id')}:{message_ts}:{context.user_id}:{_value(action)}"
        if click in self._clicks:
            log.info("ignoring a repeated click on %s", action.get("action_id"))
            return
        self._clicks[click] = True
        self.tasks.spawn(
            self.rerun(body, action, context), name=f"action:{action.get('action_id')}"
        )

    async def rerun(
        self, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        user, channel = context.user_id, context.channel_id
        if not channel:
            return
        value = _value(action)
        run_id = value.split(":", 1)[0]
        runlog = self.runs.runlog
        source = await asyncio.to_thread(runlog.get, int(run_id)) if run_id.isdigit() else None
        if source is None:
            await self.poster.ephemeral(channel, user, "That run is no longer in the log.")
            return
        request = await asyncio.to_thread(request_from_run, runlog, self.runs.assets, source)
        route_ids = self._targets(str(action.get("action_id")), source.route_id, value)
        refusal = self.access.channel_refusal(route_ids, channel)
        if not route_ids or refusal:
            sentence = refusal or "That route is not configured any more."
            await self.poster.ephemeral(channel, user, sentence)
            return
        try:
            checked = self.validator.check(route_ids, request)
        except InvalidRequest as exc:
            await self.poster.ephemeral(channel, user, str(exc))
            return
        message = body.get("message") or {}
        ask = SlackAsk(
            team=context.team_id,
            channel=channel,
            user=user,
            response_url=body.get("response_url"),
            # The same payload delivered twice carries the same action_ts.
            request_key=(
                f"act:{action.get('action_id')}:{message.get('ts')}:{action.get('action_ts')}:{user}"
            ),
            thread_ts=source.slack_thread_ts or message.get("thread_ts") or message.get("ts"),
        )
        await self.flow.start(ask, checked)

    def _targets(self, action_id: str, source_route: str, value: str) -> list[str]:
        """The routes a button runs on: the run's own, the one picked, or all (up to the
        comparison limit); routes no longer configured drop out."""
        if action_id == "rerun":
            route_ids = [source_route]
        elif action_id == "try_route":
            route_ids = [value.split(":", 1)[1]] if ":" in value else []
        else:
            route_ids = self.validator.route_ids[: self.validator.max_routes]
        return [r for r in route_ids if r in self.validator.routes]


def _value(action: dict[str, Any]) -> str:
    """A button's value, or the option a select menu's user picked."""
    return str(action.get("value") or (action.get("selected_option") or {}).get("value") or "")
