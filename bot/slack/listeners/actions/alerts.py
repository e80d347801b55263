"""Buttons on a health alert: Probe now, Acknowledge, Run on the board's fallback route.

Probe now checks the route at once and tells the clicker what it found (a recovery or a new
failure then shows on the alert as usual). Acknowledge records who took the incident and stops
reminders. Run on <fallback> runs the latest request that failed on the route (or a short test
prompt) on the healthy route the board suggests, in the alert's thread.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.core.markup import escape
from bot.core.replay import request_from_run
from bot.core.requests import CheckedRequest, RequestValidator, build_request
from bot.core.runs import RunService
from bot.health.monitor import HealthMonitor
from bot.slack import messages
from bot.slack.access import Access
from bot.slack.generate import GenerateFlow, SlackAsk
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks
from routes.errors import InvalidRequest
from storage.runlog import as_utc
from storage.tables import Incident, Run

TEST_PROMPT = "A red kite flying over sand dunes at noon, photographed from below"
# A failed request this long before the incident opened still counts as the one to redo.
FAILED_RUN_WINDOW = timedelta(hours=1)


def register(
    app: AsyncApp,
    *,
    monitor: HealthMonitor,
    runs: RunService,
    validator: RequestValidator,
    access: Access,
    flow: GenerateFlow,
    poster: SlackPoster,
    tasks: BackgroundTasks,
) -> None:
    oncall = OnCall(monitor, runs, validator, access, flow, poster)

    async def clicked(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        handler = {
            "alert_probe": oncall.probe,
            "alert_ack": oncall.acknowledge,
            "alert_fallback": oncall.fallback,
        }[str(action.get("action_id"))]
        tasks.spawn(handler(body, str(action.get("value") or ""), context), name="alert-action")

    for action_id in ("alert_probe", "alert_ack", "alert_fallback"):
        app.action(action_id)(clicked)


class OnCall:
    def __init__(
        self,
        monitor: HealthMonitor,
        runs: RunService,
        validator: RequestValidator,
        access: Access,
        flow: GenerateFlow,
        poster: SlackPoster,
    ) -> None:
        self.monitor = monitor
        self.runs = runs
        self.validator = validator
        self.access = access
        self.flow = flow
        self.poster = poster

    async def probe(self, body: dict[str, Any], route_id: str, context: AsyncBoltContext) -> None:
        check = await self.monitor.probe_now(route_id)
        if check is None:
            text = f"`{route_id}` is not probed (its probe is off, or it is not configured)."
        elif check.ok:
            text = f"Probed `{route_id}` just now: ok in {check.latency_s or 0:.2f} s."
        else:
            text = (
                f"Probed `{route_id}` just now: failed ({check.error_class or 'error'}): "
                f"{escape(check.error_message or 'no detail')}"
            )
        await self.poster.ephemeral(context.channel_id, context.user_id, text)

    async def acknowledge(
        self, body: dict[str, Any], incident_id: str, context: AsyncBoltContext
    ) -> None:
        user = str(context.user_id or "unknown")
        incident = (
            await self.monitor.acknowledge(int(incident_id), user)
            if incident_id.isdigit()
            else None
        )
        if incident is None:
            await self.poster.ephemeral(context.channel_id, user, "That incident is not on file.")
        elif incident.acknowledged_by != user:
            await self.poster.ephemeral(
                context.channel_id,
                user,
                f"<@{incident.acknowledged_by}> already acknowledged `{incident.route_id}`.",
            )

    async def fallback(self, body: dict[str, Any], value: str, context: AsyncBoltContext) -> None:
        channel, user = context.channel_id, context.user_id
        alert_ts = (body.get("message") or {}).get("ts")
        incident_id, _, fallback = value.partition(":")
        incident = (
            await asyncio.to_thread(self.monitor.health.incident, int(incident_id))
            if incident_id.isdigit()
            else None
        )
        if not channel or not alert_ts or incident is None:
            await self.poster.ephemeral(channel, user, "That incident is not on file.")
            return
        states = await self.monitor.states()
        if states.get(fallback) != "healthy":
            suggestion = await self.monitor.fallback(incident.route_id)
            instead = f" The board now suggests `{suggestion}`." if suggestion else ""
            await self.poster.ephemeral(
                channel, user, f"`{fallback}` is not healthy right now, so nothing ran.{instead}"
            )
            return
        try:
            checked, source = await self._request(incident, fallback)
            refusal = self.access.channel_refusal(checked.route_ids, channel)
            if refusal:
                raise InvalidRequest(refusal)
        except InvalidRequest as exc:
            await self.poster.ephemeral(channel, user, str(exc), thread_ts=alert_ts)
            return
        if source is not None:
            what = (
                f"ran run #{source.id}'s request (failed on `{incident.route_id}`) on the "
                f"fallback `{fallback}`"
            )
        else:
            what = f"ran a test prompt on the fallback `{fallback}` (for `{incident.route_id}`)"
        clicked_at = (body.get("actions") or [{}])[0].get("action_ts")
        ask = SlackAsk(
            team=context.team_id,
            channel=channel,
            user=user,
            response_url=context.response_url,
            request_key=f"fallback:{incident.id}:{fallback}:{clicked_at}",
            thread_ts=alert_ts,
            headline=messages.headline(user, [fallback], what),
        )
        await self.flow.start(ask, checked)

    async def _request(
        self, incident: Incident, fallback: str
    ) -> tuple[CheckedRequest, Run | None]:
        """The latest request that failed on the incident's route, if the fallback can serve
        it; else a short test prompt."""
        failed = await asyncio.to_thread(
            self.runs.runlog.recent, 20, route_id=incident.route_id, status="failed"
        )
        since = as_utc(incident.opened_at) - FAILED_RUN_WINDOW
        for run in failed:
            if run.source in ("slack", "cli") and as_utc(run.created_at) >= since:
                request = await asyncio.to_thread(
                    request_from_run, self.runs.runlog, self.runs.assets, run
                )
                try:
                    return self.validator.check([fallback], request), run
                except InvalidRequest:
                    break  # the fallback cannot serve that request: a test prompt instead
        return self.validator.check([fallback], build_request({"prompt": TEST_PROMPT})), None
