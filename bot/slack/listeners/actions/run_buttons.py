"""Re-run, Try another route, Compare on all routes and Run details under a result.

A button run is the logged request again, in its thread, under its own scoreboard saying who
started it ("@user re-ran run #12 on `demo`"); refusals are private, in the thread.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cachetools import TTLCache
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.core.replay import request_from_run
from bot.core.requests import RequestValidator
from bot.core.runs import RunService
from bot.core.visibility import may_act_on
from bot.slack import messages
from bot.slack.access import Access
from bot.slack.generate import GenerateFlow, SlackAsk
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks
from routes.errors import InvalidRequest
from storage.tables import Run

log = logging.getLogger(__name__)

CLICK_WINDOW_SECONDS = 10.0
GONE = "That run is no longer in the log."
NOT_HERE = "That button belongs to a run of another conversation: use it where the run is."


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
    # compare_all: result messages posted before it moved into the overflow menu.
    for action_id in ("rerun", "try_route", "compare_all", "result_more"):
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
        action_id, value = _choice(action)
        message_ts = (body.get("message") or {}).get("ts")
        click = f"{action_id}:{message_ts}:{context.user_id}:{value}"
        if click in self._clicks:
            log.info("ignoring a repeated click on %s", action_id)
            return
        self._clicks[click] = True
        self.tasks.spawn(self.rerun(body, action, context), name=f"action:{action_id}")

    async def rerun(
        self, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        user, channel = context.user_id, context.channel_id
        if not channel:
            return
        action_id, value = _choice(action)
        message = body.get("message") or {}
        thread = message.get("thread_ts") or message.get("ts")
        run_id = value.split(":", 1)[0]
        runlog = self.runs.runlog
        source = await asyncio.to_thread(runlog.get, int(run_id)) if run_id.isdigit() else None
        if source is None:
            await self.poster.ephemeral(channel, user, GONE, thread_ts=thread)
            return
        if not may_act_on(source, channel, message.get("thread_ts")):
            # A value naming a run of another conversation: its prompt stays where it was.
            log.warning("refused a button naming run %s from %s", source.id, channel)
            await self.poster.ephemeral(channel, user, NOT_HERE, thread_ts=thread)
            return
        if action_id == "details":
            await self.poster.ephemeral(
                channel, user, messages.run_details(source), thread_ts=thread
            )
            return
        try:
            route_ids = self._targets(action_id, source.route_id, value)
            refusal = self.access.channel_refusal(route_ids, channel)
            if refusal:
                raise InvalidRequest(refusal)
            request = await asyncio.to_thread(request_from_run, runlog, self.runs.assets, source)
            checked = self.validator.check(route_ids, request)
        except InvalidRequest as exc:
            await self.poster.ephemeral(channel, user, str(exc), thread_ts=thread)
            return
        ask = SlackAsk(
            team=context.team_id,
            channel=channel,
            user=user,
            response_url=context.response_url,
            # The same payload delivered twice carries the same action_ts.
            request_key=(f"act:{action_id}:{message.get('ts')}:{action.get('action_ts')}:{user}"),
            thread_ts=source.slack_thread_ts or thread,
            headline=_headline(user, action_id, source, route_ids),
        )
        await self.flow.start(ask, checked)

    def _targets(self, action_id: str, source_route: str, value: str) -> list[str]:
        """The routes a button runs on: the run's own, the one picked, or every configured
        route (refused like `route=all` when that is more than one comparison allows)."""
        if action_id == "rerun":
            route_ids = [source_route]
        elif action_id == "try_route":
            route_ids = [value.split(":", 1)[1]] if ":" in value else []
        else:
            route_ids = list(self.validator.select("all"))
        kept = [r for r in route_ids if r in self.validator.routes]
        if not kept:
            raise InvalidRequest("That route is not configured any more.")
        return kept


def _choice(action: dict[str, Any]) -> tuple[str, str]:
    """The action and its value: a button's, the option a select menu's user picked, or the
    overflow menu's item ("compare_all:12", "details:12")."""
    action_id = str(action.get("action_id") or "")
    value = str(action.get("value") or (action.get("selected_option") or {}).get("value") or "")
    if action_id == "result_more" and ":" in value:
        action_id, value = value.split(":", 1)
    return action_id, value


def _headline(user: str | None, action_id: str, source: Run, route_ids: list[str]) -> str:
    if action_id == "rerun":
        what = f"re-ran run #{source.id} on `{source.route_id}`"
    elif action_id == "try_route":
        what = f"tried run #{source.id}'s prompt on `{route_ids[0]}`"
    else:
        what = f"compared run #{source.id}'s prompt on all {len(route_ids)} routes"
    return messages.headline(user, route_ids, what)
