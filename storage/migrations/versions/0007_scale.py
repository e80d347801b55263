"""scale: composite indexes for every windowed read, and route_days kept by triggers

Every time-windowed query names its key and then the time (status, route, user, channel,
billing owner; health checks by time), so its cost follows the window, not the history; the
single-column indexes those composites start with are dropped. Verdicts carry their run's route,
so counting them per route reads the verdicts alone. `route_days` holds finished runs per route and
UTC day, filled from the existing log here and kept current by triggers on `runs` in the same
transaction as each write, on SQLite and PostgreSQL alike.

Revision ID: 0007_scale
Revises: 0006_reliability
Create Date: 2026-11-25 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_scale"
down_revision = "0006_reliability"
branch_labels = None
depends_on = None

_RUN_INDEXES = {
    "ix_runs_status_time": ("status", "created_at"),
    # With what is read of a route's latest runs (percentiles, median cost, checks' family),
    # so those reads never touch the table rows.
    "ix_runs_route_time": (
        "route_id",
        "created_at",
        "status",
        "latency_s",
        "cost_usd",
        "bench_family",
    ),
    "ix_runs_user_time": ("slack_user", "created_at"),
    "ix_runs_channel_time": ("slack_channel", "created_at"),
    "ix_runs_owner_time": ("billing_owner", "created_at"),
}
# Single-column indexes that the composites above (or ix_health_checks_route_time) begin with.
_REPLACED = {
    "runs": {
        "ix_runs_status": "status",
        "ix_runs_route_id": "route_id",
        "ix_runs_slack_user": "slack_user",
        "ix_runs_slack_channel": "slack_channel",
    },
    "health_checks": {"ix_health_checks_route_id": "route_id"},
}
_WATCHED = "status, route_id, created_at, cost_usd, images, task_id"

# One run's share of its route's day, written once per dialect below ({r} is NEW or OLD). The
# SQL is built from these constants only: nothing here comes from outside.
_SPEND = "(CASE WHEN {r}.status = 'succeeded' THEN coalesce({r}.cost_usd, 0.0) ELSE 0.0 END)"
_SHARE = {
    "sqlite": {
        "day": "date({r}.created_at)",
        "succeeded": "({r}.status = 'succeeded')",
        "failed": "({r}.status = 'failed')",
        "spend": _SPEND,
        "unpriced": "({r}.cost_usd IS NULL AND ({r}.images > 0 OR {r}.task_id IS NOT NULL))",
    },
    "postgresql": {
        "day": "(({r}.created_at AT TIME ZONE 'UTC')::date)",
        "succeeded": "({r}.status = 'succeeded')::int",
        "failed": "({r}.status = 'failed')::int",
        "spend": _SPEND,
        "unpriced": "({r}.cost_usd IS NULL AND ({r}.images > 0 OR {r}.task_id IS NOT NULL))::int",
    },
}  # fmt: skip


def _share(dialect: str, row: str) -> dict[str, str]:
    return {k: v.format(r=row) for k, v in _SHARE[dialect].items()}


def _add(dialect: str) -> str:
    """Add NEW's share (an upsert: the first finished run of a route's day creates the row)."""
    s = _share(dialect, "NEW")
    return f"""
        INSERT INTO route_days (route_id, day, runs, succeeded, failed, spend_usd, unpriced_runs)
        SELECT NEW.route_id, {s["day"]}, 1, {s["succeeded"]}, {s["failed"]}, {s["spend"]},
               {s["unpriced"]}
        WHERE NEW.status IN ('succeeded', 'failed')
        ON CONFLICT (route_id, day) DO UPDATE SET
            runs = route_days.runs + excluded.runs,
            succeeded = route_days.succeeded + excluded.succeeded,
            failed = route_days.failed + excluded.failed,
            spend_usd = route_days.spend_usd + excluded.spend_usd,
            unpriced_runs = route_days.unpriced_runs + excluded.unpriced_runs;"""


def _subtract(dialect: str) -> str:
    """Take OLD's share back out (its row exists: it was added when OLD was written)."""
    s = _share(dialect, "OLD")
    return f"""
        UPDATE route_days SET
            runs = runs - 1,
            succeeded = succeeded - {s["succeeded"]},
            failed = failed - {s["failed"]},
            spend_usd = spend_usd - {s["spend"]},
            unpriced_runs = unpriced_runs - {s["unpriced"]}
        WHERE OLD.status IN ('succeeded', 'failed')
          AND route_id = OLD.route_id AND day = {s["day"]};"""  # noqa: S608


