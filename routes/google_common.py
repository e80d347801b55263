"""What the Google routes share: google-genai client set-up, error mapping, request ids, images.

Used by the google-imagen and gemini-image kinds, so Google's quirks (Vertex AI vs Gemini API
auth, error bodies, hidden SDK retries) live here once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import pydantic
from google import genai
from google.auth import exceptions as auth_errors
from google.genai import errors as genai_errors
from google.genai import types

from routes.base import BaseRoute
from routes.config import ConfigError
from routes.config import GeminiImageRoute as GeminiConfig
from routes.config import GoogleImagenRoute as GoogleImagenConfig
from routes.errors import (
    AuthError,
    BadRequestError,
    ProviderDownError,
    RouteError,
    RouteTimeoutError,
)
from routes.failures import ProviderFailure, clean_message, retry_after, route_error
from routes.media import sniff_mime
from routes.model import GeneratedImage
from routes.pacing import answer_arriving

# Google's front end promises no request-id header; proxies and gateways in front of it often
# add one, and the error body may carry a google.rpc.RequestInfo.
REQUEST_ID_HEADERS = ("x-request-id", "x-goog-request-id")
_REQUEST_INFO = "type.googleapis.com/google.rpc.RequestInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"

# The httpx responses seen by the current task, so a call can read the headers of an answer the
# SDK turned into a model object (generate_images drops them).
_responses: ContextVar[list[httpx.Response] | None] = ContextVar("google_responses", default=None)


@dataclass
class GoogleClient:
    """A genai.Client bound to our own httpx client (closed by us) and the mode it talks in."""

    genai: genai.Client
    http: httpx.AsyncClient
    mode: str  # "gemini-api" | "vertex" | "vertex-express"

    @property
    def provider(self) -> str:
        return "the Gemini API" if self.mode == "gemini-api" else "Vertex AI"

    async def aclose(self) -> None:
        await self.http.aclose()
        self.genai.close()


def check_auth_keys(
    route_id: str, *, api_key: str | None, project: str | None, location: str | None
) -> None:
    """Refuse configs the SDK would reject later, with a message naming the route's keys."""
    prefix = f"route '{route_id}'"
    if api_key and project:
        raise ConfigError(
            f"{prefix}: give either api_key (express mode) or project + location "
            "(application default credentials), not both"
        )
    if not api_key and not project:
        raise ConfigError(
            f"{prefix}: missing credentials: set api_key, or project (+ location) to use "
            "application default credentials"
        )
    if location and not project:
        raise ConfigError(f"{prefix}: location needs a project (express mode has no location)")


def image_size_to_send(
    route_id: str, model: str, value: str | None, offered: Sequence[str]
) -> str | None:
    """The image_size to send for a configured value, or None to send nothing.

    A model with a single output size takes no image_size; "1K" on it is what it makes anyway,
    so it is accepted and left out of the request. Anything else it cannot make is refused.
    """
    if value is None or value in offered:
        return value
    if not offered and value == "1K":
        return None
    accepted = ", ".join(offered) if offered else "only its one default size (1K)"
    raise ConfigError(
        f"route '{route_id}': image_size={value} is not offered by {model} (accepted: {accepted})"
    )


async def _remember(response: httpx.Response) -> None:
    sink = _responses.get()
    if sink is not None:
        sink.append(response)


def make_client(
    *,
    vertexai: bool,
    api_key: str | None,
    project: str | None,
    location: str | None,
    base_url: str | None,
    timeout: float,
) -> GoogleClient:
    """A genai.Client that makes exactly one HTTP attempt per call.

    google-genai retries nothing by default over httpx, but when aiohttp is installed it sends
    async calls through aiohttp and silently re-sends after a dropped connection (after sleeping
    1-10 s). Handing it our own httpx client keeps every call on httpx, once: the executor owns
    retries, so each attempt is counted in the run record.
    """
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        event_hooks={"response": [_remember, answer_arriving]},
    )
    options = types.HttpOptions(
        base_url=base_url,
        timeout=int(timeout * 1000),  # milliseconds, applied per request by the SDK
        retry_options=types.HttpRetryOptions(attempts=1),
        httpx_async_client=http,
    )
    if vertexai and api_key:
        mode = "vertex-express"
        client = genai.Client(vertexai=True, api_key=api_key, http_options=options)
    elif vertexai:
        mode = "vertex"
        client = genai.Client(
            vertexai=True, project=project, location=location, http_options=options
        )
    else:
        mode = "gemini-api"
        client = genai.Client(vertexai=False, api_key=api_key, http_options=options)
    return GoogleClient(genai=client, http=http, mode=mode)


@contextmanager
def seen_responses() -> Iterator[list[httpx.Response]]:
    """Collect the HTTP responses the SDK receives inside this block (same task only)."""
    sink: list[httpx.Response] = []
    token = _responses.set(sink)
    try:
        yield sink
    finally:
        _responses.reset(token)


def request_id_from_headers(headers: Mapping[str, str] | None) -> str | None:
    if headers is None:
        return None
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return str(value)
    return None


def request_id_from(responses: Sequence[httpx.Response]) -> str | None:
    for response in reversed(responses):
        found = request_id_from_headers(response.headers)
        if found:
            return found
    return None


