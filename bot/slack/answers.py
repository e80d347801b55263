"""What `/imageroute` answers (advice, routes, stats, runs, health), as Block Kit.

Answers are private first: each carries a key its Share in channel and More buttons hand back,
so the same answer can be shown again, now for everyone (saying who asked) or in full. A key is
the question itself when it fits in a button's value, else a short id remembered for a day.

Answers built from runs (`stats`, `runs`) show only runs the viewer may see
(bot.core.visibility): privately, their own runs and the conversation's; shared in a channel,
that channel's runs only, since everyone there reads it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote, unquote

from cachetools import TTLCache
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from advisor import Advice
from bot.core.lifecycle import route_model_statuses
from bot.core.visibility import Viewer
from bot.core.workspace import advise_workspace
from bot.health.monitor import HealthMonitor
from bot.slack import blocks
from bot.slack.messages import SUBCOMMANDS
from bot.slack.poster import DELIVERY_ERRORS
from routes.base import Route
from storage.checks import CheckLog
from storage.health import HealthLog
from storage.runlog import RunLog
from storage.tables import Run, utcnow

log = logging.getLogger(__name__)

# A button's value holds at most 2,000 characters.
_VALUE_ROOM = 1900
_KEY_DAYS = 1
# What a compressed question may unpack to: a long slash command several times over (a value
# that unpacks to more is not one of ours).
_QUESTION_MAX_BYTES = 16_000


@dataclass(frozen=True)
class Answer:
    """A summary line (the notification text) and the blocks of one answer."""

    summary: str
    blocks: list[Block]


class AnswerKeys:
    """Turns an asked text into a button value and back. A question that does not fit
    percent-encoded travels compressed, so any process can read it back (after a restart, on
    another replica); only one that does not fit even then is remembered here, by an id."""

    def __init__(self) -> None:
        self._long: TTLCache[str, str] = TTLCache(4096, _KEY_DAYS * 86400)

    def key(self, asked: str) -> str:
        # Percent-encoded: a button's value carries no markup characters, even unrendered.
        quoted = quote(asked, safe=" ,.?!'-")
        if len(quoted) <= _VALUE_ROOM:
            return "q:" + quoted
        packed = base64.urlsafe_b64encode(zlib.compress(asked.encode(), 9)).decode()
        if len(packed) <= _VALUE_ROOM:
            return "z:" + packed
        digest = hashlib.sha256(asked.encode()).hexdigest()[:20]
        self._long[digest] = asked
        return "k:" + digest

    def asked(self, key: str) -> str | None:
        """The text a key stands for, or None when it has been forgotten (a restart, a day)
        or is not one of ours."""
        if key.startswith("q:"):
            return unquote(key[2:])
        if key.startswith("z:"):
            return _unpacked(key[2:])
        if key.startswith("k:"):
            return self._long.get(key[2:])
        return None


def _unpacked(packed: str) -> str | None:
    """A compressed question, refused when it would unpack to more than a question can be."""
    try:
        inflater = zlib.decompressobj()
        text = inflater.decompress(base64.urlsafe_b64decode(packed), _QUESTION_MAX_BYTES)
        if inflater.unconsumed_tail or not inflater.eof:
            return None
        return text.decode()
    except (binascii.Error, ValueError, zlib.error):
        return None


class Answers:
    """The read-only answers of `/imageroute`, each rendered private or shared."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        runlog: RunLog,
        health_log: HealthLog,
        monitor: HealthMonitor,
        keys: AnswerKeys | None = None,
        *,
        checklog: CheckLog | None = None,
    ) -> None:
        self.routes = routes
        self.runlog = runlog
        self.health_log = health_log
        self.monitor = monitor
        self.keys = keys or AnswerKeys()
        self.checklog = checklog

    async def answer(
        self,
        asked: str,
        client: AsyncWebClient,
        viewer: Viewer,
        *,
        shared_by: str | None = None,
    ) -> Answer:
        """The answer to `/imageroute <asked>` for `viewer`: private with a Share button, or,
        when `shared_by` is given, for the channel with a line saying who asked (then `viewer`
        is the channel itself)."""
        word = asked.lower().split(" ", 1)[0]
        key = self.keys.key(asked)
        if word in SUBCOMMANDS and word != "bench":
            answer = await self._lookup(word, client, viewer)
            if shared_by is None:
                return Answer(answer.summary, blocks.with_share(answer.blocks, key))
            return Answer(
                answer.summary, blocks.checked([blocks.shared_by(shared_by, asked), *answer.blocks])
            )
        health = await self.monitor.states()
        advice = await self.advice(asked, health)
        board_rows = {rid: r.config.board_row for rid, r in self.routes.items()}
        rendered = blocks.advice_blocks(
            asked,
            advice,
            board_rows,
            key=key,
            shared_by_user=shared_by,
            private=shared_by is None,
            failing={rid for rid, state in health.items() if state == "failing"},
        )
        return Answer(self.advice_summary(advice), rendered)

    async def advice(self, question: str, health: Mapping[str, str] | None = None) -> Advice:
        if health is None:
            health = await self.monitor.states()
        return await asyncio.to_thread(
            advise_workspace, question, self.routes, self.runlog, health, self.checklog
        )

    @staticmethod
    def advice_summary(advice: Advice) -> str:
        if advice.scope != "advice":
            return blocks.advice_heading(advice)
        return f"First route to benchmark: {advice.route or 'none fits as asked'}"

    async def _lookup(self, word: str, client: AsyncWebClient, viewer: Viewer) -> Answer:
        if word == "routes":
            rows = [
                (
                    rid,
                    r.kind,
                    r.model,
                    r.config.board_row,
                    r.config.billing_owner,
                    route_model_statuses(r.config),
                )
                for rid, r in self.routes.items()
            ]
            return Answer("Configured routes", blocks.routes_blocks(rows))
        # What this viewer may see; the run log counts it from its rollups, not the runs.
        visible = viewer.seen()
        runlog, checklog = self.runlog, self.checklog
        if word == "stats":
            all_time = await asyncio.to_thread(lambda: runlog.route_stats(visible=visible))
            week = await asyncio.to_thread(
                lambda: runlog.route_stats(
                    utcnow() - timedelta(days=7), visible=visible, percentiles=False
                )
            )
            verdicts = await asyncio.to_thread(lambda: runlog.verdict_counts(visible=visible))
            answer = blocks.stats_blocks(all_time, week, list(self.routes), verdicts)
            if checklog is not None:
                figures = await asyncio.to_thread(lambda: checklog.figures(visible=visible))
                answer += blocks.checks_stats_blocks(figures)
            return Answer("Route stats", answer)
        if word == "runs":
            recent = await asyncio.to_thread(lambda: runlog.recent(15, visible=visible))
            return Answer(
                "Recent runs", blocks.runs_blocks(recent, await permalinks(client, recent))
            )
        return Answer("Route health", await self.health())

    async def health(self) -> list[Block]:
        now = utcnow()
        spend = await asyncio.to_thread(
            self.health_log.probe_spend_counted, now - timedelta(days=7)
        )
        return blocks.health_blocks(await self.monitor.report(), spend, now)


async def permalinks(client: AsyncWebClient, runs: list[Run]) -> dict[int, str]:
    links: dict[int, str] = {}
    for run in runs:
        if run.slack_channel and run.slack_thread_ts and run.id is not None:
            try:
                response = await client.chat_getPermalink(
                    channel=run.slack_channel, message_ts=run.slack_thread_ts
                )
            except DELIVERY_ERRORS as exc:
                log.debug("no permalink for run %s: %s", run.id, type(exc).__name__)
                continue
            links[run.id] = str(response.get("permalink"))
    return links
