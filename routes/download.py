"""Downloads an image from a URL with one set of checks, for a provider's answer (BFL results,
gateway `data[].url`) and for a file a user shared in Slack: scheme and host, the size cap
while streaming, and the file's real type.

Credentials go only to the host that issued them: a URL on another host is fetched with no
key (providers) or not at all (Slack), so a crafted answer or message cannot make the bot send
a key elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import ip_address
from urllib.parse import urlparse

import httpx

from routes.errors import ProviderDownError
from routes.media import IMAGE_MIMES, sniff_mime
from routes.model import GeneratedImage
from routes.pacing import answer_arriving

# Generous for a 4K PNG, small enough that a hostile URL cannot fill the disk or memory.
MAX_IMAGE_BYTES = 40 * 1024 * 1024


class DownloadRefused(Exception):
    """A URL or a downloaded file the checks refused. `reason` says which check: `url` (no
    usable URL), `plain_http` (http on a host that may not serve it), `status` (not HTTP 200),
    `too_large`, `not_image`, `unreachable`."""

    def __init__(self, reason: str, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


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


def check_url(url: str, *, plain_http_ok: bool = False) -> None:
    """Refuse a URL that is not http(s) with a host, or plain http anywhere but where
    `plain_http_ok` says (the route's own host) or on loopback."""
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise DownloadRefused("url")
    if parsed.scheme == "http" and not (plain_http_ok or _loopback(parsed.hostname)):
        raise DownloadRefused("plain_http")


async def fetch_image(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = MAX_IMAGE_BYTES,
    read_timeout: float = 60.0,
) -> GeneratedImage:
    """GET `url` (already checked) and return the image it serves: HTTP 200, at most
    `max_bytes` (declared and as streamed), and really a PNG, JPEG or WebP whatever the server
    called it. Redirects are not followed while `headers` carry credentials."""
    data = bytearray()
    try:
        async with (
            httpx.AsyncClient(timeout=read_timeout, follow_redirects=not headers) as client,
            client.stream("GET", url, headers=dict(headers or {})) as response,
        ):
            if response.status_code != 200:
                raise DownloadRefused("status", status_code=response.status_code)
            await answer_arriving(response)  # the image is the run's answer (routes.pacing)
            if int(response.headers.get("content-length") or 0) > max_bytes:
                raise DownloadRefused("too_large")
            async for chunk in response.aiter_bytes():
                data.extend(chunk)
                if len(data) > max_bytes:
                    raise DownloadRefused("too_large")
    except httpx.TransportError as exc:
        raise DownloadRefused("unreachable") from exc
    body = bytes(data)
    mime = sniff_mime(body)
    if mime is None or mime not in IMAGE_MIMES:
        raise DownloadRefused("not_image")
    return GeneratedImage(data=body, mime=mime)


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
    on that host, and plain http is accepted only there or on loopback. A refusal is a
    provider failure that is not retried (the call that made the URL was already billed)."""
    on_issuer = same_host(url, issuer)
    try:
        check_url(url, plain_http_ok=on_issuer)
        return await fetch_image(
            url,
            headers=dict(credentials or {}) if on_issuer else None,
            read_timeout=read_timeout,
        )
    except DownloadRefused as refused:
        cause = refused.__cause__
        sentence = {
            "url": f"{what} has no usable URL",
            "plain_http": f"{what} URL is plain http on another host; refusing to fetch it",
            "status": f"downloading {what} failed (HTTP {refused.status_code})",
            "too_large": f"{what} is too large",
            "not_image": f"{what} is not a PNG, JPEG or WebP image",
            "unreachable": f"could not download {what} ({type(cause).__name__})",
        }[refused.reason]
        raise ProviderDownError(
            sentence, request_id=request_id, status_code=refused.status_code, retryable=False
        ) from None
