"""Runs a Route call under its timeout, retry budget and concurrency limit, recording attempts.

Retries are tenacity's: Retry-After wins (capped), otherwise exponential backoff with jitter;
only errors marked retryable are retried, and every attempt is recorded. A route whose submit is
billed is never submitted twice: the executor hands it a TaskLedger shared by all attempts, so an
attempt after a timeout resumes polling the accepted task, within the run's retry budget. A
self-hosted call that timed out is not sent again: the server may still be working on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from routes.base import Route
from routes.errors import ProviderDownError, RouteError, RouteTimeoutError
from routes.lifecycle import explain_missing_model
from routes.model import Attempt, ImageRequest, ImageResult, ProbeKind, ProbeResult
from routes.pacing import Stopwatch, counting_turns, leave_turn
from routes.tasks import OnSubmit, SubmittedTask, TaskLedger

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
# Masks secrets in provider text (the bot hands in its redactor; routes know no secrets list).
Redact = Callable[[str], str]
OnAttempt = Callable[[Attempt], Awaitable[None] | None]


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


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, RouteError) and exc.retryable


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
        redact: Redact | None = None,
    ) -> None:
        self.route = route
        # Provider text enters the product here: an error or probe message is redacted before
        # anything can store, print or post it (a provider may echo a key or a header back).
        self._redact: Redact = redact or (lambda text: text)
        self.policy = policy or RetryPolicy(retries=route.config.retries)
        self.timeout = route.config.timeout_seconds
        self._semaphore = asyncio.Semaphore(route.config.max_concurrency)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._warmed = False
        self._warming = asyncio.Lock()

    @property
    def id(self) -> str:
        return self.route.id

    async def warm(self) -> None:
        """Load the adapter's SDK and build its client, once: at start-up (before the process
        says it is ready), or at the latest outside the first call's timeout (an import of a
        provider SDK can take a second on a busy machine, which is not the provider's fault)."""
        if self._warmed:
            return
        async with self._warming:  # one build, however many callers arrive meanwhile
            if not self._warmed:
                await asyncio.to_thread(self.route.warm)
                self._warmed = True

    async def _attempt(self, request: ImageRequest, tasks: TaskLedger) -> ImageResult:
        await self.warm()
        async with self._semaphore:
            try:
                async with asyncio.timeout(self.timeout):
                    return await self.route.attempt(request, tasks)
            except TimeoutError:
                raise RouteTimeoutError(
                    f"no answer within {self.timeout:g} s (the route's timeout_seconds)"
                ) from None

    async def generate(
        self,
        request: ImageRequest,
        on_attempt: OnAttempt | None = None,
        on_task: OnSubmit | None = None,
    ) -> ImageResult:
        """Call the route until it answers, the retry budget is spent or an error is final.

        `on_task` hears about a billed task as soon as the provider accepts it (the run log
        stores it, so a restart can collect the result with `resume`)."""
        return await self._run(request, TaskLedger(on_task), on_attempt)

    async def resume(
        self, request: ImageRequest, task: SubmittedTask, on_attempt: OnAttempt | None = None
    ) -> ImageResult:
        """Collect a task submitted earlier (before a restart, say): poll it until its result
        is ready, within the retry budget and before the provider drops the result. Never
        submits anything."""
        if task.expired():
            raise ProviderDownError(
                f"task {task.task_id}'s result has expired at the provider: it cannot be "
                "collected any more",
                request_id=task.task_id,
                retryable=False,
            )
        return await self._run(request, TaskLedger(task=task), on_attempt)

    async def _run(
        self, request: ImageRequest, tasks: TaskLedger, on_attempt: OnAttempt | None
    ) -> ImageResult:
        attempts: list[Attempt] = []
        waits: list[float] = [0.0]

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            assert isinstance(error, RouteError)  # only RouteErrors are retried
            return self.policy.delay(state.attempt_number, error, self._rng)

        def before_sleep(state: RetryCallState) -> None:
            delay = state.next_action.sleep if state.next_action else 0.0
            waits.append(delay)
            log.info(
                "route %s attempt %d failed; retrying in %.2f s",
                self.route.id,
                state.attempt_number,
                delay,
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.retries + 1),
            wait=wait,
            retry=retry_if_exception(_retryable),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async for state in retrying:
                with state:
                    number = state.retry_state.attempt_number
                    result = await self._one(request, tasks, number, waits[-1], attempts)
                    await _notify(on_attempt, attempts[-1])
                    return result
                outcome = state.retry_state.outcome
                if outcome is not None and outcome.failed:
                    error = outcome.exception()
                    if not isinstance(error, RouteError):
                        # Cancelled mid-call (tenacity's attempt context keeps any exception):
                        # not a failed attempt to record or retry, so it goes on as it came.
                        assert error is not None
                        raise error
                    await _notify(on_attempt, attempts[-1])
        except RouteError as error:
            error.attempts = tuple(attempts)
            raise self._explained(error, tasks) from None
        raise AssertionError("tenacity stopped without an outcome")  # reraise=True prevents it

    async def _one(
        self,
        request: ImageRequest,
        tasks: TaskLedger,
        number: int,
        waited: float,
        attempts: list[Attempt],
    ) -> ImageResult:
        """One attempt, recorded whatever its outcome."""
        started = time.time()
        # The attempt's latency is the provider's time: turns this process made the call wait
        # for (giving way to Slack acks, in line for the crunch thread) are left out.
        with counting_turns():
            clock = Stopwatch()
            try:
                result = await self._attempt(request, tasks)
            except RouteError as exc:
                error = self._classified(exc, tasks)
                error.message = self._redact(error.message)
            except Exception as exc:  # an adapter bug or an unmapped SDK error
                log.exception("route %s raised an unmapped error", self.route.id)
                error = ProviderDownError(
                    f"unexpected {type(exc).__name__} from the adapter", retryable=False
                )
            else:
                attempts.append(
                    Attempt(
                        number=number,
                        started_at=started,
                        latency_s=clock(),
                        ok=True,
                        request_id=result.response_id,
                        waited_s=waited,
                    )
                )
                # The one cost authority prices what the adapter reported it consumed.
                cost = self.route.cost(result.metered)
                return dataclasses.replace(result, cost=cost, attempts=tuple(attempts))
        attempts.append(
            Attempt(
                number=number,
                started_at=started,
                latency_s=clock(),
                ok=False,
                error_class=error.error_class,
                status_code=error.status_code,
                request_id=error.request_id,
                message=error.message,
                waited_s=waited,
            )
        )
        leave_turn()  # the next attempt, if any, waits for its answer without a place
        raise error

    def _classified(self, error: RouteError, tasks: TaskLedger) -> RouteError:
        """Whether a failed attempt may be repeated, from what was already sent."""
        if not isinstance(error, RouteTimeoutError):
            return error
        if tasks.task is not None:
            # Accepted and billed: a repeat only polls the same task again.
            error.request_id = error.request_id or tasks.task.task_id
            return error
        if tasks.submit_in_flight:
            error.retryable = False
            error.hint = (
                "The submit was sent but no answer came back: the provider may have accepted "
                "(and billed) it, so it was not sent again"
            )
        elif not self.route.resends_after_timeout:
            error.retryable = False
            error.hint = "The server may still be working on it, so it was not sent again"
        return error

    def _explained(self, error: RouteError, tasks: TaskLedger) -> RouteError:
        """The final error as the user reads it: a shut-down model named as such; a billed
        task named with its id, so it can be found at the provider."""
        error = explain_missing_model(self.route.config.lifecycle_models(), error)
        error.message = self._redact(error.message)
        if error.hint:
            error.hint = self._redact(error.hint)
        task = tasks.task
        if task is not None and task.task_id not in error.message:
            error.message = (
                f"{error.message.rstrip('.')} (task {task.task_id}, submitted once and never "
                "submitted again)"
            )
            error.request_id = error.request_id or task.task_id
        return error

    async def probe(self, mode: ProbeKind) -> ProbeResult:
        """One probe under the route's timeout and concurrency limit (no retries: a probe
        that needs retries is reporting exactly what it exists to report)."""
        await self.warm()
        async with self._semaphore:
            started = time.time()
            try:
                async with asyncio.timeout(self.timeout):
                    result = await self.route.probe(mode)
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
        if result.message:
            result = dataclasses.replace(result, message=self._redact(result.message))
        return result


async def _notify(callback: OnAttempt | None, attempt: Attempt) -> None:
    if callback is None:
        return
    outcome = callback(attempt)
    if outcome is not None:
        await outcome
