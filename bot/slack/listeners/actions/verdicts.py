"""Verdict buttons: does this output survive the next real step? One verdict per person."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack import blocks
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks
from storage.runlog import RunLog


def register(
    app: AsyncApp,
    *,
    runlog: RunLog,
    route_ids: Sequence[str],
    poster: SlackPoster,
    tasks: BackgroundTasks,
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
        value = str(action.get("value") or "")
        run = await asyncio.to_thread(runlog.get, int(value)) if value.isdigit() else None
        if run is None or run.id is None:
            await poster.ephemeral(channel, user, "That run is no longer in the log.")
            return
        survives = action.get("action_id") == "verdict_pass"
        await asyncio.to_thread(runlog.set_verdict, run.id, survives, user)
        verdicts = await asyncio.to_thread(runlog.verdicts, run.id)
        good = sum(1 for v in verdicts if v.survives)
        line = (
            f"Verdicts on run #{run.id}: {good} survives the next step, "
            f"{len(verdicts) - good} does not (latest: <@{user}>)."
        )
        message_ts = (body.get("message") or {}).get("ts")
        if channel and message_ts:
            answer = [*blocks.result_actions(run, route_ids), blocks.section(line)]
            await poster.update(channel, str(message_ts), line, blocks=answer)

    for action_id in ("verdict_pass", "verdict_fail"):
        app.action(action_id)(verdict)
