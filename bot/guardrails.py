"""Who may run what, and how much may be spent: checked before any provider is called.

Channel limits are checked in memory before ack; user groups and spend caps need Slack and the
database, so they are checked right after ack, before the first provider call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from slack_sdk.web.async_client import AsyncWebClient

from bot.runtime import Runtime
from routes.pricing import list_price_estimate

log = logging.getLogger(__name__)

GROUP_CACHE_SECONDS = 300.0


def day_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def resets_in(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    left = day_start(now) + timedelta(days=1) - now
    hours, rest = divmod(int(left.total_seconds()), 3600)
    return f"resets at 00:00 UTC (in {hours} h {rest // 60} min)"


class Guardrails:
    def __init__(self, runtime: Runtime, client: AsyncWebClient | None) -> None:
        self.runtime = runtime
        self.client = client
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}

    def check_channel(self, route_ids: Sequence[str], channel: str | None) -> str | None:
        """In memory, before ack: a route limited to some channels refuses the others."""
        for rid in route_ids:
            allowed = self.runtime.routes[rid].config.allowed_channels
            if allowed and channel not in allowed:
                where = ", ".join(f"<#{c}>" for c in allowed)
                return f"Route `{rid}` can only be used in {where} (its allowed_channels)."
        return None

    async def check_after_ack(
        self, route_ids: Sequence[str], user: str | None, n: int = 1
    ) -> str | None:
        """User groups and daily spend caps; one sentence saying which limit, or None."""
        for rid in route_ids:
            groups = self.runtime.routes[rid].config.allowed_usergroups
            if groups and not await self._in_groups(user, groups):
                names = ", ".join(f"<!subteam^{g}>" for g in groups)
                return f"Route `{rid}` is limited to members of {names} (its allowed_usergroups)."
        since = day_start()
        runlog = self.runtime.runlog
        for rid in route_ids:
            cap = self.runtime.routes[rid].config.daily_spend_usd
            if cap is None:
                continue
            spent = await asyncio.to_thread(runlog.spend_since, since, route_id=rid)
            estimate = list_price_estimate(self.runtime.routes[rid], n) or 0.0
            if spent >= cap or spent + estimate > cap:
                return (
                    f"Route `{rid}` has reached its daily spend cap of ${cap:.2f} "
                    f"(${spent:.2f} spent today); it {resets_in()}."
                )
        user_cap = self.runtime.config.limits.user_daily_spend_usd
        if user_cap is not None and user:
            spent = await asyncio.to_thread(runlog.spend_since, since, slack_user=user)
            estimate = sum(
                list_price_estimate(self.runtime.routes[rid], n) or 0.0 for rid in route_ids
            )
            if spent >= user_cap or spent + estimate > user_cap:
                return (
                    f"You have reached your daily spend cap of ${user_cap:.2f} "
                    f"(${spent:.2f} spent today); it {resets_in()}."
                )
        return None

    async def _in_groups(self, user: str | None, groups: Sequence[str]) -> bool:
        if not user or self.client is None:
            return False
        for group in groups:
            cached = self._groups.get(group)
            if cached is None or time.monotonic() - cached[0] > GROUP_CACHE_SECONDS:
                try:
                    response = await self.client.usergroups_users_list(usergroup=group)
                    members = frozenset(response.get("users") or [])
                except Exception as exc:
                    log.warning("cannot read user group %s: %s", group, exc)
                    members = frozenset()
                cached = (time.monotonic(), members)
                self._groups[group] = cached
            if user in cached[1]:
                return True
        return False
