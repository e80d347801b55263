"""`/imageroute`: advice from the route board, and help, routes, stats, runs, health, bench.

Answers are private (only the asker sees them) with a Share in channel button: a slash command
is invisible to the channel, so an answer posted there would seem to come from nowhere.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from advisor import advise
from bot.core.markup import escape
from bot.core.visibility import Viewer
from bot.slack import blocks
from bot.slack.answers import Answers
from bot.slack.bench_thread import BenchThread
from bot.slack.messages import SUBCOMMANDS
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks


def register(
    app: AsyncApp,
    *,
    answers: Answers,
    bench: BenchThread,
    poster: SlackPoster,
    tasks: BackgroundTasks,
) -> None:
    async def imageroute(
        ack: AsyncAck,
        command: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        text = " ".join(str(command.get("text") or "").split())
        word = text.lower()
        if word in ("", "help"):
            await ack(
                response_type="ephemeral", blocks=blocks.help_blocks(), text="imageroute help"
            )
            return
        if " " not in word and word not in SUBCOMMANDS and not advise(word).matched:
            # One word that is neither a subcommand nor a question: say so, then help.
            await ack(
                response_type="ephemeral",
                blocks=blocks.help_blocks(not_understood=text),
                text=f"I did not understand `{escape(text)}`.",
            )
            return
        await ack()
        tasks.spawn(reply(command, context, client, respond, text), name="imageroute")

    async def reply(
        command: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
        respond: AsyncRespond,
        text: str,
    ) -> None:
        if text.lower().split(" ", 1)[0] == "bench":
            await bench.start(command, context, text)  # posts its own parent and thread
            return
        # Runs and stats show what this person may see from here (bot.core.visibility).
        viewer = Viewer(user=context.user_id, channel=context.channel_id)
        answer = await answers.answer(text, client, viewer)
        if not await poster.answer(respond, answer.summary, blocks=answer.blocks):
            await poster.ephemeral(
                context.channel_id, context.user_id, answer.summary, blocks=answer.blocks
            )

    app.command("/imageroute")(imageroute)
