"""The compare modal's submission: one prompt on the advised (or chosen) routes, side by side.

The modal opens from the advice's compare button (routes and channel known), or from App Home
(routes and channel chosen in the form). Problems are answered inside the form, in its words.
"""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.core.requests import CheckedRequest, RequestValidator, build_request
from bot.slack import blocks, messages
from bot.slack.access import Access
from bot.slack.generate import GenerateFlow, SlackAsk
from bot.slack.tasks import BackgroundTasks
from routes.errors import InvalidRequest


class FormError(Exception):
    """A problem with one field of the form, said in the form's words."""

    def __init__(self, field: str, sentence: str) -> None:
        super().__init__(sentence)
        self.field = field
        self.sentence = sentence


def register(
    app: AsyncApp,
    *,
    validator: RequestValidator,
    access: Access,
    flow: GenerateFlow,
    tasks: BackgroundTasks,
) -> None:
    async def compare_submit(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        metadata = json.loads(view.get("private_metadata") or "{}")
        values = view.get("state", {}).get("values", {})
        try:
            checked, channel = _checked(validator, access, metadata, values)
        except FormError as exc:
            await ack(response_action="errors", errors={exc.field: exc.sentence})
            return
        await ack()
        response_urls = body.get("response_urls") or [{}]
        ask = SlackAsk(
            team=context.team_id,
            channel=channel,
            user=context.user_id,
            response_url=response_urls[0].get("response_url"),
            request_key=f"view:{view.get('id')}:{view.get('hash')}",
            headline=_headline(context.user_id, checked.route_ids, metadata.get("from")),
        )
        tasks.spawn(flow.start(ask, checked), name="compare")

    app.view(blocks.COMPARE_MODAL)(compare_submit)


def _checked(
    validator: RequestValidator,
    access: Access,
    metadata: dict[str, Any],
    values: dict[str, Any],
) -> tuple[CheckedRequest, str]:
    prompt = str(values.get("prompt", {}).get("value", {}).get("value") or "").strip()
    if "routes" in values:
        picked = values["routes"].get("value", {}).get("selected_options") or []
        route_ids = [str(o.get("value")) for o in picked]
        field = "routes"
    else:
        route_ids = list(metadata.get("routes", []))
        field = "prompt"
    route_ids = [r for r in route_ids if r in validator.routes]
    if not route_ids:
        raise FormError(
            field,
            "Pick at least one route."
            if field == "routes"
            else ("Those routes are not configured any more."),
        )
    if len(route_ids) > validator.max_routes:
        raise FormError(field, f"Pick at most {validator.max_routes} routes for one comparison.")
    if not prompt:
        raise FormError("prompt", "Describe the image you want.")
    channel = metadata.get("channel") or values.get("channel", {}).get("value", {}).get(
        "selected_conversation"
    )
    if not channel:
        raise FormError("channel", "Pick the channel to post the results in.")
    refusal = access.channel_refusal(route_ids, channel)
    if refusal:
        raise FormError("channel" if "channel" in values else "prompt", refusal)
    try:
        return validator.check(route_ids, build_request({"prompt": prompt})), str(channel)
    except InvalidRequest as exc:
        raise FormError("prompt", str(exc)) from None


def _headline(user: str | None, route_ids: tuple[str, ...], source: str | None) -> str:
    names = ", ".join(f"`{r}`" for r in route_ids)
    if source == "advice":
        return messages.headline(user, route_ids, f"compared {names} from route advice")
    if len(route_ids) == 1:
        return messages.headline(user, route_ids, f"tried {names} from App Home")
    return messages.headline(user, route_ids, f"compared {names} from App Home")
