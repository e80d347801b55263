"""What every OpenAI-compatible route shares: client set-up, error mapping, image decoding.

Used by the openai, openai-responses and gateway kinds and the self-hosted openai flavor, so
the OpenAI family's quirks live here once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from routes.errors import (
    ORG_VERIFICATION_HINT,
    AuthError,
    BadRequestError,
    EmptyResultError,
    ModerationError,
    ProviderDownError,
    RateLimitError,
    RouteError,
    RouteTimeoutError,
    looks_like_org_verification,
)
from routes.media import sniff_mime
from routes.model import GeneratedImage, TokenCount

if TYPE_CHECKING:
    import openai

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}


def make_client(
    *,
    api_key: str | None,
    base_url: str | None,
    timeout: float,
    organization: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client with the SDK's own retries OFF: the executor retries, so each
    attempt is counted once in the run record."""
    import openai

    return openai.AsyncOpenAI(
        # The SDK refuses to start without a key; local servers often need none.
        api_key=api_key or "not-needed",
        base_url=base_url or DEFAULT_BASE_URL,
        organization=organization,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        max_retries=0,
        default_headers=dict(headers or {}),
    )


def _retry_after(headers: httpx.Headers | None) -> float | None:
    if headers is None:
        return None
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        return seconds / 1000 if name.endswith("-ms") else seconds
    return None


def _error_fields(body: Any) -> tuple[str, str, str]:
    """(code, type, message) from an OpenAI error body, tolerating other shapes."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            return (
                str(inner.get("code") or ""),
                str(inner.get("type") or ""),
                str(inner.get("message") or ""),
            )
        if isinstance(inner, str):
            return "", "", inner
    return "", "", ""


def map_openai_error(exc: Exception, *, provider: str = "OpenAI") -> RouteError:
    """Map an openai SDK exception onto the route error taxonomy."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return RouteTimeoutError(f"{provider} did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return RouteTimeoutError(f"could not reach {provider} (connection failed or dropped)")
    if not isinstance(exc, openai.APIStatusError):
        return ProviderDownError(f"unexpected {type(exc).__name__} from {provider}")
    status = exc.status_code
    request_id = exc.request_id or exc.response.headers.get("x-request-id")
    code, err_type, message = _error_fields(exc.body)
    message = message or f"HTTP {status}"
    common: dict[str, Any] = {"request_id": request_id, "status_code": status}
    if looks_like_org_verification(message):
        return AuthError(message, hint=ORG_VERIFICATION_HINT, **common)
    if code == "moderation_blocked" or "safety system" in message.lower():
        return ModerationError(message, **common)
    if status == 429:
        if code == "insufficient_quota" or err_type == "insufficient_quota":
            return AuthError(
                message,
                hint="This is a billing limit, not a rate limit: add credit or raise the "
                "project's budget, then try again",
                **common,
            )
        return RateLimitError(message, retry_after=_retry_after(exc.response.headers), **common)
    if status in (401, 403):
        hint = (
            "Check the route's api_key and that the key's project can use this model"
            if status == 401
            else "The key works but this account or project may not use the model yet"
        )
        return AuthError(message, hint=hint, **common)
    if status == 402:
        return AuthError(message, hint="Add credit to the provider account", **common)
    if status in (408, 409) or status >= 500:
        return ProviderDownError(message, **common)
    if status == 404:
        return BadRequestError(message, hint="Check the route's model and base_url", **common)
    return BadRequestError(message, **common)


def decode_images(items: Any, output_format: str | None) -> tuple[GeneratedImage, ...]:
    """Images from an OpenAI `data` list: base64 preferred, which GPT image models always send."""
    mime = _MIME.get(output_format or "png", "image/png")
    images: list[GeneratedImage] = []
    for item in items or []:
        b64 = getattr(item, "b64_json", None)
        if b64 is None and isinstance(item, Mapping):
            b64 = item.get("b64_json")
        if not b64:
            continue
        try:
            data = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise ProviderDownError("the provider sent an image that is not valid base64") from None
        images.append(GeneratedImage(data=data, mime=sniff_mime(data) or mime))
    return tuple(images)


def require_images(images: tuple[GeneratedImage, ...], request_id: str | None) -> None:
    if not images:
        raise EmptyResultError(
            "the provider answered but sent no image (often a silent safety filter)",
            request_id=request_id,
        )


def usage_dict(usage: Any) -> dict[str, Any] | None:
    if usage is None:
        return None
    if hasattr(usage, "model_dump"):
        dumped: dict[str, Any] = usage.model_dump(exclude_none=True)
        return dumped
    if isinstance(usage, Mapping):
        return dict(usage)
    return None


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def image_token_count(model: str, usage: Mapping[str, Any] | None) -> TokenCount | None:
    """Token classes from an image model's usage (the Images API `usage`, or the Responses
    tool's `tool_usage.image_gen`): input split text/image, output split by
    `output_tokens_details` when present (older answers counted only image output)."""
    if not usage:
        return None
    details = usage.get("input_tokens_details") or {}
    image_in = _count(details.get("image_tokens"))
    text_in = (
        _count(details.get("text_tokens"))
        if "text_tokens" in details
        else max(_count(usage.get("input_tokens")) - image_in, 0)
    )
    # Prompt caching, where an answer reports it, applies to the text prompt.
    cached = min(_count(details.get("cached_tokens")), text_in)
    out = _count(usage.get("output_tokens"))
    out_details = usage.get("output_tokens_details") or {}
    if out_details:
        text_out = _count(out_details.get("text_tokens"))
        image_out = _count(out_details.get("image_tokens"))
    else:
        text_out, image_out = 0, out
    return TokenCount(
        model=model,
        text_in=text_in - cached,
        cached_text_in=cached,
        image_in=image_in,
        text_out=text_out,
        image_out=image_out,
    )


def text_token_count(model: str, usage: Mapping[str, Any] | None) -> TokenCount | None:
    """Token classes from a text model's Responses `usage` (input includes cached tokens,
    output includes reasoning tokens, all billed at the text rates)."""
    if not usage:
        return None
    details = usage.get("input_tokens_details") or {}
    total_in = _count(usage.get("input_tokens"))
    cached = min(_count(details.get("cached_tokens")), total_in)
    return TokenCount(
        model=model,
        text_in=total_in - cached,
        cached_text_in=cached,
        text_out=_count(usage.get("output_tokens")),
    )
