"""How log lines are written: readable text by default, JSON lines with LOG_FORMAT=json.

A JSON line is one event: time, level, logger, message, the request it belongs to (request id,
Slack team and channel, from bot.core.correlation) and the event's own fields (run id, route,
status, duration...). Every line has been through the redacting filter first (installed on the
same handlers by bot.core.redaction), so a secret in a message, an argument, a field or a
traceback is masked in both formats.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from bot.core import correlation

if TYPE_CHECKING:
    from slack_bolt.request.async_request import AsyncBoltRequest

    from bot.slack.middleware import Next

FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else on a record came from `extra=`.
RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)
# Payload types Slack sends (anything else is counted as "other", to keep label sets small).
SLACK_KINDS: Final = frozenset(
    {
        "command",
        "block_actions",
        "block_suggestion",
        "view_submission",
        "view_closed",
        "shortcut",
        "message_action",
        "event_callback",
        "url_verification",
    }
)


class JsonLines(logging.Formatter):
    """One JSON object per line; fields that are None are left out."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(correlation.current())
        for key, value in record.__dict__.items():
            if key not in RECORD_ATTRIBUTES and not key.startswith("_") and value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def formatter(log_format: str | None) -> logging.Formatter:
    if (log_format or "text").strip().lower() == "json":
        return JsonLines()
    return logging.Formatter(TEXT_FORMAT)


def use_format(log_format: str | None) -> None:
    """Write every root handler's lines in `log_format` (text or json; text when unset)."""
    chosen = formatter(log_format)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(chosen)


def slack_kind(body: dict[str, Any]) -> str:
    """What a Slack request is: command, block_actions, view_submission, event_callback..."""
    kind = "command" if "command" in body else str(body.get("type") or "other")
    return kind if kind in SLACK_KINDS else "other"


async def bind_slack_fields(req: AsyncBoltRequest, next: Next) -> Any:
    """Bolt middleware (through bot.slack.middleware.plain): the request's Slack team and
    channel (and an id in Socket Mode, where no HTTP layer gave one) go on every log line of
    the request and the runs it starts."""
    context = req.context
    correlation.bind(
        request_id=correlation.current().get("request_id") or correlation.new_request_id(),
        slack_team=context.team_id,
        slack_channel=context.channel_id,
        slack_kind=slack_kind(req.body),
    )
    return await next()
