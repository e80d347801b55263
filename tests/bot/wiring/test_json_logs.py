"""LOG_FORMAT=json: one JSON object per line with the request it belongs to, secrets masked in
the message, its arguments, its fields and its traceback; text stays the default."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.core import correlation
from bot.core.redaction import RedactingFilter, Redactor
from bot.wiring.logs import JsonLines, formatter, slack_kind
from bot.wiring.settings import Settings

ROUTE_KEY = "sk-route-key-0123456789abcdef"
SIGNING = "signing-secret-4242-abcdef"


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines through the redacting filter, as `setup_logging` wires it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLines())
    handler.addFilter(RedactingFilter(Redactor([ROUTE_KEY, SIGNING])))
    logger = logging.getLogger("imageroute.test.json")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, out
    logger.removeHandler(handler)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_route_key_never_reaches_a_json_line(json_log) -> None:
    logger, out = json_log
    logger.warning("provider said: invalid key %s", ROUTE_KEY)
    logger.info("calling", extra={"route": "openai", "headers": {"Authorization": ROUTE_KEY}})
    logger.info("signing with %r", {"secret": SIGNING})
    try:
        raise RuntimeError(f"401 for key {ROUTE_KEY}")
    except RuntimeError:
        logger.exception("run failed", extra={"detail": f"key={ROUTE_KEY}"})
    text = out.getvalue()
    assert ROUTE_KEY not in text and SIGNING not in text
    first, second, third, fourth = lines(out)
    assert first["message"] == "provider said: invalid key [redacted]"
    assert second["headers"] == {"Authorization": "[redacted]"} and second["route"] == "openai"
    assert "[redacted]" in str(third["message"])
    assert fourth["level"] == "ERROR" and "RuntimeError: 401 for key [redacted]" in str(
        fourth["exception"]
    )
    assert "[redacted]" in str(fourth["detail"])


def test_a_line_carries_the_request_it_belongs_to(json_log) -> None:
    logger, out = json_log
    with correlation.bound(request_id="req-abc", slack_team="T0TEAM", slack_channel="C0CHAN"):
        logger.info(
            "run 7 on demo succeeded in 0.2 s",
            extra={"run_id": 7, "route": "demo", "duration_s": 0.2, "error_class": None},
        )
    logger.info("after the request")
    during, after = lines(out)
    assert during["request_id"] == "req-abc"
    assert during["slack_team"] == "T0TEAM" and during["slack_channel"] == "C0CHAN"
    assert during["run_id"] == 7 and during["route"] == "demo" and during["duration_s"] == 0.2
    assert "error_class" not in during  # None fields are left out
    assert during["logger"] == "imageroute.test.json" and during["level"] == "INFO"
    assert str(during["time"]).endswith("+00:00")
    assert "request_id" not in after  # the binding ended with the request


def test_one_event_per_line_even_with_newlines(json_log) -> None:
    logger, out = json_log
    logger.info("line one\nline two")
    assert len(out.getvalue().splitlines()) == 1
    assert lines(out)[0]["message"] == "line one\nline two"


def test_text_is_the_default_and_json_is_chosen_by_name() -> None:
    assert not isinstance(formatter(None), JsonLines)
    assert not isinstance(formatter("text"), JsonLines)
    assert isinstance(formatter("JSON"), JsonLines)
    assert Settings(_env_file=None).log_format == "text"
    assert Settings(_env_file=None, log_format="Json").log_format == "json"
    with pytest.raises(ValueError, match="must be text or json"):
        Settings(_env_file=None, log_format="xml")


def test_slack_request_kinds() -> None:
    assert slack_kind({"command": "/imagegen"}) == "command"
    assert slack_kind({"type": "block_actions"}) == "block_actions"
    assert slack_kind({"type": "event_callback"}) == "event_callback"
    assert slack_kind({"type": "something_new"}) == "other"
