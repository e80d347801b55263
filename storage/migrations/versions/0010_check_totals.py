"""check_totals: acceptance checks counted per route, family and check, kept by triggers

Stats and the advisor show each route's check results over its whole history; counting them
from `run_checks` reads every check ever made (seconds at a million runs). `check_totals` holds
the counts and the score sum per route, family and check, filled from the existing checks here
and kept current by triggers on `run_checks` in the same transaction as each write, on SQLite
and PostgreSQL alike (one SQL text serves both).

A database migrated by a version whose chain had 0008 before 0007 gets 0007's tables here.

Revision ID: 0010_check_totals
Revises: 0009_acknowledgements
Create Date: 2026-11-27 18:00:00
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0010_check_totals"
down_revision = "0009_acknowledgements"
branch_labels = None
depends_on = None

# One check row's share ({r} is NEW or OLD). Built from these constants only.
_RAN = "({r}.status <> 'not_run' AND {r}.score IS NOT NULL)"
_SHARE = {
    "passed": "CASE WHEN {r}.status = 'passed' THEN 1 ELSE 0 END",
    "failed": "CASE WHEN {r}.status = 'failed' THEN 1 ELSE 0 END",
    "not_run": "CASE WHEN {r}.status = 'not_run' THEN 1 ELSE 0 END",
    "score_sum": f"CASE WHEN {_RAN} THEN {{r}}.score ELSE 0.0 END",
    "scored": f"CASE WHEN {_RAN} THEN 1 ELSE 0 END",
}
_FIGURES = tuple(_SHARE)


def _share(row: str) -> dict[str, str]:
    return {k: v.format(r=row) for k, v in _SHARE.items()}


def _add() -> str:
    """Add NEW's share to its run's route and family (an upsert)."""
    s = _share("NEW")
    values = ", ".join(s[f] for f in _FIGURES)
    updates = ", ".join(f"{f} = check_totals.{f} + excluded.{f}" for f in _FIGURES)
    return f"""
        INSERT INTO check_totals (route_id, family, name, {", ".join(_FIGURES)})
        SELECT runs.route_id, coalesce(runs.bench_family, ''), NEW.name, {values}
        FROM runs WHERE runs.id = NEW.run_id
        ON CONFLICT (route_id, family, name) DO UPDATE SET {updates};"""  # noqa: S608


def _subtract() -> str:
    """Take OLD's share back out of its run's route and family."""
    s = _share("OLD")
    updates = ", ".join(f"{f} = {f} - {s[f]}" for f in _FIGURES)
    return f"""
        UPDATE check_totals SET {updates}
        WHERE name = OLD.name
          AND route_id = (SELECT runs.route_id FROM runs WHERE runs.id = OLD.run_id)
          AND family = (SELECT coalesce(runs.bench_family, '') FROM runs
                        WHERE runs.id = OLD.run_id);"""  # noqa: S608


def _backfill() -> str:
    s = {k: v.replace("{r}.", "run_checks.") for k, v in _SHARE.items()}
    sums = ", ".join(f"sum({s[f]})" for f in _FIGURES)
    return f"""
        INSERT INTO check_totals (route_id, family, name, {", ".join(_FIGURES)})
        SELECT runs.route_id, coalesce(runs.bench_family, ''), run_checks.name, {sums}
        FROM run_checks JOIN runs ON runs.id = run_checks.run_id
        GROUP BY runs.route_id, coalesce(runs.bench_family, ''), run_checks.name"""  # noqa: S608


def _create_triggers(dialect: str) -> None:
    if dialect == "sqlite":
        op.execute(
            f"CREATE TRIGGER run_checks_totals_insert AFTER INSERT ON run_checks BEGIN {_add()} END"
        )
        op.execute(
            "CREATE TRIGGER run_checks_totals_update AFTER UPDATE ON run_checks "
            f"BEGIN {_subtract()} {_add()} END"
        )
        op.execute(
            f"CREATE TRIGGER run_checks_totals_delete AFTER DELETE ON run_checks "
            f"BEGIN {_subtract()} END"
        )
        return
    op.execute(
        f"""
        CREATE FUNCTION check_totals_track() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN {_subtract()}
            END IF;
            IF TG_OP <> 'DELETE' THEN {_add()}
            END IF;
            RETURN NULL;
        END $$"""
    )
    op.execute(
        "CREATE TRIGGER run_checks_totals AFTER INSERT OR DELETE OR UPDATE ON run_checks "
        "FOR EACH ROW EXECUTE FUNCTION check_totals_track()"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if not sa.inspect(bind).has_table("route_days"):
        # This database reached 0008 before 0007 sat below it in the chain: apply 0007 now.
        importlib.import_module("storage.migrations.versions.0007_scale").upgrade()
    op.create_table(
        "check_totals",
        sa.Column("route_id", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("not_run", sa.Integer(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.Column("scored", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("route_id", "family", "name"),
    )
    # Triggers before the backfill: on PostgreSQL creating one locks out writers to
    # `run_checks` until this migration commits, so no check is counted twice or missed.
    _create_triggers(bind.dialect.name)
    op.execute(_backfill())


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS run_checks_totals_{name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS run_checks_totals ON run_checks")
        op.execute("DROP FUNCTION IF EXISTS check_totals_track()")
    op.drop_table("check_totals")
