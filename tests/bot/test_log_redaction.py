"""Route keys and Slack tokens never reach a log line, in any process role."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.runtime import Runtime
from bot.settings import Settings


def test_route_keys_are_redacted_from_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "r.toml").write_text(
        '[routes.o]\nkind = "openai"\napi_key = "sk-live-secret-0042"\nbase_url = "http://127.0.0.1:9/v1"\n'
    )
    runtime = Runtime.open(
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            slack_bot_token="xoxb-secret-token-77",
            imageroute_config=tmp_path / "r.toml",
            database_url=f"sqlite:///{tmp_path}/db.sqlite",
            asset_store=f"file://{tmp_path}/assets",
        )
    )
    try:
        with caplog.at_level(logging.INFO):
            logging.getLogger("openai").warning("request failed with key sk-live-secret-0042")
            try:
                raise RuntimeError("token xoxb-secret-token-77 rejected")
            except RuntimeError:
                logging.getLogger("bot").exception("boom")
        assert "sk-live-secret-0042" not in caplog.text
        assert "xoxb-secret-token-77" not in caplog.text
        assert "request failed with key" in caplog.text
    finally:
        import asyncio

        asyncio.run(runtime.aclose())
