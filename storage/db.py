"""Engine set-up for SQLite and PostgreSQL, and Alembic migrations applied from code."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from alembic.config import Config


class DatabaseError(Exception):
    """The database cannot be opened or migrated; the message says which and why."""


class DatabaseUnavailable(DatabaseError):
    """The database did not answer while serving a request (an outage, a restart)."""


Scrub = Callable[[str], str]


def make_engine(url: str, *, scrub: Scrub | None = None) -> Engine:
    """An engine for DATABASE_URL. SQLite gets WAL, foreign keys and a busy timeout so the
    bot's worker threads can write concurrently; its folder is created if missing. With
    `scrub`, every text parameter of every statement passes through it first (see
    scrub_parameters)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError("DATABASE_URL is not a valid SQLAlchemy URL") from None
    engine = _engine(parsed)
    if scrub is not None:
        scrub_parameters(engine, scrub)
    return engine


def scrub_parameters(engine: Engine, scrub: Scrub) -> None:
    """Pass every text parameter of every statement through `scrub` before the driver sees it.

    The one place where everything stored (run errors, attempts, health checks, incidents,
    prompts, JSON columns serialised to text) meets the redactor, whichever table or code path
    writes it: a secret a provider echoes cannot reach a table even if a caller forgot to
    redact it first. Lookups pass through it too, so stored and looked-up values agree."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return scrub(value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(clean(v) for v in value)
        return value

    @sa.event.listens_for(engine, "before_cursor_execute", retval=True)
    def _scrub(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> tuple[str, Any]:
        return statement, clean(parameters)


def _engine(parsed: sa.URL) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)
    raise DatabaseError(
        f"DATABASE_URL uses {parsed.get_backend_name()!r}: use sqlite:///... or "
        "postgresql+psycopg://..."
    )


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    location = resources.files("storage").joinpath("migrations")
    cfg.set_main_option("script_location", str(location))
    return cfg


# An arbitrary, fixed 64-bit key: "imageroute migrate".
MIGRATION_LOCK_KEY = 0x696D_6167_6D69_6772


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply migrations up to `revision` (idempotent; safe to run at every start). A database
    already at the newest revision is recognised with one query, without loading Alembic or
    taking the lock (most starts are restarts: this keeps them fast).

    Several replicas starting together on PostgreSQL migrate one at a time: each takes a
    transaction-scoped advisory lock first, so the second finds the schema current and does
    nothing, instead of racing the first through CREATE TABLE. (SQLite serialises writers
    on its own.)"""
    if revision == "heads" and _at_heads(engine):
        return
    from alembic import command

    cfg = alembic_config()
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY}
                )
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    except sa.exc.OperationalError as exc:
        raise DatabaseError(f"cannot reach the database: {_short(exc)}") from None


# SQLite's statistics are gathered again once the big tables have grown (or shrunk) this much.
STATISTICS_DRIFT = 0.2
_ANALYZED_TABLES = ("runs", "health_checks", "run_assets")


def refresh_planner_statistics(engine: Engine) -> bool:
    """Keep SQLite's planner statistics current; True when they were gathered again.

    SQLite gathers none by itself: without them it may read a day's spend through the wrong
    index. A full ANALYZE reads every index (about 2 s at a million runs, holding the write
    lock), so it runs when there are no statistics yet or a big table's size has drifted by
    STATISTICS_DRIFT since; checking costs a count per table. (A sampled ANALYZE is cheaper but
    reads only the first entries of each index, which misjudges low-cardinality columns.)
    PostgreSQL's autovacuum keeps its own statistics: nothing to do there."""
    if engine.dialect.name != "sqlite":
        return False
    with engine.connect() as connection:
        if not _statistics_stale(connection):
            return False
        connection.exec_driver_sql("PRAGMA analysis_limit=0")
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    return True


def _statistics_stale(connection: sa.Connection) -> bool:
    has_stats = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).first()
    if not has_stats:
        return True
    recorded: dict[str, int] = {}
    for table, stat in connection.exec_driver_sql("SELECT tbl, stat FROM sqlite_stat1"):
        rows = int(str(stat).split(" ", 1)[0] or 0)
        recorded[table] = max(recorded.get(table, 0), rows)
    for table in _ANALYZED_TABLES:
        rows = int(connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())  # noqa: S608
        known = recorded.get(table)
        if known is None:
            if rows:
                return True
            continue
        if abs(rows - known) > STATISTICS_DRIFT * max(known, 1000):
            return True
    return False


_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(.+)$", re.M)


def script_heads() -> set[str]:
    """The newest revisions of the migration scripts, read from their files (the same
    `revision` / `down_revision` lines Alembic reads, without importing Alembic)."""
    revisions: set[str] = set()
    replaced: set[str] = set()
    versions = resources.files("storage").joinpath("migrations", "versions")
    for script in versions.iterdir():
        if not script.name.endswith(".py"):
            continue
        text = script.read_text(encoding="utf-8")
        found = _REVISION.search(text)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN_REVISION.search(text)
        if down is not None:
            replaced.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    return revisions - replaced


def _at_heads(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    except sa.exc.SQLAlchemyError:  # no alembic_version yet, or unreachable: migrate (or say why)
        return False
    return {row[0] for row in rows} == script_heads()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(sorted(heads)) if heads else None


def known_revisions() -> tuple[str, tuple[str, ...]]:
    """(the newest migration this version ships, every migration it knows)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    heads = script.get_heads()
    return ",".join(sorted(heads)), tuple(rev.revision for rev in script.walk_revisions())


def ping(engine: Engine) -> str:
    """'ok' or a short reason, for /healthz."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        return f"error: {_short(exc)}"
    return "ok"


def _short(exc: Exception) -> str:
    # The first line only: driver messages can include the full URL on later lines.
    text = str(getattr(exc, "orig", exc)).strip().splitlines()
    return text[0] if text else type(exc).__name__
