"""The spend policy: what a call is expected to cost and whether a daily cap or budget allows it.

Every path that spends goes through SpendPolicy before the first provider call: `/imagegen` and
its buttons, `imageroute gen`, the benchmark (its budget and the daily caps it must stay under)
and generate probes. The expected cost is the route's estimate (routes.pricing, the one cost
authority), asked in one place, `estimate`. Runs already made whose cost is unknown count at
their route's per-image estimate, never as $0, and a route's generate probes count against its
cap like its runs. The routes file refuses a capped route that has no price; a request no price
row covers (a size no tier covers) takes the route's plain per-image estimate, and a cap that
still cannot be kept refuses the call rather than taking it as $0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from routes.base import Route
from routes.config import LimitSettings
from routes.model import Estimate, ImageRequest
from storage.db import DatabaseUnavailable
from storage.health import HealthLog
from storage.reservations import Hold, Reservations
from storage.runlog import DuplicateRequest, RunLog, Spend, spend_of, spend_rows

log = logging.getLogger(__name__)

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


class OverCap(Exception):
    """The calls would pass a daily spend cap; the message is the one sentence to show."""


@dataclass
class Reservation:
    """Spend held for admitted calls until their runs end: a reservation id per route."""

    ids: dict[str, int] = field(default_factory=dict)


class SpendPolicy:
    """Daily spend caps per route (`daily_spend_usd`) and per Slack user
    (`limits.user_daily_spend_usd`): the run log's spend since 00:00 UTC plus what calls in
    flight have reserved, on every process sharing the database.

    `reserve` is the admission: checked and held in one serialised step (see
    storage.reservations), held until the run ends and the run log has its real cost, then
    released. `refusal` and `allowance` only read."""

    def __init__(
        self,
        runlog: RunLog,
        routes: Mapping[str, Route],
        limits: LimitSettings,
        *,
        holder: str = "unregistered",
        health: HealthLog | None = None,
    ) -> None:
        self.runlog = runlog
        self.routes = routes
        self.limits = limits
        self.health = health  # generate probes spend too: they count against the route's cap
        self.reservations = Reservations(runlog.engine)
        # The worker that holds this process's reservations: released if it stops beating.
        self.holder = holder

    def estimate(self, route_id: str, request: ImageRequest | None = None) -> Estimate | None:
        """What the request is expected to cost on a route (its price rows, its own pricing,
        or its estimated_usd_per_image), None when nothing on file says."""
        return self.routes[route_id].estimate(request or ImageRequest(prompt=""))

    def _expected(self, route_id: str, request: ImageRequest | None) -> float | None:
        """What the call is expected to cost; None when nothing on file says (never $0)."""
        estimate = self.estimate(route_id, request)
        if estimate is None and request is not None:
            # A request no price row covers (a size or quality without a tier): the route's
            # plain per-image estimate, for each image asked.
            plain = self.estimate(route_id, None)
            if plain is not None:
                return plain.usd * max(request.n, 1)
        return estimate.usd if estimate is not None else None

    def _counted(self, by_route: Mapping[str, Spend]) -> float:
        """Known spend plus each image of unknown cost at its route's per-image estimate (the
        most expensive configured route's when its route is gone or has none)."""
        fallback = max((self._expected(rid, None) or 0.0 for rid in self.routes), default=0.0)
        total = 0.0
        for rid, spend in by_route.items():
            total += spend.known_usd
            if spend.unpriced_images:
                per_image = self._expected(rid, None) if rid in self.routes else None
                total += spend.unpriced_images * (per_image or fallback)
        return total

    def _spent_each(
        self, conn: Connection, since: datetime, route_ids: Sequence[str], user: str | None
    ) -> tuple[dict[str, tuple[float, float]], tuple[float, float] | None]:
        """(spent, held) of each route in `route_ids`, and of `user` when given: the run log's
        spend (and a route's generate probes'), and what calls in flight hold. Read in one
        statement, so at one moment: a run releases its reservation only after logging its
        cost, so it is counted once, or at that moment twice (on the safe side), never missed."""
        reads: list[Select[Any]] = []
        if route_ids:
            reads.append(self.reservations.held_query(since, route_ids=route_ids))
            reads.append(self.runlog.spend_query(since, route_ids=route_ids))
            if self.health is not None:
                reads.append(self.health.probe_spend_query(since, route_ids=route_ids))
        if user is not None:
            reads.append(self.reservations.held_query(since, slack_user=user))
            reads.append(self.runlog.spend_query(since, slack_user=user))
        rows = spend_rows(conn, reads)
        routes: dict[str, tuple[float, float]] = {}
        if route_ids:
            held_rows, run_rows = rows[0], rows[1]
            probe_rows = rows[2] if self.health is not None else []
            rows = rows[3 if self.health is not None else 2 :]
            held = {row[0]: float(row[1] or 0.0) for row in held_rows}
            spent = {row[0]: spend_of(*row[1:]) for row in run_rows}
            for row in probe_rows:
                spent[row[0]] = spent.get(row[0], Spend()) + spend_of(*row[1:])
            for rid in route_ids:
                routes[rid] = (self._counted({rid: spent.get(rid, Spend())}), held.get(rid, 0.0))
        mine = None
        if user is not None:
            held_rows, run_rows = rows
            by_route = {row[0]: spend_of(*row[1:]) for row in run_rows}
            mine = (self._counted(by_route), sum(float(row[1] or 0.0) for row in held_rows))
        return routes, mine

    def _caps(
        self, route_ids: Sequence[str], user: str | None, request: ImageRequest | None
    ) -> tuple[list[tuple[str, float, float]], float | None, str | None]:
        """The route caps to check as (route, cap, expected cost), the user's expected total
        when their cap applies, and the sentence of a cap that cannot be kept because a call's
        cost cannot be estimated (after the route caps before it)."""
        capped: list[tuple[str, float, float]] = []
        for rid in route_ids:
            cap = self.routes[rid].config.daily_spend_usd
            if cap is None:
                continue
            expected = self._expected(rid, request)
            if expected is None:
                return capped, None, _unkept(rid, f"its daily spend cap of ${cap:.2f}")
            capped.append((rid, cap, expected))
        user_cap = self.limits.user_daily_spend_usd
        if user_cap is None or not user:
            return capped, None, None
        total = 0.0
        for rid in route_ids:
            one = self._expected(rid, request)
            if one is None:
                return capped, None, _unkept(rid, f"your daily spend cap of ${user_cap:.2f}")
            total += one
        return capped, total, None

    def _refusal(
        self,
        conn: Connection,
        route_ids: Sequence[str],
        user: str | None,
        request: ImageRequest | None,
    ) -> str | None:
        # Which caps apply, and what each call is expected to cost, is known before reading
        # anything; the figures of every cap are then read at once, and judged in order.
        capped, user_total, unkept = self._caps(route_ids, user, request)
        user_cap = self.limits.user_daily_spend_usd
        figures, mine = self._spent_each(
            conn,
            day_start(),
            [rid for rid, _, _ in capped],
            user if user_total is not None else None,
        )
        for rid, cap, expected in capped:
            spent, held = figures[rid]
            used = spent + held
            if used >= cap or used + expected > cap + _EPSILON:
                return (
                    f"Route `{rid}` has reached its daily spend cap of ${cap:.2f} "
                    f"({_so_far(spent, held)}); it {resets_in()}."
                )
        if unkept is not None:
            return unkept
        if user_total is not None and user_cap is not None and mine is not None:
            spent, held = mine
            used = spent + held
            if used >= user_cap or used + user_total > user_cap + _EPSILON:
                return (
                    f"You have reached your daily spend cap of ${user_cap:.2f} "
                    f"({_so_far(spent, held)}); it {resets_in()}."
                )
        return None

    async def refusal(
        self,
        route_ids: Sequence[str],
        user: str | None = None,
        request: ImageRequest | None = None,
    ) -> str | None:
        """One sentence naming the daily cap these calls would pass, or None. Only reads:
        `reserve` is what admits a call."""

        def check() -> str | None:
            with self.runlog.engine.connect() as conn:
                return self._refusal(conn, route_ids, user, request)

        return await asyncio.to_thread(check)

    async def reserve(
        self,
        route_ids: Sequence[str],
        user: str | None = None,
        request: ImageRequest | None = None,
        *,
        request_key: str | None = None,
    ) -> Reservation:
        """Admit the calls: hold each one's expected cost until `release`, or raise OverCap
        (the sentence why) when a cap cannot take them, or DuplicateRequest when this request
        key was admitted before (a repeated Slack delivery). One admission at a time across
        every process, so concurrent requests cannot all pass a cap that fits only some."""

        def admit() -> Reservation:
            keys = {rid: f"{request_key}:{rid}" for rid in route_ids} if request_key else {}
            with self.reservations.admitting() as conn:
                if self.reservations.taken(conn, list(keys.values())):
                    raise DuplicateRequest(None)
                refusal = self._refusal(conn, route_ids, user, request)
                if refusal is not None:
                    raise OverCap(refusal)
                # Nothing to hold only on an uncapped route with no price (a cap would have
                # refused above): its run's cost is counted as unpriced afterwards.
                holds = [
                    Hold(rid, self._expected(rid, request) or 0.0, user, keys.get(rid))
                    for rid in route_ids
                ]
                ids = self.reservations.add(conn, self.holder, holds)
            return Reservation(dict(zip(route_ids, ids, strict=True)))

        try:
            return await asyncio.to_thread(admit)
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(f"spend admission: {type(exc).__name__}") from exc

    async def release(self, reservation: Reservation, route_id: str | None = None) -> None:
        """Release one route's reservation (its run has ended and logged its cost), or all that
        are left. Shielded: a cancelled caller still releases."""
        if route_id is None:
            ids = list(reservation.ids.values())
            reservation.ids.clear()
        else:
            one = reservation.ids.pop(route_id, None)
            ids = [one] if one is not None else []
        if ids:
            try:
                await asyncio.shield(asyncio.to_thread(self.reservations.release, ids))
            except SQLAlchemyError as exc:
                # Held until this worker is retired or swept: on the safe side of the cap.
                log.warning("spend reservations %s not released: %s", ids, type(exc).__name__)

    async def allowance(
        self, route_ids: Sequence[str], user: str | None, max_cost: float | None
    ) -> Allowance:
        """A budget of `max_cost` narrowed to what the user's daily cap leaves, and what each
        capped route may still spend today."""

        def read() -> Allowance:
            since = day_start()
            route_caps: dict[str, float] = {}
            budget = max_cost
            caps = {
                rid: cap
                for rid in route_ids
                if (cap := self.routes[rid].config.daily_spend_usd) is not None
            }
            user_cap = self.limits.user_daily_spend_usd if user else None
            with self.runlog.engine.connect() as conn:
                figures, mine = self._spent_each(
                    conn, since, list(caps), user if user_cap is not None else None
                )
            for rid, cap in caps.items():
                spent, held = figures[rid]
                route_caps[rid] = max(cap - spent - held, 0.0)
            if user_cap is not None and mine is not None:
                spent, held = mine
                left = max(user_cap - spent - held, 0.0)
                budget = left if budget is None else min(budget, left)
            return Allowance(budget, route_caps)

        return await asyncio.to_thread(read)


def _so_far(spent: float, held: float) -> str:
    text = f"${spent:.2f} spent today"
    if held > _EPSILON:
        text += f", ${held:.2f} more held by runs in progress"
    return text


def _unkept(route_id: str, cap: str) -> str:
    return (
        f"Nothing on file prices this request on `{route_id}`, so {cap} cannot be kept: "
        "the route's owner can set estimated_usd_per_image in the routes file."
    )
