"""The error taxonomy every adapter maps provider failures onto.

One base class and a few subclasses the UI can act on (after httpx's style). Each error keeps the
provider's request id and, where the route board has one, a hint that says what to do next.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from routes.model import Attempt


class InvalidRequest(ValueError):
    """User input that cannot be sent to a route: refused before any provider call.

    The message is one sentence a Slack user can act on.
    """


class RouteError(Exception):
    """A provider call failed. Subclasses say why, in terms a user can act on."""

    error_class: ClassVar[str] = "provider_down"
    label: ClassVar[str] = "provider error"
    # A class default an instance may override (e.g. a 402 "out of credits" is never retried).
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        status_code: int | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.status_code = status_code
        self.hint = hint
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable
        # Filled in by the executor: every provider call made before giving up.
        self.attempts: tuple[Attempt, ...] = ()

    def sentence(self) -> str:
        """One user-facing sentence: what happened, the hint and the provider's request id."""
        text = self.message.strip().rstrip(".")
        parts = [f"{self.label.capitalize()}: {text}."]
        if self.hint:
            parts.append(self.hint.rstrip(".") + ".")
        if self.request_id:
            parts.append(f"Request id {self.request_id}.")
        return " ".join(parts)


class AuthError(RouteError):
    """Credentials rejected, or the account is not ready (verification, model access, billing)."""

    error_class = "auth"
    label = "authentication or account-readiness error"


class RateLimitError(RouteError):
    """The provider throttled us; worth retrying after `retry_after` seconds."""

    error_class = "rate_limit"
    retryable = True
    label = "rate limited"


class ModerationError(RouteError):
    """The provider's safety system refused the prompt, an input or the output. Never retried."""

    error_class = "moderation"
    label = "blocked by the provider's safety system"


class BadRequestError(RouteError):
    """The provider rejected the parameters. Never retried."""

    error_class = "bad_request"
    label = "request rejected by the provider"


class RouteTimeoutError(RouteError):
    """No answer within the route's timeout, or the connection dropped mid-call."""

    error_class = "timeout"
    retryable = True
    label = "timed out"


class ProviderDownError(RouteError):
    """5xx, unreachable host, or an answer we cannot use (malformed, no image)."""

    error_class = "provider_down"
    retryable = True
    label = "provider unavailable"


class EmptyResultError(ProviderDownError):
    """The call succeeded but returned no image: a failed run, and not worth repeating blindly."""

    retryable = False
    label = "no image returned"


class ModelRetiredError(RouteError):
    """The provider no longer serves the route's model (its shutdown date has passed, per the
    lifecycle data). Never retried: the routes file must change."""

    error_class = "model_retired"
    label = "model shut down"


class QuotaError(RouteError):
    """A quota or billing limit was reached (credits used up, a budget or a service quota):
    waiting does not help, so it is never retried."""

    error_class = "quota"
    label = "quota or billing limit reached"


ERROR_CLASSES: tuple[str, ...] = (
    "auth",
    "quota",
    "rate_limit",
    "moderation",
    "bad_request",
    "timeout",
    "provider_down",
    "model_retired",
)


def error_types() -> dict[str, type[RouteError]]:
    """Every error class by its `error_class` name, subclasses defined anywhere included (so a
    new class is usable from the provider error tables as soon as it is defined)."""
    found: dict[str, type[RouteError]] = {}
    pending = deque(RouteError.__subclasses__())
    while pending:  # breadth first: the most general class of a name wins
        cls = pending.popleft()
        found.setdefault(cls.error_class, cls)
        pending.extend(cls.__subclasses__())
    return found
