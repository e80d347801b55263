"""Health events as on-call messages in ALERT_CHANNEL (or log lines when there is none).

The texts say what to check first, from the route board's verify lists; organization
verification is recognised, and explained, with the route errors' own detection and hint."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from bot.core.markup import escape
from bot.health.events import (
    AlertLine,
    HealthEvent,
    KindChanged,
    Recovered,
    Reopened,
    RoutesDown,
    StillDown,
)
from bot.health.notices import minutes_between
from bot.slack.poster import NotInChannel, SlackPoster
from routes.failures import looks_like_org_verification, org_verification_hint
from storage.runlog import as_utc

log = logging.getLogger(__name__)

ICON = {"failing": ":red_circle:", "degraded": ":large_yellow_circle:"}
CHECK_FIRST = {
    "auth": "Check the route's API key or credentials, the billing owner's account and model "
    "access.",
    "rate_limit": "Check the account's rate limits and quota tier, and the route's "
    "max_concurrency.",
    "timeout": "Check the provider's status page and the route's timeout_seconds.",
    "provider_down": "Check the provider's status page; retries are already applied.",
    "quota": "Check the billing owner's credit or budget and the provider's quota for the model; "
    "waiting does not lift it.",
}


def verify_hint(error_class: str | None, message: str | None, kind: str, slo: float) -> str:
    """What to check first, from the route board's verify lists."""
    if looks_like_org_verification(message or ""):
        return f"Organization verification: {org_verification_hint()}."
    if kind == "degraded":
        return (
            f"Probes are slower than latency_slo_seconds ({slo:g} s): check the provider's "
            "status page and the route's load."
        )
    return CHECK_FIRST.get(
        error_class or "", "Check the route's configuration and the provider's status page."
    )


def ago(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "never"
    minutes = int((now - as_utc(then)).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 120:
        return f"{minutes} min ago"
    return f"{minutes // 60} h ago"


def alert_text(lines: Sequence[AlertLine], now: datetime, slo: float) -> str:
    if len(lines) == 1:
        only = lines[0].incident
        head = f"{ICON[only.kind]} Route `{only.route_id}` is {only.kind}"
    else:
        ids = ", ".join(f"`{line.incident.route_id}`" for line in lines)
        head = (
            f":rotating_light: {len(lines)} routes are down or degraded in one probe round "
            f"(provider outage?): {ids}"
        )
    body = []
    for line in lines:
        inc = line.incident
        rid = f" Request id `{escape(inc.request_id)}`." if inc.request_id else ""
        body.append(
            f"• `{inc.route_id}` ({inc.kind}, board row `{line.board or 'none'}`): "
            f"{inc.error_class or 'error'}: {escape(inc.last_error or 'no detail')}.{rid} "
            f"Last success: {ago(line.last_success, now)}.\n"
            f"   Verify: {verify_hint(inc.error_class, inc.last_error, inc.kind, slo)}"
        )
    return head + "\n" + "\n".join(body)


def render(event: HealthEvent) -> str:
    """The message for one event, posted as an alert or a reply in its thread."""
    if isinstance(event, RoutesDown):
        return alert_text(event.lines, event.now, event.latency_slo_seconds)
    if isinstance(event, KindChanged):
        inc = event.incident
        return f"`{inc.route_id}` is now {inc.kind}: {escape(inc.last_error or 'no detail')}"
    if isinstance(event, Reopened):
        inc = event.incident
        return (
            f"{ICON.get(inc.kind, '')} `{inc.route_id}` is {inc.kind} again: "
            f"{escape(inc.last_error or 'no detail')} "
            "(same incident: it recovered less than repeat_alert_minutes ago)."
        )
    if isinstance(event, StillDown):
        parts = [
            f"`{i.route_id}` still {i.kind} after {minutes_between(i.opened_at, event.now)} min: "
            f"{escape(i.last_error or 'no detail')}"
            for i in event.incidents
        ]
        return "Reminder: " + "; ".join(parts)
    inc = event.incident
    return f":white_check_mark: `{inc.route_id}` recovered: resolved, down for {event.minutes} min."


def restatement(event: RoutesDown | Recovered) -> str:
    """The alert message itself, rewritten to the incident's current state."""
    if isinstance(event, Recovered):
        inc = event.incident
        return (
            f":white_check_mark: `{inc.route_id}` was {inc.kind}: resolved, "
            f"down for {event.minutes} min."
        )
    return render(event)


class SlackAlerts:
    """Posts health events into the alert channel; a Slack failure leaves them undelivered."""

    def __init__(self, poster: SlackPoster, channel: str) -> None:
        self.poster = poster
        self._channel = channel

    @property
    def channel(self) -> str | None:
        return self._channel

    async def post(self, event: HealthEvent, thread: str | None = None) -> str | None:
        # The poster turns Slack errors into None: the alert is then retried next round.
        try:
            return await self.poster.post(self._channel, render(event), thread_ts=thread)
        except NotInChannel:
            log.warning("cannot post health alerts in %s: invite the bot there", self._channel)
            return None

    async def restate(self, channel: str, ts: str, event: RoutesDown | Recovered) -> None:
        if not await self.poster.update(channel, ts, restatement(event)):
            log.warning("could not edit the health alert %s", ts)


class LoggedAlerts:
    """No alert channel (or no Slack token): each event is one warning in the log."""

    @property
    def channel(self) -> str | None:
        return None

    async def post(self, event: HealthEvent, thread: str | None = None) -> str | None:
        log.warning("health alert (no ALERT_CHANNEL): %s", render(event))
        return None

    async def restate(self, channel: str, ts: str, event: RoutesDown | Recovered) -> None:
        return None
