"""Who may run what, where: a route's allowed channels and user groups, then the spend policy.

The channel is known from the request, so it is checked in memory before ack (commands answer
in the ack itself); user groups need the Web API and caps the database, so they are checked
right after ack, before the first provider call. Each entry point checks the channel once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from cachetools import TTLCache
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.spend import OverCap, Reservation, SpendPolicy
from bot.slack.poster import DELIVERY_ERRORS
from routes.base import Route
from routes.model import ImageRequest

log = logging.getLogger(__name__)

GROUP_CACHE_SECONDS = 300.0


class Refused(Exception):
    """The user may not run this here now; the message is the one sentence to show them."""


class Access:
    def __init__(
        self, routes: Mapping[str, Route], spend: SpendPolicy, client: AsyncWebClient | None
    ) -> None:
        self.routes = routes
        self.spend = spend
        self.client = client
        # Group membership changes rarely; one usergroups.users.list per group per 5 minutes.
        self._groups: TTLCache[str, frozenset[str]] = TTLCache(256, GROUP_CACHE_SECONDS)

    def channel_refusal(self, route_ids: Sequence[str], channel: str | None) -> str | None:
        """In memory, before ack: a route limited to some channels refuses the others."""
        for rid in route_ids:
            allowed = self.routes[rid].config.allowed_channels
            if allowed and channel not in allowed:
                where = ", ".join(f"<#{c}>" for c in allowed)
                return f"Route `{rid}` can only be used in {where} (its allowed_channels)."
        return None

    async def refusal(
        self, route_ids: Sequence[str], user: str | None, request: ImageRequest | None = None
    ) -> str | None:
        """After ack: user groups, then the daily spend caps; one sentence, or None. Only
        reads: `admit` is what lets calls spend."""
        return await self._group_refusal(route_ids, user) or await self.spend.refusal(
            route_ids, user, request
        )

    async def admit(
        self,
        route_ids: Sequence[str],
        user: str | None,
        request: ImageRequest | None = None,
        *,
        request_key: str | None = None,
    ) -> Reservation:
        """After ack, before any provider call: user groups, then the spend policy's admission,
        which holds the calls' expected cost until they are released. Raises Refused (the one
        sentence) or DuplicateRequest (this request was admitted before)."""
        refusal = await self._group_refusal(route_ids, user)
        if refusal is not None:
            raise Refused(refusal)
        try:
            return await self.spend.reserve(route_ids, user, request, request_key=request_key)
        except OverCap as exc:
            raise Refused(str(exc)) from None

    async def _group_refusal(self, route_ids: Sequence[str], user: str | None) -> str | None:
        for rid in route_ids:
            groups = self.routes[rid].config.allowed_usergroups
            if groups and not await self._in_groups(user, groups):
                names = ", ".join(f"<!subteam^{g}>" for g in groups)
                return f"Route `{rid}` is limited to members of {names} (its allowed_usergroups)."
        return None

    async def _in_groups(self, user: str | None, groups: Sequence[str]) -> bool:
        if not user or self.client is None:
            return False
        for group in groups:
            members = self._groups.get(group)
            if members is None:
                members = await self._members(group)
                self._groups[group] = members
            if user in members:
                return True
        return False

    async def _members(self, group: str) -> frozenset[str]:
        assert self.client is not None
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
        except DELIVERY_ERRORS as exc:
            # Unknown membership refuses (the safe side) until the cached answer expires.
            log.warning("cannot read user group %s: %s", group, type(exc).__name__)
            return frozenset()
        return frozenset(response.get("users") or [])
