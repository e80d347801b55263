"""viewer_days: finished runs per route and day for each Slack user and channel, kept by triggers

Stats count only the runs their viewer may see: theirs, and the conversation's they ask from
(bot/core/visibility.py). `viewer_days` holds, like `route_days`, finished runs with their
spend and unpriced runs per route and UTC day, once for the run's user (scope `user`), once for
its channel (`channel`) and once for the two together (`user_channel`, key `user|channel`), so a
viewer's figures are the user's plus the channel's minus their overlap: a few thousand rows,
whatever the history. Triggers on `runs` keep it in the same transaction as each write, on
SQLite and PostgreSQL alike. `viewer_checks` and `viewer_verdicts` do the same for acceptance
checks (triggers on `run_checks`) and verdicts (triggers on `verdicts`), by their run's user and
channel. Two indexes give each route's latest runs of one channel or one user, with what their
percentiles read.

Revision ID: 0011_viewer_days
Revises: 0010_check_totals
Create Date: 2026-11-27 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_viewer_days"
down_revision = "0010_check_totals"
branch_labels = None
depends_on = None

_WATCHED = "status, route_id, created_at, cost_usd, images, task_id, slack_user, slack_channel"
_LATEST = ("route_id", "created_at", "status", "latency_s", "cost_usd", "bench_family")
_INDEXES = {
    "ix_runs_channel_route_time": ("slack_channel", *_LATEST),
    # With the channel: a viewer's own runs outside the channel they ask from, read alone.
    "ix_runs_user_route_time": ("slack_user", *_LATEST, "slack_channel"),
}

# One run's share ({r} is NEW or OLD), per dialect. Built from these constants only.
_SPEND = "(CASE WHEN {r}.status = 'succeeded' THEN coalesce({r}.cost_usd, 0.0) ELSE 0.0 END)"
_SHARE = {
    "sqlite": {
        "day": "date({r}.created_at)",
        "succeeded": "({r}.status = 'succeeded')",
        "failed": "({r}.status = 'failed')",
        "spend": _SPEND,
        "unpriced": "({r}.cost_usd IS NULL AND ({r}.images > 0 OR {r}.task_id IS NOT NULL))",
        "pair": "{r}.slack_user || '|' || {r}.slack_channel",
    },
    "postgresql": {
        "day": "(({r}.created_at AT TIME ZONE 'UTC')::date)",
        "succeeded": "({r}.status = 'succeeded')::int",
        "failed": "({r}.status = 'failed')::int",
        "spend": _SPEND,
        "unpriced": "({r}.cost_usd IS NULL AND ({r}.images > 0 OR {r}.task_id IS NOT NULL))::int",
        "pair": "{r}.slack_user || '|' || {r}.slack_channel",
    },
}  # fmt: skip


def _scopes(dialect: str, row: str) -> list[tuple[str, str, str]]:
    """(scope, key expression, condition) of each scope a run counts in."""
    s = {k: v.format(r=row) for k, v in _SHARE[dialect].items()}
    return [
        ("user", f"{row}.slack_user", f"{row}.slack_user IS NOT NULL"),
        ("channel", f"{row}.slack_channel", f"{row}.slack_channel IS NOT NULL"),
        (
            "user_channel",
            s["pair"],
            f"{row}.slack_user IS NOT NULL AND {row}.slack_channel IS NOT NULL",
        ),
    ]


def _add(dialect: str) -> str:
    s = {k: v.format(r="NEW") for k, v in _SHARE[dialect].items()}
    return "".join(
        f"""
        INSERT INTO viewer_days
            (scope, key, route_id, day, runs, succeeded, failed, spend_usd, unpriced_runs)
        SELECT '{scope}', {key}, NEW.route_id, {s["day"]}, 1, {s["succeeded"]}, {s["failed"]},
               {s["spend"]}, {s["unpriced"]}
        WHERE NEW.status IN ('succeeded', 'failed') AND {condition}
        ON CONFLICT (scope, key, route_id, day) DO UPDATE SET
            runs = viewer_days.runs + excluded.runs,
            succeeded = viewer_days.succeeded + excluded.succeeded,
            failed = viewer_days.failed + excluded.failed,
            spend_usd = viewer_days.spend_usd + excluded.spend_usd,
            unpriced_runs = viewer_days.unpriced_runs + excluded.unpriced_runs;"""
        for scope, key, condition in _scopes(dialect, "NEW")
    )


def _subtract(dialect: str) -> str:
    s = {k: v.format(r="OLD") for k, v in _SHARE[dialect].items()}
    return "".join(
        f"""
        UPDATE viewer_days SET
            runs = runs - 1,
            succeeded = succeeded - {s["succeeded"]},
            failed = failed - {s["failed"]},
            spend_usd = spend_usd - {s["spend"]},
            unpriced_runs = unpriced_runs - {s["unpriced"]}
        WHERE OLD.status IN ('succeeded', 'failed') AND {condition}
          AND scope = '{scope}' AND key = {key} AND route_id = OLD.route_id
          AND day = {s["day"]};"""  # noqa: S608
        for scope, key, condition in _scopes(dialect, "OLD")
    )


def _backfill(dialect: str) -> list[str]:
    s = {k: v.replace("{r}.", "") for k, v in _SHARE[dialect].items()}
    statements = []
    for scope, key, condition in _scopes(dialect, "runs"):
        key = key.replace("runs.", "")
        condition = condition.replace("runs.", "")
        statements.append(
            f"""
            INSERT INTO viewer_days
                (scope, key, route_id, day, runs, succeeded, failed, spend_usd, unpriced_runs)
            SELECT '{scope}', {key}, route_id, {s["day"]}, count(*), sum({s["succeeded"]}),
                   sum({s["failed"]}), sum({s["spend"]}), sum({s["unpriced"]})
            FROM runs WHERE status IN ('succeeded', 'failed') AND {condition}
            GROUP BY {key}, route_id, {s["day"]}"""  # noqa: S608
        )
    return statements


def _create_triggers(dialect: str) -> None:
    if dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER runs_viewer_days_insert AFTER INSERT ON runs "
            f"BEGIN {_add('sqlite')} END"
        )
        op.execute(
            f"CREATE TRIGGER runs_viewer_days_update AFTER UPDATE OF {_WATCHED} ON runs "
            f"BEGIN {_subtract('sqlite')} {_add('sqlite')} END"
        )
        op.execute(
            "CREATE TRIGGER runs_viewer_days_delete AFTER DELETE ON runs "
            f"BEGIN {_subtract('sqlite')} END"
        )
        return
    op.execute(
        f"""
        CREATE FUNCTION viewer_days_track() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN {_subtract("postgresql")}
            END IF;
            IF TG_OP <> 'DELETE' THEN {_add("postgresql")}
            END IF;
            RETURN NULL;
        END $$"""
    )
    op.execute(
        f"CREATE TRIGGER runs_viewer_days AFTER INSERT OR DELETE OR UPDATE OF {_WATCHED} "
        "ON runs FOR EACH ROW EXECUTE FUNCTION viewer_days_track()"
    )  # fmt: skip


# -- acceptance checks and verdicts, by their run's user and channel ---------------------------
# The scopes of the run a check or verdict row ({r}) belongs to: its user, its channel, both.
_RUN_SCOPES = (
    ("user", "runs.slack_user", "runs.slack_user IS NOT NULL"),
    ("channel", "runs.slack_channel", "runs.slack_channel IS NOT NULL"),
    (
        "user_channel",
        "runs.slack_user || '|' || runs.slack_channel",
        "runs.slack_user IS NOT NULL AND runs.slack_channel IS NOT NULL",
    ),
)
_RAN = "({r}.status <> 'not_run' AND {r}.score IS NOT NULL)"
_CHECK = {
    "passed": "CASE WHEN {r}.status = 'passed' THEN 1 ELSE 0 END",
    "failed": "CASE WHEN {r}.status = 'failed' THEN 1 ELSE 0 END",
    "not_run": "CASE WHEN {r}.status = 'not_run' THEN 1 ELSE 0 END",
    "score_sum": f"CASE WHEN {_RAN} THEN {{r}}.score ELSE 0.0 END",
    "scored": f"CASE WHEN {_RAN} THEN 1 ELSE 0 END",
}
_VERDICT = {
    "survived": "CASE WHEN {r}.survives THEN 1 ELSE 0 END",
    "not_survived": "CASE WHEN {r}.survives THEN 0 ELSE 1 END",
}


def _tally_add(table: str, figures: dict[str, str], keys: str, key_values: str) -> str:
    """Add NEW's share under each scope of its run (NEW.run_id)."""
    names = ", ".join(figures)
    values = ", ".join(v.format(r="NEW") for v in figures.values())
    updates = ", ".join(f"{f} = {table}.{f} + excluded.{f}" for f in figures)
    return "".join(
        f"""
        INSERT INTO {table} (scope, key, {keys}, {names})
        SELECT '{scope}', {key}, {key_values}, {values}
        FROM runs WHERE runs.id = NEW.run_id AND {condition}
        ON CONFLICT (scope, key, {keys}) DO UPDATE SET {updates};"""  # noqa: S608
        for scope, key, condition in _RUN_SCOPES
    )


