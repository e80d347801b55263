"""Keeps secrets out of logs, Slack messages, exports, the database and error text.

One Redactor per process holds every configured secret (Slack tokens, route keys and secret
headers) and the shapes of credentials we may meet anyway. It is applied where provider text
enters (route errors and probe results, routes.executor), on every SQL parameter (storage.db),
on every Slack payload (bot.slack.poster) and on every log line (RedactingFilter).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

# Shapes of credentials we may meet even when they are not in our own config
# (a provider echoing a key, a token in a URL).
_PATTERNS = [
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{8,}"),
    re.compile(r"\bxapp-[A-Za-z0-9-]{8,}"),
    re.compile(r"\bsk-[A-Za-z0-9_*-]{12,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"),
    re.compile(r"(?i)(bearer|x-key:?|key=|api[_-]?key[=:]\s*)\s*[A-Za-z0-9._~+/-]{16,}=*"),
    re.compile(r"(?i)(://[^:/\s@]+:)[^@\s]+@"),  # passwords in URLs
]
MASK = "[redacted]"
# Attributes every LogRecord has (the message and its arguments are redacted on their own).
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
# Every pattern above needs one of these in the text: one search rules them all out for the
# ordinary text that makes up nearly everything redacted (exports call this per field).
_SUSPECT = re.compile(r"xox|xapp-|sk-|AKIA|AIza|://|(?i:bearer|key)")


class Redactor:
    """Replaces every known secret and credential-shaped string with a mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Short values would mask ordinary words; real secrets are long.
        new = {s for s in secrets if s and len(s) >= 6}
        self._secrets = sorted(set(self._secrets) | new, key=len, reverse=True)

    def __call__(self, text: str | None) -> str:
        if not text:
            return text or ""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        if _SUSPECT.search(text) is None:
            return text
        for pattern in _PATTERNS:
            text = pattern.sub(_keep_prefix, text)
        return text

    def deep(self, value: Any) -> Any:
        """Every string inside `value` (dicts, lists, tuples; keys too) redacted; other values
        as they are. For payloads whose text sits anywhere: Block Kit, views, SQL parameters."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self.deep(k): self.deep(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.deep(v) for v in value)
        return value


def _keep_prefix(match: re.Match[str]) -> str:
    if match.lastindex:
        return match.group(1) + MASK + ("@" if match.group(0).endswith("@") else "")
    return MASK


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message and any exception text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = self.redactor(message)
        record.args = None
        # Fields given with `extra=` are written out by the JSON log format: masked too.
        for key, value in list(record.__dict__.items()):
            if key not in _RECORD_ATTRIBUTES and isinstance(value, (str, dict, list, tuple)):
                setattr(record, key, self.redactor.deep(value))
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            record.exc_text = self.redactor("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        return True


def install(redactor: Redactor) -> None:
    """Attach the filter to every root handler, so library logs are covered too."""
    root = logging.getLogger()
    for handler in root.handlers:
        existing = [f for f in handler.filters if isinstance(f, RedactingFilter)]
        if existing:
            for f in existing:  # a later install knows more secrets (the routes' keys)
                f.redactor = redactor
        else:
            handler.addFilter(RedactingFilter(redactor))
