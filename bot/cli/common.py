"""What every `imageroute` command shares: one-line errors, logging, settings, the runtime."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from bot.wiring.runtime import Runtime
    from bot.wiring.settings import Settings


def warn(line: str) -> None:
    """One warning line on stderr (a route on a deprecated model, say)."""
    typer.echo(f"imageroute: warning: {line}", err=True)


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"imageroute: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Known problems become one line on stderr, never a traceback."""
    from bot.wiring.settings import SettingsError
    from routes.config import ConfigError
    from routes.errors import InvalidRequest
    from storage.assets import AssetStoreError
    from storage.db import DatabaseError

    try:
        yield
    except (SettingsError, ConfigError, DatabaseError, AssetStoreError, InvalidRequest) as exc:
        fail(str(exc))


def setup_logging(verbose: bool = False, level: int = logging.WARNING) -> None:
    """Log to stderr, as text or JSON lines (LOG_FORMAT; a .env value applies once the
    settings are read), secrets masked."""
    from bot.core.redaction import Redactor, install
    from bot.wiring.logs import TEXT_FORMAT, use_format

    logging.basicConfig(
        level=logging.DEBUG if verbose else level, format=TEXT_FORMAT, stream=sys.stderr
    )
    use_format(os.environ.get("LOG_FORMAT"))
    logging.captureWarnings(True)  # library warnings as log lines too (one format on stderr)
    for noisy in (
        "httpx",
        "httpcore",
        "botocore",
        "urllib3",
        "slack_sdk",
        "alembic",
        "apscheduler",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install(Redactor())


def settings() -> Settings:
    from bot.wiring.logs import use_format
    from bot.wiring.settings import load_settings

    loaded = load_settings()
    use_format(loaded.log_format)
    return loaded


def redacted_settings() -> Settings:
    """Settings for a long-running role, with its Slack secrets redacted from every log line
    from here on (route secrets are added when the runtime opens)."""
    from bot.core.redaction import Redactor, install

    s = settings()
    install(Redactor(s.secrets()))
    return s


def open_runtime(role: str = "cli") -> Runtime:
    from bot.core.redaction import install
    from bot.wiring.runtime import Runtime

    runtime = Runtime.open(settings(), role=role, announce=warn)
    install(runtime.redactor)
    return runtime