def _tally_subtract(table: str, figures: dict[str, str], match: str) -> str:
    """Take OLD's share back out under each scope of its run."""
    updates = ", ".join(f"{f} = {f} - {v.format(r='OLD')}" for f, v in figures.items())
    return "".join(
        f"""
        UPDATE {table} SET {updates}
        WHERE scope = '{scope}' AND {match}
          AND key = (SELECT {key} FROM runs WHERE runs.id = OLD.run_id AND {condition});"""  # noqa: S608
        for scope, key, condition in _RUN_SCOPES
    )


_CHECK_KEYS = "route_id, family, name"
_CHECK_VALUES = "runs.route_id, coalesce(runs.bench_family, ''), NEW.name"
_CHECK_MATCH = (
    "name = OLD.name"
    " AND route_id = (SELECT runs.route_id FROM runs WHERE runs.id = OLD.run_id)"
    " AND family = (SELECT coalesce(runs.bench_family, '') FROM runs WHERE runs.id = OLD.run_id)"
)
_VERDICT_KEYS = "route_id"
_VERDICT_VALUES = "runs.route_id"
_VERDICT_MATCH = "route_id = (SELECT runs.route_id FROM runs WHERE runs.id = OLD.run_id)"


def _tally_triggers(dialect: str, source: str, table: str, add: str, subtract: str) -> None:
    name = f"{source}_{table}"
    if dialect == "sqlite":
        op.execute(f"CREATE TRIGGER {name}_insert AFTER INSERT ON {source} BEGIN {add} END")
        op.execute(
            f"CREATE TRIGGER {name}_update AFTER UPDATE ON {source} BEGIN {subtract} {add} END"
        )
        op.execute(f"CREATE TRIGGER {name}_delete AFTER DELETE ON {source} BEGIN {subtract} END")
        return
    op.execute(
        f"""
        CREATE FUNCTION {name}_track() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN {subtract}
            END IF;
            IF TG_OP <> 'DELETE' THEN {add}
            END IF;
            RETURN NULL;
        END $$"""
    )
    op.execute(
        f"CREATE TRIGGER {name} AFTER INSERT OR DELETE OR UPDATE ON {source} "
        f"FOR EACH ROW EXECUTE FUNCTION {name}_track()"
    )


