"""Route keys and Slack tokens never reach a log line, in any process role."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import RuntimeOpener


def test_route_keys_are_redacted_from_logs(
    open_runtime: RuntimeOpener, caplog: pytest.LogCaptureFixture
) -> None:
    open_runtime(
        '[routes.o]\nkind = "openai"\napi_key = "sk-live-secret-0042"\n'
        'base_url = "http://127.0.0.1:9/v1"\n',
        slack_bot_token="xoxb-secret-token-77",
    )
    with caplog.at_level(logging.INFO):
        logging.getLogger("openai").warning("request failed with key sk-live-secret-0042")
        try:
            raise RuntimeError("token xoxb-secret-token-77 rejected")
        except RuntimeError:
            logging.getLogger("bot").exception("boom")
    assert "sk-live-secret-0042" not in caplog.text
    assert "xoxb-secret-token-77" not in caplog.text
    assert "request failed with key" in caplog.text
