"""The spend policy: what a call is expected to cost and whether a daily cap or budget allows it.

Every path that spends goes through SpendPolicy before the first provider call: `/imagegen` and
its buttons, `imageroute gen`, the benchmark (its budget and the daily caps it must stay under)
and generate probes. The expected cost is the route's estimate (routes.pricing, the one cost
authority), asked in one place, `estimate`. Runs already made whose cost is unknown count at
their route's per-image estimate, never as $0; the routes file refuses a capped route that
has no price, so a missing estimate only happens on uncapped routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from routes.base import Route
from routes.config import LimitSettings
from routes.model import Estimate, ImageRequest
from storage.runlog import RunLog, Spend

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
        # An unknown actual cost keeps the estimate reserved: never counted as $0.
        delta = 0.0 if actual is None else actual - estimate
        self.spent += delta
        self.route_spent[route_id] = self.route_spent.get(route_id, 0.0) + delta


class SpendPolicy:
    """Daily spend caps per route (`daily_spend_usd`) and per Slack user
    (`limits.user_daily_spend_usd`), checked against the run log's spend since 00:00 UTC."""

    def __init__(self, runlog: RunLog, routes: Mapping[str, Route], limits: LimitSettings) -> None:
        self.runlog = runlog
        self.routes = routes
        self.limits = limits

    def estimate(self, route_id: str, request: ImageRequest | None = None) -> Estimate | None:
        """What the request is expected to cost on a route (its price rows, its own pricing,
        or its estimated_usd_per_image), None when nothing on file says."""
        return self.routes[route_id].estimate(request or ImageRequest(prompt=""))

    def _expected(self, route_id: str, request: ImageRequest | None) -> float:
        estimate = self.estimate(route_id, request)
        return estimate.usd if estimate is not None else 0.0

    def _counted(self, by_route: Mapping[str, Spend]) -> float:
        """Known spend plus each image of unknown cost at its route's per-image estimate (the
        most expensive configured route's when its route is gone or has none)."""
        fallback = max((self._expected(rid, None) for rid in self.routes), default=0.0)
        total = 0.0
        for rid, spend in by_route.items():
            total += spend.known_usd
            if spend.unpriced_images:
                per_image = self._expected(rid, None) if rid in self.routes else 0.0
                total += spend.unpriced_images * (per_image or fallback)
        return total

    async def _spent(
        self, since: datetime, *, route_id: str | None = None, slack_user: str | None = None
    ) -> float:
        by_route = await asyncio.to_thread(
            self.runlog.spend_by_route, since, route_id=route_id, slack_user=slack_user
        )
        return self._counted(by_route)

    async def refusal(
        self,
        route_ids: Sequence[str],
        user: str | None = None,
        request: ImageRequest | None = None,
    ) -> str | None:
        """One sentence naming the daily cap these calls would pass, or None."""
        since = day_start()
        for rid in route_ids:
            cap = self.routes[rid].config.daily_spend_usd
            if cap is None:
                continue
            spent = await self._spent(since, route_id=rid)
            if spent >= cap or spent + self._expected(rid, request) > cap:
                return (
                    f"Route `{rid}` has reached its daily spend cap of ${cap:.2f} "
                    f"(${spent:.2f} spent today); it {resets_in()}."
                )
        user_cap = self.limits.user_daily_spend_usd
        if user_cap is not None and user:
            spent = await self._spent(since, slack_user=user)
            expected = sum(self._expected(rid, request) for rid in route_ids)
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
                spent = await self._spent(since, route_id=rid)
                route_caps[rid] = max(cap - spent, 0.0)
        user_cap = self.limits.user_daily_spend_usd
        if user_cap is not None and user:
            spent = await self._spent(since, slack_user=user)
            left = max(user_cap - spent, 0.0)
            max_cost = left if max_cost is None else min(max_cost, left)
        return Allowance(max_cost, route_caps)
