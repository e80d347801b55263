"""Fixtures shared by every test folder: PostgreSQL and SQLite databases, a local S3 (moto),
the one settings factory and a runtime opener.

PostgreSQL comes from IMAGEROUTE_TEST_POSTGRES_URL (what .ci/run exports) or, when PostgreSQL
binaries are installed, from a throwaway cluster started here on a free loopback port. Without
either the PostgreSQL tests are skipped locally, and fail under CI=true so CI cannot pass them
silently. Each test gets its own fresh database and every server binds its own loopback port, so
pytest-xdist workers share nothing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.wiring.runtime import Runtime
from bot.wiring.settings import Settings

PG_ENV = "IMAGEROUTE_TEST_POSTGRES_URL"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresCluster:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl in a temp dir) on a free loopback port;
    as root its commands run as the postgres user (initdb refuses root). Tests that need the
    database to go away and come back stop and start it."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.as_user: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.data = Path(tempfile.mkdtemp(prefix="imageroute-pg-"))
        if self.as_user:
            shutil.chown(self.data, user="postgres")
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _pg(self, tool: str, *args: str, check: bool = True) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin_dir / tool), *args], check=check, capture_output=True
        )

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data} -c fsync=off"
        log = str(self.data / "server.log")
        self._pg("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data, ignore_errors=True)


def pg_bin() -> Path | None:
    """Where PostgreSQL's server binaries are, or None."""
    return _pg_bin()


@contextlib.contextmanager
def _throwaway_cluster(bin_dir: Path) -> Iterator[str]:
    cluster = PostgresCluster(bin_dir)
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A URL to a PostgreSQL server where tests may create databases."""
    url = os.environ.get(PG_ENV)
    if url:
        yield url
        return
    bin_dir = _pg_bin()
    if bin_dir is None:
        reason = f"PostgreSQL not available: set {PG_ENV} or install PostgreSQL (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with _throwaway_cluster(bin_dir) as started:
        yield started


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(postgres_admin_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/imageroute.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server on loopback; AWS_ENDPOINT_URL and fake credentials point boto3 at it."""
    from moto.server import ThreadedMotoServer

    # Port 0: the OS picks a free port at bind time, so parallel workers never collide.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    try:
        yield endpoint
    finally:
        server.stop()


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """The one way tests build Settings: `make_settings(config_toml, **overrides)`.

    The routes file (when given) is written to the test's folder, the database is a SQLite file
    and the asset store and the spool folders there too (a spool shared between tests would let
    one test's reconcile store another's entry); `.env` files are never read."""

    def make(config: str | None = None, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path}/imageroute.db",
            "asset_store": f"file://{tmp_path}/assets",
            "imageroute_spool": tmp_path / "spool",
        }
        if config is not None:
            path = tmp_path / "imageroute.toml"
            path.write_text(config, encoding="utf-8")
            values["imageroute_config"] = path
        values.update({k: v for k, v in overrides.items() if v is not None})
        return Settings(_env_file=None, **values)

    return make


RuntimeOpener = Callable[..., Runtime]


@pytest.fixture
async def open_runtime(make_settings: SettingsFactory) -> AsyncIterator[RuntimeOpener]:
    """`open_runtime(config_toml, role=..., **settings)`: a Runtime closed after the test."""
    opened: list[Runtime] = []

    def make(config: str | None = None, role: str = "cli", **overrides: Any) -> Runtime:
        runtime = Runtime.open(make_settings(config, **overrides), role=role)
        opened.append(runtime)
        return runtime

    yield make
    for runtime in opened:
        await runtime.aclose()
