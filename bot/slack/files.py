"""Images users shared in Slack, fetched for an edit (the "Edit image" shortcut).

Slack files are fetched with the bot token from Slack's own hosts only, after their type and
size are checked from files.info, so a crafted message cannot make the bot send its token
elsewhere or pull a huge file.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import httpx
from slack_sdk.web.async_client import AsyncWebClient

from routes.errors import InvalidRequest
from routes.media import IMAGE_MIMES, MAX_INPUT_BYTES, sniff_mime
from routes.model import InputImage

SLACK_FILE_HOSTS = {"files.slack.com", "slack-files.com"}


def image_files(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        f for f in message.get("files") or [] if str(f.get("mimetype", "")).startswith("image/")
    ]


def allowed_hosts(api_url: str) -> set[str]:
    """Slack's file hosts plus the configured API host (a local fake in tests)."""
    host = urlparse(api_url).netloc
    return SLACK_FILE_HOSTS | ({host} if host else set())


async def fetch_slack_image(
    client: AsyncWebClient, file_id: str, api_url: str, token: str
) -> InputImage:
    """Download one image the user shared in Slack, refusing anything not an image of sane size."""
    info = await client.files_info(file=file_id)
    meta = info.get("file") or {}
    mime = str(meta.get("mimetype") or "")
    size = int(meta.get("size") or 0)
    if mime not in IMAGE_MIMES:
        raise InvalidRequest(
            f"That file is {mime or 'not an image'}; edits take PNG, JPEG or WebP."
        )
    if size > MAX_INPUT_BYTES:
        raise InvalidRequest(f"That image is {size / 1e6:.1f} MB; edits take at most 20 MB.")
    url = str(meta.get("url_private_download") or meta.get("url_private") or "")
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or parsed.netloc not in allowed_hosts(api_url):
        raise InvalidRequest("That file is not hosted by Slack, so I will not fetch it.")
    if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost"):
        raise InvalidRequest("That file is not hosted by Slack, so I will not fetch it.")
    data = bytearray()
    async with (
        httpx.AsyncClient(timeout=30, follow_redirects=False) as http,
        http.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        if response.status_code != 200:
            raise InvalidRequest(f"Slack did not hand over the file (HTTP {response.status_code}).")
        async for chunk in response.aiter_bytes():
            data.extend(chunk)
            if len(data) > MAX_INPUT_BYTES:
                raise InvalidRequest("That image is larger than 20 MB; edits take at most 20 MB.")
    body = bytes(data)
    if sniff_mime(body) is None:
        raise InvalidRequest("That file is not a PNG, JPEG or WebP image.")
    return InputImage(
        data=body, mime=mime, name=str(meta.get("name") or "input.png"), source=f"slack:{file_id}"
    )
