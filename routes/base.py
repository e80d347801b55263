"""The Route protocol every adapter implements, and the small base class they share."""

from __future__ import annotations

import time
from typing import Any, Protocol, runtime_checkable

from routes.capabilities import Capabilities, capabilities_for
from routes.config import RouteConfigBase
from routes.errors import RouteError
from routes.lifecycle import explain_missing_model
from routes.model import Cost, ImageRequest, ImageResult, ProbeKind, ProbeResult
from routes.pricing import Price, price_for


@runtime_checkable
class Route(Protocol):
    """One configured path to an image model. `generate` is ONE provider attempt: retries,
    timeouts and concurrency limits are applied around it by routes.executor."""

    config: RouteConfigBase

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def model(self) -> str: ...

    def capabilities(self) -> Capabilities: ...

    async def generate(self, request: ImageRequest) -> ImageResult: ...

    async def probe(self, mode: ProbeKind) -> ProbeResult: ...

    async def aclose(self) -> None: ...


class BaseRoute:
    """Shared plumbing: config access, capabilities and price lookup, probe bookkeeping."""

    config: RouteConfigBase

    def __init__(self, config: RouteConfigBase) -> None:
        self.config = config
        self._caps = capabilities_for(config.kind, config.model_id, config.capabilities)
        self._price = price_for(config.kind, self.price_model, config.pricing)

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def model(self) -> str:
        return self.config.model_id

    @property
    def price_model(self) -> str:
        """The model id whose price applies (the image model for tool-based routes)."""
        return self.config.model_id

    @property
    def price(self) -> Price | None:
        return self._price

    def capabilities(self) -> Capabilities:
        return self._caps

    async def generate(self, request: ImageRequest) -> ImageResult:
        raise NotImplementedError

    def warm(self) -> None:
        """Import the SDK and build the client before the first call (run in a thread), so
        neither counts against the route's timeout nor the latency it measures. Adapters keep
        their client behind a lazy `client` property; touching it is enough."""
        getattr(self, "client", None)

    async def check_auth(self) -> str | None:
        """A free call proving credentials and model access; returns a request id if any.

        Kinds without a free check fall back to the generate probe."""
        raise NotImplementedError

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
                cost, request_id = result.cost, result.response_id
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
        return {"id": self.id, "kind": self.kind, "model": self.model}
