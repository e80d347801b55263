"""The edit modal's submission: the shared image (and mask) fetched, then edited in its thread."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.requests import CheckedRequest, RequestValidator, build_request
from bot.slack import blocks, messages
from bot.slack.access import Access
from bot.slack.files import fetch_slack_image
from bot.slack.generate import GenerateFlow, SlackAsk
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks
from routes.errors import InvalidRequest


def register(
    app: AsyncApp,
    *,
    validator: RequestValidator,
    access: Access,
    flow: GenerateFlow,
    poster: SlackPoster,
    tasks: BackgroundTasks,
    api_url: str,
) -> None:
    async def edit_submit(
        ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        metadata = json.loads(view.get("private_metadata") or "{}")
        values = view.get("state", {}).get("values", {})
        selected = values.get("route", {}).get("value", {}).get("selected_option") or {}
        route_id = str(selected.get("value") or "")
        instruction = str(values.get("instruction", {}).get("value", {}).get("value") or "")
        masks = values.get("mask", {}).get("value", {}).get("files") or []
        errors = _form_errors(validator.routes, route_id, instruction, masks)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        edit = Edit(view, metadata, route_id, instruction, [str(m.get("id")) for m in masks])
        editor = Editor(validator, access, flow, poster, client, api_url)
        tasks.spawn(editor.run(edit, context), name="edit")

    app.view(blocks.EDIT_MODAL)(edit_submit)


class Editor:
    """Fetches the shared image (and mask) with the bot token, then runs the edit."""

    def __init__(
        self,
        validator: RequestValidator,
        access: Access,
        flow: GenerateFlow,
        poster: SlackPoster,
        client: AsyncWebClient,
        api_url: str,
    ) -> None:
        self.validator = validator
        self.access = access
        self.flow = flow
        self.poster = poster
        self.client = client
        self.api_url = api_url

    async def run(self, edit: Edit, context: AsyncBoltContext) -> None:
        channel = str(edit.metadata.get("channel"))
        user = context.user_id
        try:
            checked = await self._checked(edit, channel)
        except InvalidRequest as exc:
            await self.poster.ephemeral(channel, user, str(exc))
            return
        except SlackApiError as exc:
            error = exc.response.get("error")
            await self.poster.ephemeral(
                channel, user, f"Slack would not give me that file ({error})."
            )
            return
        ask = SlackAsk(
            team=context.team_id,
            channel=channel,
            user=user,
            response_url=None,
            request_key=f"view:{edit.view.get('id')}:{edit.view.get('hash')}",
            thread_ts=edit.metadata.get("thread_ts"),
            headline=messages.headline(
                user, checked.route_ids, f"asked for an edit on `{edit.route_id}`"
            ),
        )
        await self.flow.start(ask, checked)

    async def _checked(self, edit: Edit, channel: str) -> CheckedRequest:
        token = str(self.client.token or "")
        image = await fetch_slack_image(self.client, edit.metadata["file"], self.api_url, token)
        mask = None
        if edit.masks:
            mask = await fetch_slack_image(self.client, edit.masks[0], self.api_url, token)
        request = dataclasses.replace(
            build_request({"prompt": edit.instruction}), input_images=(image,), mask=mask
        )
        checked = self.validator.check([edit.route_id], request)
        refusal = self.access.channel_refusal(checked.route_ids, channel)
        if refusal:
            raise InvalidRequest(refusal)
        return checked


@dataclasses.dataclass(frozen=True)
class Edit:
    """A submitted edit: the modal, its metadata (channel, thread, file) and the answers."""

    view: dict[str, Any]
    metadata: dict[str, Any]
    route_id: str
    instruction: str
    masks: list[str]


def _form_errors(
    routes: Mapping[str, Any], route_id: str, instruction: str, masks: list[Any]
) -> dict[str, str]:
    """Problems said in the form's words (no command syntax), by field."""
    errors: dict[str, str] = {}
    if route_id not in routes:
        errors["route"] = "That route is not configured any more: pick another."
    elif masks and not routes[route_id].capabilities().mask:
        maskable = [rid for rid, r in routes.items() if r.capabilities().mask]
        others = f" Routes that take one: {', '.join(maskable)}." if maskable else ""
        errors["mask"] = f"Route {route_id} does not take a mask.{others}"
    if not instruction.strip():
        errors["instruction"] = "Say what should change in the image."
    else:
        try:
            build_request({"prompt": instruction})
        except InvalidRequest as exc:
            errors["instruction"] = str(exc)
    return errors
