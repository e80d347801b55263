"""The spend policy: what a call is expected to cost and whether a daily cap or budget allows it.

Every path that spends goes through SpendPolicy before the first provider call: `/imagegen` and
its buttons, `imageroute gen`, the benchmark (its budget and the daily caps it must stay under)
and generate probes. The expected cost comes from the route's list price (routes.pricing), asked
in one place, `estimate`; a route without a per-image list price counts as $0 before the call
(its real cost is recorded after it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from routes.base import Route
from routes.config import LimitSettings
from routes.pricing import list_price_estimate
from storage.runlog import RunLog

# Reservations compare sums of floats: a cap reached exactly must not refuse the last call.
_EPSILON = 1e-9


def day_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def resets_in(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    left = day_start(now) + timedelta(days=1) - now
    hours, rest = divmod(int(left.total_seconds()), 3600)
    return f"resets at 00:00 UTC (in {hours} h {rest // 60} min)"


@dataclass(frozen=True)
class Allowance:
    """What a run of many calls (a benchmark) may spend: in total and per capped route."""

    max_cost: float | None
    route_caps: dict[str, float] = field(default_factory=dict)


@dataclass
class SpendBudget:
    """Spend reserved before each call and settled with the real cost after it.

    Synchronous on purpose: reserve() has no await, so concurrent calls cannot both pass."""

    spent: float = 0.0
    allowance: Allowance = field(default_factory=lambda: Allowance(None))
    route_spent: dict[str, float] = field(default_factory=dict)

    def reserve(self, route_id: str, estimate: float) -> str | None:
        """None and the estimate reserved, or why the call would pass a cap."""
        cap_total = self.allowance.max_cost
        if cap_total is not None and self.spent + estimate > cap_total + _EPSILON:
            return (
                f"budget: ${self.spent:.2f} spent, next ~${estimate:.2f} would pass the cap of "
                f"${cap_total:.2f}"
            )
        cap = self.allowance.route_caps.get(route_id)
        route_spent = self.route_spent.get(route_id, 0.0)
        if cap is not None and route_spent + estimate > cap + _EPSILON:
            return f"route daily spend cap: ${cap:.2f} left for `{route_id}` today"
        self.spent += estimate
        self.route_spent[route_id] = route_spent + estimate
        return None

    def settle(self, route_id: str, estimate: float, actual: float | None) -> None:
        delta = (actual or 0.0) - estimate
        self.spent += delta
        self.route_spent[route_id] = self.route_spent.get(route_id, 0.0) + delta


class SpendPolicy:
    """Daily spend caps per route (`daily_spend_usd`) and per Slack user
    (`limits.user_daily_spend_usd`), checked against the run log's spend since 00:00 UTC."""

    def __init__(self, runlog: RunLog, routes: Mapping[str, Route], limits: LimitSettings) -> None:
        self.runlog = runlog
        self.routes = routes
        self.limits = limits

    def estimate(self, route_id: str, images: int = 1) -> float | None:
        """The expected cost of `images` images on a route, None when it has no list price."""
        return list_price_estimate(self.routes[route_id], images)

    async def refusal(
        self, route_ids: Sequence[str], user: str | None = None, images: int = 1
    ) -> str | None:
        """One sentence naming the daily cap these calls would pass, or None."""
        since = day_start()
        for rid in route_ids:
            cap = self.routes[rid].config.daily_spend_usd
            if cap is None:
                continue
            spent = await asyncio.to_thread(self.runlog.spend_since, since, route_id=rid)
            if spent >= cap or spent + (self.estimate(rid, images) or 0.0) > cap:
                return (
                    f"Route `{rid}` has reached its daily spend cap of ${cap:.2f} "
                    f"(${spent:.2f} spent today); it {resets_in()}."
                )
        user_cap = self.limits.user_daily_spend_usd
        if user_cap is not None and user:
            spent = await asyncio.to_thread(self.runlog.spend_since, since, slack_user=user)
            expected = sum(self.estimate(rid, images) or 0.0 for rid in route_ids)
            if spent >= user_cap or spent + expected > user_cap:
                return (
                    f"You have reached your daily spend cap of ${user_cap:.2f} "
                    f"(${spent:.2f} spent today); it {resets_in()}."
                )
        return None

    async def allowance(
        self, route_ids: Sequence[str], user: str | None, max_cost: float | None
    ) -> Allowance:
        """A budget of `max_cost` narrowed to what the user's daily cap leaves, and what each
        capped route may still spend today."""
        since = day_start()
        route_caps: dict[str, float] = {}
        for rid in route_ids:
            cap = self.routes[rid].config.daily_spend_usd
            if cap is not None:
                spent = await asyncio.to_thread(self.runlog.spend_since, since, route_id=rid)
                route_caps[rid] = max(cap - spent, 0.0)
        user_cap = self.limits.user_daily_spend_usd
        if user_cap is not None and user:
            spent = await asyncio.to_thread(self.runlog.spend_since, since, slack_user=user)
            left = max(user_cap - spent, 0.0)
            max_cost = left if max_cost is None else min(max_cost, left)
        return Allowance(max_cost, route_caps)
