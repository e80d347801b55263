"""The Route protocol every adapter implements, and the small base class they share."""

from __future__ import annotations

import time
from typing import Any, Protocol, runtime_checkable

from routes.capabilities import Capabilities, ResolvedSize, capabilities_for, resolve_size
from routes.config import RouteConfigBase
from routes.errors import InvalidRequest, RouteError
from routes.lifecycle import explain_missing_model
from routes.model import (
    Cost,
    Estimate,
    ImageRequest,
    ImageResult,
    ProbeKind,
    ProbeResult,
    Usage,
)
from routes.pricing import RoutePricing
from routes.tasks import TaskLedger


@runtime_checkable
class Route(Protocol):
    """One configured path to an image model. `generate` is ONE provider attempt: retries,
    timeouts and concurrency limits are applied around it by routes.executor.

    Everything a caller needs is declared here (price estimate, cost, warm-up, description),
    so no caller reaches into an adapter's attributes or config."""

    @property
    def config(self) -> RouteConfigBase:
        """The route's settings from the routes file (read-only to callers)."""
        ...

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def model(self) -> str: ...

    def capabilities(self) -> Capabilities: ...

    async def generate(self, request: ImageRequest) -> ImageResult: ...

    async def attempt(self, request: ImageRequest, tasks: TaskLedger) -> ImageResult:
        """One provider attempt for the executor. A route whose submit is billed reports the
        accepted task to `tasks`, and when `tasks` already holds one (an earlier attempt timed
        out, or a restart) resumes polling it instead of submitting again."""
        ...

    @property
    def resends_after_timeout(self) -> bool:
        """Whether a call that timed out may be sent again (False where the server keeps
        working on it, so a repeat would queue a second job)."""
        ...

    async def probe(self, mode: ProbeKind) -> ProbeResult: ...

    @property
    def has_free_auth_check(self) -> bool:
        """Whether an `auth` probe is free; False for kinds with no free check, whose auth
        probe falls back to a (paid) generate probe."""
        ...

    def estimate(self, request: ImageRequest) -> Estimate | None:
        """What the request is expected to cost before any call; None when nothing on file
        says (spend caps and the benchmark budget reserve this)."""
        ...

    def cost(self, usage: Usage) -> Cost:
        """What a call that consumed `usage` cost, with its basis (routes.pricing)."""
        ...

    def warm(self) -> None:
        """Import the SDK and build the client before the first call (run in a thread)."""
        ...

    def describe(self) -> dict[str, Any]:
        """The route's facts for the run log: id, kind, model, owners, and per kind the
        underlying model (gateways) or the deployment facts (self-hosted)."""
        ...

    async def aclose(self) -> None: ...


class BaseRoute:
    """Shared plumbing: config access, capabilities and price lookup, probe bookkeeping."""

    config: RouteConfigBase

    def __init__(self, config: RouteConfigBase) -> None:
        self.config = config
        self._caps = capabilities_for(config.kind, config.model_id, config.capabilities)
        self.pricing: RoutePricing = config.route_pricing()

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def model(self) -> str:
        return self.config.model_id

    def capabilities(self) -> Capabilities:
        return self._caps

    def estimate(self, request: ImageRequest) -> Estimate | None:
        try:
            size = resolve_size(request.size, self._caps)
        except InvalidRequest:
            size = ResolvedSize(auto=True)  # refused before any call anyway
        return self.pricing.estimate(request, size)

    def cost(self, usage: Usage) -> Cost:
        return self.pricing.cost(usage)

    async def generate(self, request: ImageRequest) -> ImageResult:
        raise NotImplementedError

    async def attempt(self, request: ImageRequest, tasks: TaskLedger) -> ImageResult:
        # Routes that answer in one call have no task to resume: each attempt is a new call.
        return await self.generate(request)

    @property
    def resends_after_timeout(self) -> bool:
        return True

    def warm(self) -> None:
        """Import the SDK and build the client before the first call (run in a thread), so
        neither counts against the route's timeout nor the latency it measures. Adapters keep
        their client behind a lazy `client` property; touching it is enough."""
        getattr(self, "client", None)

    async def check_auth(self) -> str | None:
        """A free call proving credentials and model access; returns a request id if any.

        Kinds without a free check fall back to the generate probe."""
        raise NotImplementedError

    @property
    def has_free_auth_check(self) -> bool:
        return type(self).check_auth is not BaseRoute.check_auth

    async def probe(self, mode: ProbeKind) -> ProbeResult:
        started = time.time()
        t0 = time.perf_counter()
        cost: Cost | None = None
        request_id: str | None = None
        try:
            if mode == "auth":
                try:
                    request_id = await self.check_auth()
                except NotImplementedError:
                    mode = "generate"
            if mode == "generate":
                result = await self.generate(self.probe_request())
                cost, request_id = self.cost(result.metered), result.response_id
        except RouteError as raised:
            # A shut-down model is its own failure reason, naming the replacement.
            exc = explain_missing_model(self.config.lifecycle_models(), raised)
            return ProbeResult(
                route_id=self.id,
                kind=mode,
                ok=False,
                latency_s=time.perf_counter() - t0,
                checked_at=started,
                error_class=exc.error_class,
                message=exc.message,
                request_id=exc.request_id,
            )
        return ProbeResult(
            route_id=self.id,
            kind=mode,
            ok=True,
            latency_s=time.perf_counter() - t0,
            checked_at=started,
            request_id=request_id,
            cost=cost,
        )

    def probe_request(self) -> ImageRequest:
        """The smallest, cheapest request this route can serve."""
        caps = self._caps
        quality = "low" if "low" in caps.qualities else None
        return ImageRequest(prompt="a plain grey square", quality=quality, n=1)

    async def aclose(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        facts = {
            "id": self.id,
            "kind": self.kind,
            "model": self.model,
            "board": self.config.board_row,
            "billing_owner": self.config.billing_owner,
            "route_owner": self.config.route_owner,
        }
        return {k: v for k, v in facts.items() if v is not None}