def _detail_items(details: Any) -> list[Mapping[str, Any]]:
    """The google.rpc detail objects of an error body ({"error": {"details": [...]}})."""
    if isinstance(details, list) and len(details) == 1:
        details = details[0]
    if not isinstance(details, Mapping):
        return []
    inner = details.get("error", details)
    items = inner.get("details") if isinstance(inner, Mapping) else None
    return [item for item in items or [] if isinstance(item, Mapping)]


def _error_request_id(exc: genai_errors.APIError) -> str | None:
    response = exc.response if isinstance(exc.response, httpx.Response) else None
    found = request_id_from_headers(response.headers if response is not None else None)
    if found:
        return found
    for item in _detail_items(exc.details):
        if item.get("@type") == _REQUEST_INFO and item.get("requestId"):
            return str(item["requestId"])
    return None


def _codes(exc: genai_errors.APIError) -> tuple[str, ...]:
    """The status name (RESOURCE_EXHAUSTED) and any google.rpc.ErrorInfo reasons."""
    codes = [str(exc.status)] if exc.status else []
    for item in _detail_items(exc.details):
        if item.get("@type") == _ERROR_INFO and item.get("reason"):
            codes.append(str(item["reason"]))
    return tuple(codes)


def _api_error(exc: genai_errors.APIError, provider: str) -> RouteError:
    status = int(exc.code) if isinstance(exc.code, int) else None
    response = exc.response if isinstance(exc.response, httpx.Response) else None
    failure = ProviderFailure(
        status=status,
        codes=_codes(exc),
        message=clean_message(exc.message),
        request_id=_error_request_id(exc),
        retry_after=retry_after(
            response.headers if response is not None else None, _detail_items(exc.details)
        ),
    )
    fallback = f"{provider} answered HTTP {status or ''} {exc.status or ''}"
    return route_error("google", failure, message=failure.message or " ".join(fallback.split()))


def map_google_error(exc: BaseException, *, provider: str) -> RouteError:
    """Map a google-genai, google-auth or httpx failure onto the route error taxonomy."""
    if isinstance(exc, genai_errors.APIError):
        return _api_error(exc, provider)
    if isinstance(exc, httpx.TimeoutException):
        return RouteTimeoutError(f"{provider} did not answer in time")
    if isinstance(exc, httpx.TransportError):
        return RouteTimeoutError(f"could not reach {provider} (connection failed or dropped)")
    if isinstance(exc, auth_errors.DefaultCredentialsError):
        return AuthError(
            "no Google application default credentials were found",
            hint="Run gcloud auth application-default login or set "
            "GOOGLE_APPLICATION_CREDENTIALS on the bot's host, or use an api_key (express mode)",
        )
    if isinstance(exc, auth_errors.RefreshError):
        return AuthError(
            "Google refused to issue an access token for the configured credentials",
            hint="The application default credentials are expired or revoked: log in again",
        )
    if isinstance(exc, auth_errors.TransportError):
        return RouteTimeoutError("could not reach Google's token endpoint")
    if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError):
        return ProviderDownError(f"{provider} sent an answer that could not be read")
    if isinstance(exc, ValueError):
        # The SDK checks some parameters itself and raises ValueError before sending.
        return BadRequestError(str(exc))
    return ProviderDownError(f"unexpected {type(exc).__name__} from {provider}")


# What google-genai can raise during one call; anything else is an adapter bug and is left to
# the executor, which logs it with its traceback.
GOOGLE_CALL_ERRORS: tuple[type[BaseException], ...] = (
    genai_errors.APIError,
    httpx.HTTPError,
    auth_errors.GoogleAuthError,
    ValueError,  # includes json.JSONDecodeError and pydantic.ValidationError
)


def image_from_bytes(data: bytes | None, declared_mime: str | None) -> GeneratedImage | None:
    """A GeneratedImage from returned bytes, or None when there are none; bytes that are not
    an image make the whole answer unusable."""
    if not data:
        return None
    mime = sniff_mime(data)
    if mime is None:
        raise ProviderDownError(
            f"the provider sent image data that is not PNG, JPEG or WebP ({declared_mime})"
        )
    return GeneratedImage(data=data, mime=mime)


class GoogleRoute(BaseRoute):
    """What both Google kinds share: the client (Vertex or Gemini API), its location, the free
    `models.get` auth probe and closing. Subclasses set `vertexai`, `project` and the default
    location of their service."""

    config: GoogleImagenConfig | GeminiConfig
    default_location: ClassVar[str] = "us-central1"
    vertexai: bool = True
    project: str | None = None
    _client: GoogleClient | None = None

    @property
    def location(self) -> str | None:
        """Vertex location with a project; express mode and the Gemini API have none."""
        return (self.config.location or self.default_location) if self.project else None

    @property
    def client(self) -> GoogleClient:
        if self._client is None:
            key = self.config.api_key.get_secret_value() if self.config.api_key else None
            self._client = make_client(
                vertexai=self.vertexai,
                api_key=key,
                project=self.project,
                location=self.location,
                base_url=self.config.base_url,
                timeout=self.config.timeout_seconds,
            )
        return self._client

    async def check_auth(self) -> str | None:
        """models.get: free, proves the credentials and that the model is reachable."""
        client = self.client
        with seen_responses() as seen:
            try:
                await client.genai.aio.models.get(model=self.model)
            except GOOGLE_CALL_ERRORS as exc:
                raise map_google_error(exc, provider=client.provider) from None
        return request_id_from(seen)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
