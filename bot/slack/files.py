"""Images users shared in Slack, fetched for an edit (the "Edit image" shortcut).

Slack files are fetched with the bot token from Slack's own hosts only, after their type and
size are checked from files.info, so a crafted message cannot make the bot send its token
elsewhere or pull a huge file; the download itself makes the checks every image download makes
(routes.download: scheme, size cap while streaming, the file's real type).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from slack_sdk.web.async_client import AsyncWebClient

from routes.download import DownloadRefused, check_url, fetch_image
from routes.errors import InvalidRequest
from routes.media import IMAGE_MIMES, MAX_INPUT_BYTES
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
    """Download one image the user shared in Slack, refusing anything not an image of sane size.

    The checks are the provider downloads' (routes.download); Slack's own rule on top: the
    file must be on one of Slack's hosts, the only place the bot token is ever sent."""
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
    try:
        if urlparse(url).netloc not in allowed_hosts(api_url):
            raise DownloadRefused("url")
        check_url(url)  # https only (plain http on loopback: a local Slack stand-in)
        image = await fetch_image(
            url, headers={"Authorization": f"Bearer {token}"}, max_bytes=MAX_INPUT_BYTES
        )
    except DownloadRefused as refused:
        raise InvalidRequest(_refusal(refused)) from None
    return InputImage(
        data=image.data,
        mime=image.mime,
        name=str(meta.get("name") or "input.png"),
        source=f"slack:{file_id}",
    )


def _refusal(refused: DownloadRefused) -> str:
    """The sentence a user reads when their file could not be used."""
    return {
        "url": "That file is not hosted by Slack, so I will not fetch it.",
        "plain_http": "That file is not hosted by Slack, so I will not fetch it.",
        "status": f"Slack did not hand over the file (HTTP {refused.status_code}).",
        "too_large": "That image is larger than 20 MB; edits take at most 20 MB.",
        "not_image": "That file is not a PNG, JPEG or WebP image.",
        "unreachable": "Slack's file server could not be reached; try again in a moment.",
    }[refused.reason]
