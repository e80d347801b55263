"""Which request a log line belongs to: its id and Slack team/channel, carried along.

The HTTP layer binds a request id (the reverse proxy's X-Request-Id, or a fresh one) and the
Slack layer the team and channel; context variables carry them into every task the request
starts (a run started by a command logs the command's request id when it finishes). The log
formatter reads them; nothing else depends on them.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType

_NONE: Mapping[str, str] = MappingProxyType({})
_FIELDS: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "imageroute_request", default=_NONE
)


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


def current() -> Mapping[str, str]:
    """The fields bound in this context: request_id, slack_team, slack_channel (when known)."""
    return _FIELDS.get()


def bind(**fields: str | None) -> contextvars.Token[Mapping[str, str]]:
    """Add fields to this context (and the tasks it starts from now on); None values are
    skipped. Returns the token to `reset` with."""
    merged = {**_FIELDS.get(), **{k: v for k, v in fields.items() if v}}
    return _FIELDS.set(MappingProxyType(merged))


def reset(token: contextvars.Token[Mapping[str, str]]) -> None:
    _FIELDS.reset(token)


@contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        reset(token)
