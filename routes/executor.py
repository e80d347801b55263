"""Runs a Route call under its timeout, retry budget and concurrency limit, recording attempts."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from routes.base import Route
from routes.errors import ProviderDownError, RouteError, RouteTimeoutError
from routes.lifecycle import explain_missing_model
from routes.model import Attempt, ImageRequest, ImageResult, ProbeKind, ProbeResult

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; Retry-After wins when the provider sends one."""

    retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 20.0
    # Never wait longer than this for a Retry-After: beyond it the user is better told.
    max_retry_after: float = 60.0

    def delay(self, attempt: int, error: RouteError, rng: random.Random) -> float:
        if error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return rng.uniform(ceiling / 2, ceiling)


class RouteExecutor:
    """Wraps a Route with its limits. One executor per configured route, shared by all callers
    so `max_concurrency` holds across Slack runs, probes and benchmarks."""

    def __init__(
        self,
        route: Route,
        *,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.route = route
        self.policy = policy or RetryPolicy(retries=route.config.retries)
        self.timeout = route.config.timeout_seconds
        self._semaphore = asyncio.Semaphore(route.config.max_concurrency)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._warmed = False

    @property
    def id(self) -> str:
        return self.route.id

    async def _warm(self) -> None:
        """First use: load the adapter's SDK and client outside the timeout (an import of a
        provider SDK can take a second on a busy machine, which is not the provider's fault)."""
        if self._warmed:
            return
        await asyncio.to_thread(self.route.warm)
        self._warmed = True

    async def _attempt(self, request: ImageRequest) -> ImageResult:
        await self._warm()
        async with self._semaphore:
            try:
                async with asyncio.timeout(self.timeout):
                    return await self.route.generate(request)
            except TimeoutError:
                raise RouteTimeoutError(
                    f"no answer within {self.timeout:g} s (the route's timeout_seconds)"
                ) from None

    async def generate(
        self,
        request: ImageRequest,
        on_attempt: Callable[[Attempt], Awaitable[None] | None] | None = None,
    ) -> ImageResult:
        """Call the route until it answers, the retry budget is spent or an error is final."""
        attempts: list[Attempt] = []
        waited = 0.0
        number = 0
        while True:
            number += 1
            started = time.time()
            t0 = time.perf_counter()
            try:
                result = await self._attempt(request)
            except RouteError as exc:
                error = exc
            except Exception as exc:  # an adapter bug or an unmapped SDK error
                log.exception("route %s raised an unmapped error", self.route.id)
                error = ProviderDownError(
                    f"unexpected {type(exc).__name__} from the adapter", retryable=False
                )
            else:
                attempt = Attempt(
                    number=number,
                    started_at=started,
                    latency_s=time.perf_counter() - t0,
                    ok=True,
                    request_id=result.response_id,
                    waited_s=waited,
                )
                attempts.append(attempt)
                await _notify(on_attempt, attempt)
                # The one cost authority prices what the adapter reported it consumed.
                cost = self.route.cost(result.metered)
                return dataclasses.replace(result, cost=cost, attempts=tuple(attempts))
            attempt = Attempt(
                number=number,
                started_at=started,
                latency_s=time.perf_counter() - t0,
                ok=False,
                error_class=error.error_class,
                status_code=error.status_code,
                request_id=error.request_id,
                message=error.message,
                waited_s=waited,
            )
            attempts.append(attempt)
            await _notify(on_attempt, attempt)
            if not error.retryable or number > self.policy.retries:
                error.attempts = tuple(attempts)
                raise explain_missing_model(self.route.config.lifecycle_models(), error)
            waited = self.policy.delay(number, error, self._rng)
            log.info(
                "route %s attempt %d failed (%s); retrying in %.2f s",
                self.route.id,
                number,
                error.error_class,
                waited,
            )
            await self._sleep(waited)

    async def probe(self, mode: ProbeKind) -> ProbeResult:
        """One probe under the route's timeout and concurrency limit (no retries: a probe
        that needs retries is reporting exactly what it exists to report)."""
        await self._warm()
        async with self._semaphore:
            started = time.time()
            try:
                async with asyncio.timeout(self.timeout):
                    return await self.route.probe(mode)
            except TimeoutError:
                return ProbeResult(
                    route_id=self.route.id,
                    kind=mode,
                    ok=False,
                    latency_s=self.timeout,
                    checked_at=started,
                    error_class="timeout",
                    message=f"no answer within {self.timeout:g} s",
                )


async def _notify(
    callback: Callable[[Attempt], Awaitable[None] | None] | None, attempt: Attempt
) -> None:
    if callback is None:
        return
    outcome = callback(attempt)
    if outcome is not None:
        await outcome
