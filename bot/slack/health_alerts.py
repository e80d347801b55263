"""Health events as on-call messages in ALERT_CHANNEL (or log lines when there is none).

An alert names the route's owner (mentioning its on-call user group), says what failed and what
to check first (from the route board's verify lists; organization verification is recognised
with the route errors' own detection and hint), and offers Probe now, Acknowledge and Run on
the board's fallback. When its incidents change the alert is rewritten: the status line changes,
the diagnosis stays. Reminders, kind changes and the recovery are replies in its thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from bot.core.markup import escape
from bot.health.events import (
    AlertLine,
    HealthEvent,
    KindChanged,
    Reopened,
    RoutesDown,
    StillDown,
)
from bot.health.notices import minutes_between
from bot.slack import blocks
from bot.slack.messages import (
    ALERT_ICON,
    diagnosis,
    duration,
    verify_hint,
)
from bot.slack.poster import NotInChannel, SlackPoster

log = logging.getLogger(__name__)


def alert_text(lines: Sequence[AlertLine], now: datetime, slo: float) -> str:
    """The alert as plain text: the notification, and the whole alert where there are no blocks."""
    event = RoutesDown(tuple(lines), now, slo)
    body = []
    for line in lines:
        inc = line.incident
        oncall = f" <!subteam^{line.oncall}>" if line.oncall else ""
        body.append(
            f"• `{inc.route_id}` ({inc.kind}, board row `{line.board or 'none'}`){oncall}: "
            f"{diagnosis(inc, line.last_success, now)}\n"
            f"   Verify: {verify_hint(inc.error_class, inc.last_error, inc.kind, slo)}"
        )
    return blocks.alert_heading(event) + "\n" + "\n".join(body)


def render(event: HealthEvent) -> str:
    """The text of one event, posted as an alert or a reply in its thread."""
    if isinstance(event, RoutesDown):
        return alert_text(event.lines, event.now, event.latency_slo_seconds)
    if isinstance(event, KindChanged):
        inc = event.incident
        return f"`{inc.route_id}` is now {inc.kind}: {escape(inc.last_error or 'no detail')}"
    if isinstance(event, Reopened):
        inc = event.incident
        return (
            f"{ALERT_ICON.get(inc.kind, '')} `{inc.route_id}` is {inc.kind} again: "
            f"{escape(inc.last_error or 'no detail')} (same incident: it recovered less than "
            "repeat_alert_minutes ago)."
        )
    if isinstance(event, StillDown):
        parts = [
            f"`{i.route_id}` still {i.kind} after "
            f"{duration(minutes_between(i.opened_at, event.now))}: "
            f"{escape((i.last_error or 'no detail').rstrip('.'))}"
            for i in event.incidents
        ]
        return "Reminder: " + "; ".join(parts) + ". Acknowledge the alert to stop reminders."
    inc = event.incident
    return (
        f":white_check_mark: `{inc.route_id}` recovered: resolved, down for "
        f"{duration(event.minutes)}. The diagnosis stays on the alert above."
    )


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
        shown = blocks.alert_blocks(event) if isinstance(event, RoutesDown) else None
        try:
            return await self.poster.post(
                self._channel, render(event), blocks=shown, thread_ts=thread
            )
        except NotInChannel:
            log.warning("cannot post health alerts in %s: invite the bot there", self._channel)
            return None

    async def restate(self, channel: str, ts: str, event: RoutesDown) -> None:
        if not await self.poster.update(
            channel, ts, render(event), blocks=blocks.alert_blocks(event)
        ):
            log.warning("could not edit the health alert %s", ts)


class LoggedAlerts:
    """No alert channel (or no Slack token): each event is one warning in the log."""

    @property
    def channel(self) -> str | None:
        return None

    async def post(self, event: HealthEvent, thread: str | None = None) -> str | None:
        log.warning("health alert (no ALERT_CHANNEL): %s", render(event))
        return None

    async def restate(self, channel: str, ts: str, event: RoutesDown) -> None:
        return None
