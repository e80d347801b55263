"""`/imagegen`: checked and channel-checked before ack; the run happens in the background."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.core.markup import escape
from bot.core.requests import RequestValidator
from bot.slack.access import Access
from bot.slack.generate import GenerateFlow, SlackAsk
from bot.slack.messages import IMAGEGEN_USAGE
from bot.slack.tasks import BackgroundTasks
from routes.errors import InvalidRequest


def register(
    app: AsyncApp,
    *,
    validator: RequestValidator,
    access: Access,
    flow: GenerateFlow,
    tasks: BackgroundTasks,
) -> None:
    async def imagegen(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
        text = str(command.get("text") or "")
        if text.strip().lower() in ("", "help"):
            await ack(response_type="ephemeral", text=IMAGEGEN_USAGE)
            return
        try:
            checked = validator.parse(text)
        except InvalidRequest as exc:
            # The sentence may quote what was typed: shown literally, never as markup.
            await ack(response_type="ephemeral", text=escape(str(exc)))
            return
        refusal = access.channel_refusal(checked.route_ids, context.channel_id)
        if refusal:
            await ack(response_type="ephemeral", text=refusal)
            return
        await ack()
        trigger = command.get("trigger_id")
        ask = SlackAsk(
            team=context.team_id,
            channel=str(context.channel_id),
            user=context.user_id,
            response_url=context.response_url,
            # Slack may deliver one command twice; both carry the same trigger id.
            request_key=f"cmd:{trigger}" if trigger else None,
        )
        tasks.spawn(flow.start(ask, checked), name="imagegen")

    app.command("/imagegen")(imagegen)
