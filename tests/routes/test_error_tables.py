"""The provider error tables (routes/data/errors.toml) and the Retry-After parser, tested as
data: every row's own example lands on that row, the failures the product must tell apart land
where they belong, and every adapter's table exists."""

from __future__ import annotations

import email.utils
from typing import ClassVar

import pytest

from routes.errors import ERROR_CLASSES, RouteError, error_types
from routes.failures import (
    ErrorRule,
    ProviderFailure,
    error_tables,
    looks_like_org_verification,
    org_verification_hint,
    retry_after,
    route_error,
    rule_for,
)

ADAPTER_TABLES = ("openai", "google", "bedrock", "bfl", "default")
ROWS = [
    (name, index, rule)
    for name, rules in error_tables().items()
    for index, rule in enumerate(rules)
]


@pytest.mark.parametrize(("table", "index", "rule"), ROWS, ids=lambda v: str(v)[:40])
def test_every_row_classifies_its_own_example(table: str, index: int, rule: ErrorRule) -> None:
    assert rule.example is not None, f"[[{table}]] row {index} has no example"
    assert rule.source, f"[[{table}]] row {index} names no source"
    lookup = "default" if table in ("common", "default") else table
    assert rule_for(lookup, rule.example) is rule, (
        f"[[{table}]] row {index}: its example is taken by an earlier row"
    )


def test_every_class_in_the_tables_is_in_the_taxonomy() -> None:
    used = {rule.error_class for _, _, rule in ROWS}
    assert used <= set(ERROR_CLASSES)
    assert set(ADAPTER_TABLES) <= set(error_tables())


@pytest.mark.parametrize(
    ("table", "failure", "error_class", "retryable"),
    [
        (
            "openai",
            ProviderFailure(429, ("insufficient_quota",), "You exceeded your current quota"),
            "quota",
            False,
        ),
        (
            "openai",
            ProviderFailure(429, ("rate_limit_exceeded",), "Rate limit reached"),
            "rate_limit",
            True,
        ),
        (
            "openai",
            ProviderFailure(400, ("moderation_blocked",), "rejected by the safety system"),
            "moderation",
            False,
        ),
        (
            "openai",
            ProviderFailure(400, (), "Your organization must be verified to use gpt-image-2"),
            "auth",
            False,
        ),
        ("openai", ProviderFailure(403, (), "Organization verification required"), "auth", False),
        ("openai", ProviderFailure(400, ("invalid_value",), "Invalid size"), "bad_request", False),
        ("openai", ProviderFailure(503, (), "overloaded"), "provider_down", True),
        ("openai", ProviderFailure(409, (), "conflict"), "provider_down", True),
        (
            "google",
            ProviderFailure(429, ("RESOURCE_EXHAUSTED",), "Quota exceeded, limit: 0"),
            "quota",
            False,
        ),
        (
            "google",
            ProviderFailure(429, ("RESOURCE_EXHAUSTED",), "Resource exhausted"),
            "rate_limit",
            True,
        ),
        (
            "google",
            ProviderFailure(400, ("INVALID_ARGUMENT", "API_KEY_INVALID"), "API key not valid"),
            "auth",
            False,
        ),
        (
            "google",
            ProviderFailure(504, ("DEADLINE_EXCEEDED",), "Deadline expired"),
            "provider_down",
            True,
        ),
        (
            "bedrock",
            ProviderFailure(400, ("ServiceQuotaExceededException",), "exceeds the service quota"),
            "quota",
            False,
        ),
        (
            "bedrock",
            ProviderFailure(429, ("ThrottlingException",), "Too many requests"),
            "rate_limit",
            True,
        ),
        (
            "bedrock",
            ProviderFailure(429, ("ModelNotReadyException",), "not ready"),
            "provider_down",
            True,
        ),
        (
            "bedrock",
            ProviderFailure(400, ("ValidationException",), "blocked by our content filters"),
            "moderation",
            False,
        ),
        ("bfl", ProviderFailure(402, (), "Insufficient credits"), "quota", False),
        ("bfl", ProviderFailure(422, (), "width: must be a multiple of 16"), "bad_request", False),
        ("default", ProviderFailure(500, (), "Internal Server Error"), "provider_down", True),
        ("default", ProviderFailure(504, (), "Gateway Timeout"), "timeout", True),
        ("default", ProviderFailure(404, (), "Not Found"), "bad_request", False),
    ],
)
def test_failures_land_in_their_class(
    table: str, failure: ProviderFailure, error_class: str, retryable: bool
) -> None:
    error = route_error(table, failure)
    assert error.error_class == error_class
    assert error.retryable is retryable
    assert error.status_code == failure.status


def test_errors_keep_the_request_id_the_wait_and_the_hint() -> None:
    failure = ProviderFailure(403, (), "Your organization must be verified", "req_9", 2.0)
    error = route_error("openai", failure)
    assert error.request_id == "req_9" and error.retry_after == 2.0
    assert error.hint == org_verification_hint()
    assert "account-readiness step" in error.sentence() and "req_9" in error.sentence()
    # An empty message still says something.
    assert route_error("default", ProviderFailure(502)).message == "HTTP 502"


def test_org_verification_detection_is_the_tables() -> None:
    assert looks_like_org_verification("Your organization must be verified to use the model")
    assert looks_like_org_verification("Organization verification is pending")
    assert not looks_like_org_verification("Please verify your email address")
    assert "organization" in org_verification_hint()


def test_a_new_error_class_is_usable_from_a_row_at_once() -> None:
    """The table format stays open: a class added to the taxonomy works in a row."""

    class ModelRetiredError(RouteError):
        error_class: ClassVar[str] = "model_retired_test"

    assert error_types()["model_retired_test"] is ModelRetiredError
    rule = ErrorRule.from_row(
        {
            "status": [404],
            "message": "end of its life",
            "class": "model_retired_test",
            "source": "t",
        }
    )
    assert rule.matches(
        ProviderFailure(404, (), "This model version has reached the end of its life.")
    )
    with pytest.raises(ValueError, match="unknown error class"):
        ErrorRule.from_row({"class": "no_such_class"})
    with pytest.raises(ValueError, match="unknown key"):
        ErrorRule.from_row({"class": "auth", "statu": [401]})


# -- Retry-After ---------------------------------------------------------------------------------

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "details", "expected"),
    [
        ({"retry-after": "3"}, [], 3.0),
        ({"retry-after": "1.5"}, [], 1.5),
        ({"retry-after": "-4"}, [], 0.0),
        ({"retry-after-ms": "250", "retry-after": "9"}, [], 0.25),
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, [], 30.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, [], 0.0),
        ({"retry-after": "soon"}, [], None),
        ({}, [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}], 1.5),
        (
            {"retry-after": "2"},
            [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "9s"}],
            2.0,
        ),
        ({}, [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "X"}], None),
        (None, [], None),
    ],
)
def test_retry_after(
    headers: dict[str, str] | None, details: list[dict[str, str]], expected: float | None
) -> None:
    value = retry_after(headers, details, now=NOW)
    if expected is None:
        assert value is None
    else:
        assert value == pytest.approx(expected, abs=1.0)
