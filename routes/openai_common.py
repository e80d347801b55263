"""What every OpenAI-compatible route shares: client set-up, error mapping, image decoding.

Used by the openai, openai-responses and gateway kinds and the self-hosted openai flavor, so
the OpenAI family's quirks live here once.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from routes.download import download_image
from routes.errors import (
    EmptyResultError,
    ProviderDownError,
    RouteError,
    RouteTimeoutError,
)
from routes.failures import ProviderFailure, retry_after, route_error
from routes.media import decode_base64, sniff_mime
from routes.model import GeneratedImage, ImageRequest, TokenCount
from routes.pacing import answer_arriving, crunch

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

    client = openai.AsyncOpenAI(
        # The SDK refuses to start without a key; local servers often need none.
        api_key=api_key or "not-needed",
        base_url=base_url or DEFAULT_BASE_URL,
        organization=organization or None,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        max_retries=0,
        default_headers=dict(headers or {}),
        # A large answer is read once the run has its turn to finish (routes.pacing).
        http_client=openai.DefaultAsyncHttpxClient(event_hooks={"response": [answer_arriving]}),
    )
    # The SDK fills a missing organization and project from OPENAI_ORG_ID / OPENAI_PROJECT_ID
    # and sends them as headers, even to a gateway. A route sends only what it configures: an
    # unset or empty organization (the example config's ${OPENAI_ORG_ID:-}) sends no header.
    client.organization = organization or None
    client.project = None
    # The SDK imports its resource modules (all of them) on the first `client.images` or
    # `client.responses`: a second of importing on the event loop at the first run. Built
    # here, that happens where the client is built (in a thread, before the bot says ready).
    _ = client.images, client.responses
    return client


def images_api_params(request: ImageRequest, size_label: str) -> dict[str, Any]:
    """The Images API body fields for a request (model and prompt added by the caller).

    The edit endpoint takes no `moderation` (SDK signature of images.edit; the capability data
    refuses a non-default moderation on edits), so it is sent on generations only."""
    params: dict[str, Any] = {"n": request.n}
    if size_label != "auto" or request.size:
        params["size"] = size_label
    fields: list[tuple[str, Any]] = [
        ("quality", request.quality),
        ("background", request.background),
        ("output_format", request.output_format),
        ("output_compression", request.output_compression),
    ]
    if not request.is_edit:
        fields.append(("moderation", request.moderation))
    params.update((key, value) for key, value in fields if value is not None)
    return params


async def call_images_api(
    client: openai.AsyncOpenAI, *, model: str, request: ImageRequest, params: dict[str, Any]
) -> Any:
    """POST /images/generations (JSON), or /images/edits (multipart: every input image, then
    the optional mask) when the request has input images. Returns the raw SDK response."""
    if not request.is_edit:
        return await client.images.with_raw_response.generate(
            model=model, prompt=request.prompt, **params
        )
    files = [(img.name, img.data, img.mime) for img in request.input_images]
    extra: dict[str, Any] = {}
    if request.mask is not None:
        extra["mask"] = (request.mask.name, request.mask.data, request.mask.mime)
    return await client.images.with_raw_response.edit(
        model=model, prompt=request.prompt, image=files, **extra, **params
    )


def _error_fields(body: Any) -> tuple[tuple[str, ...], str]:
    """(codes, message) from an OpenAI error body (`error.code` and `error.type` are both
    codes the table matches on), tolerating the other shapes gateways send."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            codes = tuple(str(inner[k]) for k in ("code", "type") if inner.get(k))
            return codes, str(inner.get("message") or "")
        if isinstance(inner, str):
            return (), inner
    return (), ""


def map_openai_error(exc: Exception, *, provider: str = "OpenAI") -> RouteError:
    """Map an openai SDK exception onto the route error taxonomy (the [[openai]] table)."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return RouteTimeoutError(f"{provider} did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return RouteTimeoutError(f"could not reach {provider} (connection failed or dropped)")
    if not isinstance(exc, openai.APIStatusError):
        return ProviderDownError(f"unexpected {type(exc).__name__} from {provider}")
    headers = exc.response.headers
    codes, message = _error_fields(exc.body)
    failure = ProviderFailure(
        status=exc.status_code,
        codes=codes,
        message=message,
        request_id=exc.request_id or headers.get("x-request-id"),
        retry_after=retry_after(headers),
    )
    return route_error("openai", failure)


async def collect_images(
    items: Any,
    output_format: str | None,
    *,
    issuer: str | None,
    credentials: Mapping[str, str],
    request_id: str | None,
) -> tuple[GeneratedImage, ...]:
    """Images from an OpenAI `data` list. GPT image models always send `b64_json`; gateways and
    local servers may send `url` instead, which is downloaded with the checks of
    routes.download (the route's credentials only ever go to the route's own host)."""
    mime = _MIME.get(output_format or "png", "image/png")
    images: list[GeneratedImage] = []
    for item in items or []:
        b64 = _field(item, "b64_json")
        url = _field(item, "url")
        if b64:
            try:
                # Megabytes of base64: decoded off the event loop, which serves every request.
                data = await crunch(decode_base64, b64)
            except (binascii.Error, ValueError):
                raise ProviderDownError(
                    "the provider sent an image that is not valid base64", request_id=request_id
                ) from None
            images.append(GeneratedImage(data=data, mime=sniff_mime(data) or mime))
        elif url:
            images.append(
                await download_image(
                    str(url), issuer=issuer, credentials=credentials, request_id=request_id
                )
            )
    return tuple(images)


def _field(item: Any, name: str) -> Any:
    value = getattr(item, name, None)
    if value is None and isinstance(item, Mapping):
        value = item.get(name)
    return value


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
