"""Verdict buttons: does this output survive the next real step? One verdict per person.

The result message is rewritten with the counts under its actions: the same images (read back
from the message), the same lines (the acceptance checks from the check log), one more line with
the verdicts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.checks import CheckReport
from bot.core.visibility import may_act_on
from bot.slack import blocks, messages
from bot.slack.blocks import ShownImage
from bot.slack.listeners.actions.run_buttons import NOT_HERE
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks
from storage.checks import CheckLog
from storage.runlog import RunLog


def register(
    app: AsyncApp,
    *,
    runlog: RunLog,
    route_ids: Sequence[str],
    poster: SlackPoster,
    tasks: BackgroundTasks,
    checklog: CheckLog | None = None,
) -> None:
    async def verdict(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        tasks.spawn(record(body, action, context), name="verdict")

    async def record(
        body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        user = str(context.user_id or "unknown")
        channel = context.channel_id
        message = body.get("message") or {}
        value = str(action.get("value") or "")
        run = await asyncio.to_thread(runlog.get, int(value)) if value.isdigit() else None
        if run is None or run.id is None:
            await poster.ephemeral(
                channel, user, "That run is no longer in the log.", thread_ts=message.get("ts")
            )
            return
        if not may_act_on(run, channel, message.get("thread_ts")):
            await poster.ephemeral(channel, user, NOT_HERE, thread_ts=message.get("ts"))
            return
        survives = action.get("action_id") == "verdict_pass"
        await asyncio.to_thread(runlog.set_verdict, run.id, survives, user)
        verdicts = await asyncio.to_thread(runlog.verdicts, run.id)
        line = messages.verdict_line(run.id, verdicts) or ""
        shown = _shown_images(message.get("blocks") or [])
        if channel and message.get("ts") and (shown or not run.images):
            # The checks line stays: a verdict must not hide what the checks found.
            checks = await asyncio.to_thread(checklog.for_run, run.id) if checklog else ()
            answer = blocks.result_blocks(
                run,
                shown,
                route_ids,
                note=blocks.result_note(message.get("blocks") or []),
                verdict=line,
                checks=CheckReport(checks),
            )
            await poster.update(channel, str(message["ts"]), messages.result_text(run), answer)
        else:
            # The images cannot be read back from this message: leave it as it is.
            await poster.ephemeral(channel, user, line, thread_ts=message.get("thread_ts"))

    for action_id in ("verdict_pass", "verdict_fail"):
        app.action(action_id)(verdict)


def _shown_images(message_blocks: list[dict[str, Any]]) -> list[ShownImage]:
    """The images a result message shows, read back from its blocks."""
    return [
        ShownImage(str(b["slack_file"]["id"]), str(b.get("alt_text") or ""))
        for b in message_blocks
        if b.get("type") == "image" and (b.get("slack_file") or {}).get("id")
    ]
