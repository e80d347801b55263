"""The one poster: the bot's Slack Web API client and every message it sends, redacted.

Slack quirks live here: retries on 429/5xx/connection errors (never before ack: these calls
happen in background tasks), `not_in_channel` answered through response_url, images uploaded
privately with files_upload_v2 and shown through image blocks once Slack has processed them.
Delivery errors become return values: a Slack hiccup must not lose a run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from cachetools import TTLCache
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.core.redaction import Redactor

log = logging.getLogger(__name__)

NOT_A_MEMBER = ("not_in_channel", "channel_not_found", "is_archived")
# Failures of one delivery (Slack said no, the connection broke, it took too long).
DELIVERY_ERRORS = (SlackClientError, aiohttp.ClientError, TimeoutError)
Blocks = Sequence[Block | dict[str, Any]]
INVITE_HINT = (
    "I can't post in this channel: invite me with `/invite @imageroute` "
    "(or use a channel I'm in) and try again."
)
REMOVED_HINT = (
    "(I can no longer post in that channel, so this comes to you directly: invite me back "
    "with `/invite @imageroute` to see results there.)"
)
# Slack takes up to five posts per response_url, within 30 minutes (third-party sources).
RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 30 * 60
# files.completeUploadExternal answers before Slack has processed the file, and an image block
# naming a file Slack has not processed is refused (invalid_blocks: "invalid slack file").
# files.info is asked after each of these waits (seconds) until the file has its image type.
FILE_READY_WAITS = (0.0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
# Image blocks show only these Slack file types (Block Kit's slack_file object).
BLOCK_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")


@dataclass(frozen=True)
class SlackImage:
    """An image to upload: its bytes, file name, title and alt text (for screen readers)."""

    filename: str
    data: bytes
    title: str
    alt: str


class RedactingWebClient(AsyncWebClient):
    """The bot's Web API client: every call's arguments pass the redactor on their way out.

    Every Web API method of slack_sdk funnels into `api_call` with Block Kit models already
    turned into plain data, so this one override covers text, blocks, views (App Home, modals),
    file titles, file names and initial comments, whoever makes the call: the poster, a
    listener's injected `client`, Bolt's `say`. The poster redacts too; this is the net under
    it."""

    redactor: Redactor = Redactor()

    async def api_call(
        self,
        api_method: str,
        *,
        json: dict[str, Any] | None = None,
        data: Any = None,
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        redact = self.redactor.deep
        if isinstance(data, dict):
            data = redact(data)
        return await super().api_call(
            api_method,
            json=redact(json) if json is not None else None,
            data=data,
            params=redact(params) if params is not None else None,
            **kwargs,
        )


def make_client(
    token: str, base_url: str, *, redactor: Redactor | None = None, timeout: int = 30
) -> AsyncWebClient:
    client = RedactingWebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )
    client.redactor = redactor or Redactor()
    return client


class SlackPoster:
    """Posting with errors turned into return values; every text passes the redactor."""

    def __init__(self, client: AsyncWebClient, redactor: Redactor) -> None:
        self.client = client
        self.redact = redactor
        self._uses: TTLCache[str, int] = TTLCache(4096, RESPONSE_URL_SECONDS)

    async def post(
        self,
        channel: str,
        text: str,
        *,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        fallback: str | None = None,
        fallback_text: str | None = None,
    ) -> str | None:
        """chat.postMessage; returns the message ts, or None if Slack refused. A new message
        in a channel closed to the bot raises NotInChannel; a thread reply there goes to
        `fallback` (the requester's response_url) instead, saying why: `fallback_text` when
        the blocks carry more than `text` does."""
        try:
            response = await self._post_message(channel, text, blocks, thread_ts)
        except SlackApiError as exc:
            log.warning("chat.postMessage to %s failed: %s", channel, _error(exc))
            if thread_ts is None and _error(exc) in NOT_A_MEMBER:
                raise NotInChannel(_error(exc)) from None
            if _error(exc) in NOT_A_MEMBER:
                await self.respond(fallback, f"{(fallback_text or text).strip()}\n{REMOVED_HINT}")
            return None
        except DELIVERY_ERRORS as exc:
            log.warning("chat.postMessage to %s failed: %s", channel, type(exc).__name__)
            return None
        ts = response.get("ts")
        return str(ts) if ts else None

    async def _post_message(
        self, channel: str, text: str, blocks: Blocks | None, thread_ts: str | None
    ) -> Any:
        for wait in (1.0, 2.0, None):
            try:
                return await self.client.chat_postMessage(
                    channel=channel,
                    text=self.redact(text),
                    blocks=blocks,
                    thread_ts=thread_ts,
                    unfurl_links=False,
                    unfurl_media=False,
                )
            except SlackApiError as exc:
                if wait is None or not _file_not_ready(exc):
                    raise
                await asyncio.sleep(wait)  # an image file Slack is still processing
        raise AssertionError("unreachable")

    async def update(self, channel: str, ts: str, text: str, blocks: Blocks | None = None) -> bool:
        for wait in (1.0, 2.0, None):
            try:
                await self.client.chat_update(
                    channel=channel, ts=ts, text=self.redact(text), blocks=blocks
                )
                return True
            except SlackApiError as exc:
                if wait is not None and _file_not_ready(exc):
                    await asyncio.sleep(wait)
                    continue
                log.warning("chat.update failed: %s", _describe(exc))
                return False
            except DELIVERY_ERRORS as exc:
                log.warning("chat.update failed: %s", _describe(exc))
                return False
        return False

    async def share_images(self, images: Sequence[SlackImage]) -> list[str]:
        """Upload images without sharing them anywhere, for image blocks to show; their file
        ids once Slack has processed them, or [] when the upload failed."""
        try:
            response = await self.client.files_upload_v2(
                file_uploads=[
                    {
                        "content": image.data,
                        "filename": image.filename,
                        "title": image.title,
                        "alt_txt": image.alt,
                    }
                    for image in images
                ],
            )
        except DELIVERY_ERRORS as exc:
            log.warning("image upload failed: %s", self.redact(_describe(exc)))
            return []
        ids = [str(f.get("id")) for f in response.get("files") or [] if f.get("id")]
        await asyncio.gather(*(self._processed(file_id) for file_id in ids))
        return ids

    async def _processed(self, file_id: str) -> bool:
        """Wait until Slack knows the file as an image (files.info gives its type)."""
        for wait in FILE_READY_WAITS:
            await asyncio.sleep(wait)
            try:
                info = await self.client.files_info(file=file_id)
            except DELIVERY_ERRORS as exc:
                log.debug("files.info %s: %s", file_id, _describe(exc))
                continue
            if str((info.get("file") or {}).get("mimetype") or "").startswith("image/"):
                return True
        log.warning("Slack has not processed file %s yet; showing it anyway", file_id)
        return False

    async def upload(
        self,
        channel: str,
        thread_ts: str | None,
        files: list[tuple[str, bytes, str]],
        comment: str,
        *,
        fallback: str | None = None,
    ) -> bool:
        """Upload (filename, bytes, title) files into a thread with one comment. Where the
        channel is closed to the bot, the comment goes to `fallback` (a response_url)."""
        try:
            await self.client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                initial_comment=self.redact(comment),
                file_uploads=[
                    {"content": data, "filename": name, "title": title}
                    for name, data, title in files
                ],
            )
        except DELIVERY_ERRORS as exc:  # the upload URL step is plain HTTP
            log.warning("file upload to %s failed: %s", channel, self.redact(_describe(exc)))
            if isinstance(exc, SlackApiError) and _error(exc) in NOT_A_MEMBER:
                await self.respond(fallback, f"{comment}\n{REMOVED_HINT}")
            return False
        return True

    async def ephemeral(
        self,
        channel: str | None,
        user: str | None,
        text: str,
        *,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
    ) -> bool:
        """A message only `user` sees (in the thread, when given)."""
        if not user or not channel:
            return False
        try:
            await self.client.chat_postEphemeral(
                channel=channel,
                user=user,
                text=self.redact(text),
                blocks=blocks,
                thread_ts=thread_ts,
            )
        except DELIVERY_ERRORS as exc:
            log.warning("chat.postEphemeral failed: %s", _describe(exc))
            return False
        return True

    async def respond(self, response_url: str | None, text: str, *, public: bool = False) -> bool:
        """Answer through a slash command's response_url (works where the bot is no member).
        Slack takes a few posts per URL: past that the answer is only logged."""
        if not response_url:
            return False
        used = self._uses.get(response_url, 0)
        if used >= RESPONSE_URL_USES:
            log.warning("response_url used %d times already; not sent: %s", used, text[:80])
            return False
        self._uses[response_url] = used + 1
        try:
            response = await AsyncWebhookClient(response_url, timeout=10).send(
                text=self.redact(text),
                response_type="in_channel" if public else "ephemeral",
            )
        except DELIVERY_ERRORS as exc:
            log.warning("response_url post failed: %s", self.redact(_describe(exc)))
            return False
        return 200 <= response.status_code < 300

    async def answer(
        self,
        respond: AsyncRespond,
        text: str,
        *,
        blocks: Blocks | None = None,
        public: bool = False,
        replace: bool = False,
        delete: bool = False,
    ) -> bool:
        """Answer through Bolt's injected `respond` (the request's response_url): private by
        default; `replace` rewrites the message the button was on, `delete` removes it."""
        try:
            response = await respond(
                text=self.redact(text),
                blocks=list(blocks) if blocks is not None else None,
                response_type="in_channel" if public else "ephemeral",
                replace_original=replace or None,
                delete_original=delete or None,
            )
        except (*DELIVERY_ERRORS, ValueError) as exc:  # ValueError: no response_url
            log.warning("respond failed: %s", self.redact(_describe(exc)))
            return False
        return 200 <= response.status_code < 300


class NotInChannel(Exception):
    """The bot cannot post a new message in this channel."""


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or "unknown_error")


def _file_not_ready(exc: SlackApiError) -> bool:
    """invalid_blocks because an image block names a file Slack has not processed yet."""
    errors = " ".join(str(e) for e in exc.response.get("errors") or [])
    return _error(exc) == "invalid_blocks" and "slack_file" in errors


def _describe(exc: BaseException) -> str:
    return _error(exc) if isinstance(exc, SlackApiError) else f"{type(exc).__name__}: {exc}"