def _tally_backfill(
    table: str, source: str, figures: dict[str, str], keys: str, key_values: str
) -> list[str]:
    names = ", ".join(figures)
    sums = ", ".join(f"sum({v.format(r=source)})" for v in figures.values())
    group = key_values.replace("NEW.", f"{source}.")
    return [
        f"""
        INSERT INTO {table} (scope, key, {keys}, {names})
        SELECT '{scope}', {key}, {group}, {sums}
        FROM {source} JOIN runs ON runs.id = {source}.run_id
        WHERE {condition}
        GROUP BY {key}, {group}"""  # noqa: S608
        for scope, key, condition in _RUN_SCOPES
    ]


def _tally_tables() -> None:
    op.create_table(
        "viewer_checks",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("route_id", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("not_run", sa.Integer(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.Column("scored", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", "route_id", "family", "name"),
    )
    op.create_table(
        "viewer_verdicts",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("route_id", sa.String(length=64), nullable=False),
        sa.Column("survived", sa.Integer(), nullable=False),
        sa.Column("not_survived", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", "route_id"),
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, columns in _INDEXES.items():
        op.create_index(name, "runs", list(columns))
    op.create_table(
        "viewer_days",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("route_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("spend_usd", sa.Float(), nullable=False),
        sa.Column("unpriced_runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", "route_id", "day"),
    )
    _tally_tables()
    # Triggers before the backfill: on PostgreSQL creating one locks out writers to the table
    # until this migration commits, so no row is counted twice or missed.
    _create_triggers(dialect)
    checks = (_CHECK, _CHECK_KEYS, _CHECK_VALUES)
    verdicts = (_VERDICT, _VERDICT_KEYS, _VERDICT_VALUES)
    for source, table, (figures, keys, values), match in (
        ("run_checks", "viewer_checks", checks, _CHECK_MATCH),
        ("verdicts", "viewer_verdicts", verdicts, _VERDICT_MATCH),
    ):
        add = _tally_add(table, figures, keys, values)
        _tally_triggers(dialect, source, table, add, _tally_subtract(table, figures, match))
    for statement in _backfill(dialect):
        op.execute(statement)
    for statement in _tally_backfill("viewer_checks", "run_checks", *checks):
        op.execute(statement)
    for statement in _tally_backfill("viewer_verdicts", "verdicts", *verdicts):
        op.execute(statement)


def downgrade() -> None:
    triggers = (
        ("runs", "runs_viewer_days", "viewer_days_track"),
        ("run_checks", "run_checks_viewer_checks", "run_checks_viewer_checks_track"),
        ("verdicts", "verdicts_viewer_verdicts", "verdicts_viewer_verdicts_track"),
    )
    for table, trigger, function in triggers:
        if op.get_bind().dialect.name == "sqlite":
            for name in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {trigger}_{name}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_table("viewer_verdicts")
    op.drop_table("viewer_checks")
    op.drop_table("viewer_days")
    for name in _INDEXES:
        op.drop_index(name, table_name="runs")
