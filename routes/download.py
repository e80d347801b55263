"""Downloads an image a provider answered with as a URL (BFL results, gateway `data[].url`),
with the checks the Slack file download makes: scheme and host, size while streaming, and the
file's real type.

Credentials go only to the host that issued them: a URL on another host is fetched with no
key, so an answer cannot make the bot send a route's key elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import ip_address
from urllib.parse import urlparse

import httpx

from routes.errors import ProviderDownError
from routes.media import IMAGE_MIMES, sniff_mime
from routes.model import GeneratedImage

# Generous for a 4K PNG, small enough that a hostile URL cannot fill the disk or memory.
MAX_IMAGE_BYTES = 40 * 1024 * 1024


def _failed(
    message: str, *, request_id: str | None, status_code: int | None = None
) -> ProviderDownError:
    return ProviderDownError(
        message, request_id=request_id, status_code=status_code, retryable=False
    )


def _loopback(host: str | None) -> bool:
    if host in (None, ""):
        return False
    if host == "localhost":
        return True
    try:
        return ip_address(host or "").is_loopback
    except ValueError:
        return False


def same_host(url: str, base_url: str | None) -> bool:
    """True when `url` is served by the host (and port) of `base_url`."""
    if not base_url:
        return False
    a, b = urlparse(url), urlparse(base_url)
    return (a.hostname, a.port) == (b.hostname, b.port) and bool(a.hostname)


async def download_image(
    url: str,
    *,
    issuer: str | None = None,
    credentials: Mapping[str, str] | None = None,
    read_timeout: float = 60.0,
    request_id: str | None = None,
    what: str = "the result image",
) -> GeneratedImage:
    """Fetch one image URL from a provider's answer.

    `issuer` is the route's base URL: `credentials` (auth headers) are sent only when the URL is
    on that host, and plain http is accepted only there or on loopback. Redirects are not
    followed while credentials are attached."""
    parsed = urlparse(url)
    on_issuer = same_host(url, issuer)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise _failed(f"{what} has no usable URL", request_id=request_id)
    if parsed.scheme == "http" and not (on_issuer or _loopback(parsed.hostname)):
        raise _failed(
            f"{what} URL is plain http on another host; refusing to fetch it", request_id=request_id
        )
    headers = dict(credentials or {}) if on_issuer else {}
    data = bytearray()
    try:
        async with (
            httpx.AsyncClient(timeout=read_timeout, follow_redirects=not headers) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise _failed(
                    f"downloading {what} failed (HTTP {response.status_code})",
                    request_id=request_id,
                    status_code=response.status_code,
                )
            declared = int(response.headers.get("content-length") or 0)
            if declared > MAX_IMAGE_BYTES:
                raise _failed(f"{what} is too large", request_id=request_id)
            async for chunk in response.aiter_bytes():
                data.extend(chunk)
                if len(data) > MAX_IMAGE_BYTES:
                    raise _failed(f"{what} is too large", request_id=request_id)
    except httpx.TransportError as exc:
        raise _failed(
            f"could not download {what} ({type(exc).__name__})", request_id=request_id
        ) from None
    body = bytes(data)
    mime = sniff_mime(body)
    if mime is None or mime not in IMAGE_MIMES:
        raise _failed(f"{what} is not a PNG, JPEG or WebP image", request_id=request_id)
    return GeneratedImage(data=body, mime=mime)