def _backfill(dialect: str) -> str:
    s = {k: v.replace("NEW.", "") for k, v in _share(dialect, "NEW").items()}
    return f"""
        INSERT INTO route_days (route_id, day, runs, succeeded, failed, spend_usd, unpriced_runs)
        SELECT route_id, {s["day"]}, count(*), sum({s["succeeded"]}), sum({s["failed"]}),
               sum({s["spend"]}), sum({s["unpriced"]})
        FROM runs WHERE status IN ('succeeded', 'failed')
        GROUP BY route_id, {s["day"]}"""  # noqa: S608


def _create_triggers(dialect: str) -> None:
    if dialect == "sqlite":
        op.execute(
            f"CREATE TRIGGER runs_route_days_insert AFTER INSERT ON runs BEGIN {_add('sqlite')} END"
        )
        op.execute(
            f"CREATE TRIGGER runs_route_days_update AFTER UPDATE OF {_WATCHED} ON runs "
            f"BEGIN {_subtract('sqlite')} {_add('sqlite')} END"
        )
        op.execute(
            "CREATE TRIGGER runs_route_days_delete AFTER DELETE ON runs "
            f"BEGIN {_subtract('sqlite')} END"
        )
        return
    op.execute(
        f"""
        CREATE FUNCTION route_days_track() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN {_subtract("postgresql")}
            END IF;
            IF TG_OP <> 'DELETE' THEN {_add("postgresql")}
            END IF;
            RETURN NULL;
        END $$"""
    )
    op.execute(
        f"CREATE TRIGGER runs_route_days AFTER INSERT OR DELETE OR UPDATE OF {_WATCHED} "
        "ON runs FOR EACH ROW EXECUTE FUNCTION route_days_track()"
    )  # fmt: skip


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, indexes in _REPLACED.items():
        for name in indexes:
            op.drop_index(name, table_name=table)
    for name, columns in _RUN_INDEXES.items():
        op.create_index(name, "runs", list(columns))
    op.create_index("ix_health_checks_time", "health_checks", ["checked_at"])
    op.create_table(
        "route_days",
        sa.Column("route_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("spend_usd", sa.Float(), nullable=False),
        sa.Column("unpriced_runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("route_id", "day"),
    )
    with op.batch_alter_table("verdicts") as batch_op:
        batch_op.add_column(sa.Column("route_id", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE verdicts SET route_id = "
        "(SELECT runs.route_id FROM runs WHERE runs.id = verdicts.run_id)"
    )
    op.create_index("ix_verdicts_route_id", "verdicts", ["route_id"])
    # Triggers before the backfill: on PostgreSQL creating one locks out writers to `runs`
    # until this migration commits, so no run is counted twice or missed.
    _create_triggers(dialect)
    op.execute(_backfill(dialect))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS runs_route_days_{name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS runs_route_days ON runs")
        op.execute("DROP FUNCTION IF EXISTS route_days_track()")
    op.drop_table("route_days")
    op.drop_index("ix_verdicts_route_id", table_name="verdicts")
    with op.batch_alter_table("verdicts") as batch_op:
        batch_op.drop_column("route_id")
    op.drop_index("ix_health_checks_time", table_name="health_checks")
    for name in _RUN_INDEXES:
        op.drop_index(name, table_name="runs")
    for table, indexes in _REPLACED.items():
        for name, column in indexes.items():
            op.create_index(name, table, [column])
