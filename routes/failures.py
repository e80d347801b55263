"""Provider failures onto the route error taxonomy, from the per-provider tables in
routes/data/errors.toml, and the one Retry-After parser every adapter uses.

Adapters turn what their SDK or HTTP client raised into a `ProviderFailure` (status, codes,
message, request id, wait) and call `route_error`; the decision of what the failure means lives
in data, where each row names its source and carries an example that is tested.
"""

from __future__ import annotations

import email.utils
import re
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from routes.errors import RouteError, error_types

# Tables consulted around the provider's own: [[common]] first, [[default]] last.
COMMON, DEFAULT = "common", "default"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class ProviderFailure:
    """A provider's error answer, normalised: what the tables match on and what the error keeps."""

    status: int | None = None
    codes: tuple[str, ...] = ()
    message: str = ""
    request_id: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class ErrorRule:
    """One row of a provider table: which failures it matches and what they mean."""

    error_class: str
    statuses: frozenset[int] = frozenset()
    ranges: frozenset[int] = frozenset()  # 4 for "4xx", 5 for "5xx"
    codes: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None
    retryable: bool | None = None
    hint: str | None = None
    source: str = ""
    example: ProviderFailure | None = field(default=None, compare=False)

    def matches(self, failure: ProviderFailure) -> bool:
        if self.statuses or self.ranges:
            status = failure.status
            if status is None or (status not in self.statuses and status // 100 not in self.ranges):
                return False
        if self.codes and not self.codes.intersection(failure.codes):
            return False
        return self.pattern is None or bool(self.pattern.search(failure.message))

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ErrorRule:
        known = {"status", "code", "message", "class", "retryable", "hint", "source", "example"}
        unknown = set(row) - known
        if unknown:
            raise ValueError(f"unknown key(s) in an error table row: {', '.join(sorted(unknown))}")
        name = str(row["class"])
        if name not in error_types():
            raise ValueError(f"unknown error class {name!r} in an error table row")
        statuses: set[int] = set()
        ranges: set[int] = set()
        for status in row.get("status", []):
            if isinstance(status, int):
                statuses.add(status)
            elif isinstance(status, str) and re.fullmatch(r"[1-5]xx", status):
                ranges.add(int(status[0]))
            else:
                raise ValueError(f"status {status!r}: use a number or '4xx' / '5xx'")
        message = row.get("message")
        example = row.get("example")
        return cls(
            error_class=name,
            statuses=frozenset(statuses),
            ranges=frozenset(ranges),
            codes=frozenset(_strings(row.get("code", []))),
            pattern=re.compile(message, re.IGNORECASE) if message else None,
            retryable=row.get("retryable"),
            hint=row.get("hint"),
            source=str(row.get("source", "")),
            example=_failure(example) if isinstance(example, Mapping) else None,
        )


def _strings(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _failure(example: Mapping[str, Any]) -> ProviderFailure:
    return ProviderFailure(
        status=example.get("status"),
        codes=tuple(_strings(example.get("code", []))),
        message=str(example.get("message", "")),
    )


@cache
def error_tables() -> dict[str, tuple[ErrorRule, ...]]:
    """Every table of routes/data/errors.toml by name (common, default and one per provider)."""
    text = resources.files("routes").joinpath("data/errors.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    return {
        name: tuple(ErrorRule.from_row(row) for row in rows)
        for name, rows in raw.items()
        if isinstance(rows, list)
    }


def rule_for(table: str, failure: ProviderFailure) -> ErrorRule:
    """The first matching row of [[common]], the provider's table, then [[default]]."""
    tables = error_tables()
    if table not in tables:
        raise KeyError(f"no error table named {table!r} in routes/data/errors.toml")
    for name in (COMMON, table, DEFAULT):
        for rule in tables.get(name, ()):
            if rule.matches(failure):
                return rule
    raise LookupError("the [[default]] error table must end with a row that matches everything")


def route_error(table: str, failure: ProviderFailure, *, message: str | None = None) -> RouteError:
    """The route error for a provider failure, per the provider's table.

    `message` replaces the provider's own text in what the user reads (an adapter may add who
    said it); matching always uses the provider's text."""
    rule = rule_for(table, failure)
    cls = error_types()[rule.error_class]
    text = clean_message(message if message is not None else failure.message)
    return cls(
        text or (f"HTTP {failure.status}" if failure.status else "no detail"),
        request_id=failure.request_id,
        status_code=failure.status,
        hint=rule.hint,
        retry_after=failure.retry_after,
        retryable=rule.retryable,
    )


_TAGS = re.compile(r"<[^>]+>")


def clean_message(raw: Any) -> str:
    """A provider's message as one short line: an HTML error page or a huge body becomes
    something a Slack user can read."""
    text = _TAGS.sub(" ", str(raw)) if raw else ""
    text = " ".join(text.split())
    if len(text) > _MESSAGE_LIMIT:
        text = text[: _MESSAGE_LIMIT - 1].rstrip() + "…"
    return text


# -- organization verification (read by bot/ too) -----------------------------------------------


def _org_rule() -> ErrorRule:
    for rule in error_tables().get(COMMON, ()):
        if rule.pattern is not None and "verif" in rule.pattern.pattern:
            return rule
    raise LookupError("routes/data/errors.toml has no organization-verification row")


def looks_like_org_verification(text: str) -> bool:
    """True when a provider message is about OpenAI organization verification."""
    pattern = _org_rule().pattern
    return bool(pattern and pattern.search(text))


def org_verification_hint() -> str:
    """What to tell a user whose route needs organization verification."""
    return _org_rule().hint or ""


# -- Retry-After ----------------------------------------------------------------------------------


def retry_after(
    headers: Mapping[str, str] | None,
    details: Iterable[Mapping[str, Any]] = (),
    *,
    now: float | None = None,
) -> float | None:
    """Seconds the provider asked us to wait, or None when it did not say.

    Read in this order: `retry-after-ms` (OpenAI), `retry-after` as seconds or as an HTTP date
    (RFC 9110), then Google's google.rpc.RetryInfo `retryDelay` ("1.5s") among the error
    details. A date in the past or a negative number means "now" (0)."""
    if headers is not None:
        value = headers.get("retry-after-ms")
        if value is not None:
            try:
                return max(float(value) / 1000, 0.0)
            except ValueError:
                pass
        value = headers.get("retry-after")
        if value is not None:
            seconds = _seconds_or_date(value, time.time() if now is None else now)
            if seconds is not None:
                return seconds
    for item in details:
        if item.get("@type") == _RETRY_INFO:
            match = _DURATION.match(str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _seconds_or_date(value: str, now: float) -> float | None:
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    return max(when.timestamp() - now, 0.0)
