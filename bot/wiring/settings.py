"""Process settings from the environment (and `.env`), validated once at start-up."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core.admission import DEFAULT_MAX_FINISHING, DEFAULT_MAX_IN_FLIGHT

_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    imageroute_config: Path | None = None
    database_url: str = "sqlite:///./data/imageroute.db"
    asset_store: str = "file://./data/assets"
    alert_channel: str | None = Field(None)
    log_format: str = "text"
    prober_port: int = Field(3001, ge=0, le=65535)
    # Where results the asset store or the database could not take wait (on this machine).
    imageroute_spool: Path = Path("./data/spool")
    # How long a stopping process lets runs in flight finish before it interrupts them.
    imageroute_drain_seconds: float = Field(25.0, ge=0, le=3600)
    # How often a process says it is alive; four missed beats and its runs are taken over.
    imageroute_heartbeat_seconds: float = Field(5.0, gt=0, le=300)
    # Runs this process keeps in flight; Slack requests past it wait in a queue and say so.
    imageroute_max_in_flight: int = Field(DEFAULT_MAX_IN_FLIGHT, ge=1, le=10_000)
    # Of those, how many may read, store and post their answer at once.
    imageroute_max_finishing: int = Field(DEFAULT_MAX_FINISHING, ge=1, le=1_000)

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
            raise ValueError("must be sqlite:///path or postgresql+psycopg://user@host/db")
        return value

    @field_validator("asset_store")
    @classmethod
    def _asset_store(cls, value: str) -> str:
        if not re.match(r"^(file://.+|s3://[^/]+.*)$", value):
            raise ValueError("must be file:///path/to/dir or s3://bucket/prefix")
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        chosen = value.strip().lower() or "text"
        if chosen not in ("text", "json"):
            raise ValueError("must be text or json")
        return chosen

    @field_validator("alert_channel")
    @classmethod
    def _alert_channel(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not _CHANNEL.match(value):
            raise ValueError("must be a Slack channel id such as C0123456789")
        return value

    def secrets(self) -> list[str]:
        tokens = (self.slack_bot_token, self.slack_signing_secret, self.slack_app_token)
        return [t.get_secret_value() for t in tokens if t is not None and t.get_secret_value()]

    def require(self, *names: str, why: str) -> None:
        """Stop with one line when a setting needed for `why` is missing."""
        for name in names:
            if getattr(self, name) is None:
                raise SettingsError(f"{name.upper()} is required {why}")


def load_settings() -> Settings:
    """Settings from the environment; a bad value becomes one line naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "a setting"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"{name} {message}") from None
