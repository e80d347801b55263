"""runs, assets, attempts and workers

Revision ID: 0001
Revises:
Create Date: 2026-11-24 11:52:31.444462
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("route_id", sa.String(length=64), nullable=False),
        sa.Column("route_kind", sa.String(length=32), nullable=False),
        sa.Column("board", sa.String(length=16), nullable=True),
        sa.Column("route_owner", sa.String(length=200), nullable=True),
        sa.Column("billing_owner", sa.String(length=200), nullable=True),
        sa.Column("model_requested", sa.String(length=200), nullable=False),
        sa.Column("model_reported", sa.String(length=200), nullable=True),
        sa.Column("underlying_model", sa.String(length=200), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("revised_prompt", sa.Text(), nullable=True),
        sa.Column("input_assets", sa.JSON(), nullable=False),
        sa.Column("size", sa.String(length=32), nullable=True),
        sa.Column("quality", sa.String(length=16), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("response_id", sa.String(length=200), nullable=True),
        sa.Column("latency_s", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("cost_basis", sa.String(length=16), nullable=True),
        sa.Column("cost_detail", sa.Text(), nullable=True),
        sa.Column("usage", sa.JSON(), nullable=True),
        sa.Column("provider_metadata", sa.JSON(), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("error_class", sa.String(length=32), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_request_id", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("hardware", sa.String(length=200), nullable=True),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("deployment_hash", sa.String(length=200), nullable=True),
        sa.Column("serving_config", sa.Text(), nullable=True),
        sa.Column("slack_team", sa.String(length=32), nullable=True),
        sa.Column("slack_channel", sa.String(length=32), nullable=True),
        sa.Column("slack_user", sa.String(length=32), nullable=True),
        sa.Column("slack_thread_ts", sa.String(length=32), nullable=True),
        sa.Column("slack_response_url", sa.Text(), nullable=True),
        sa.Column("group_id", sa.String(length=64), nullable=True),
        sa.Column("bench_id", sa.String(length=64), nullable=True),
        sa.Column("bench_family", sa.String(length=32), nullable=True),
        sa.Column("request_key", sa.String(length=200), nullable=True),
        sa.Column("worker_id", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key"),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_bench_id"), ["bench_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_route_id"), ["route_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_slack_channel"), ["slack_channel"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_slack_user"), ["slack_user"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_status"), ["status"], unique=False)

    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "run_assets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("mime", sa.String(length=64), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("run_assets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_assets_run_id"), ["run_id"], unique=False)

    op.create_table(
        "run_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("waited_s", sa.Float(), nullable=False),
        sa.Column("error_class", sa.String(length=32), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("run_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_attempts_run_id"), ["run_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("run_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_attempts_run_id"))

    op.drop_table("run_attempts")
    with op.batch_alter_table("run_assets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_assets_run_id"))

    op.drop_table("run_assets")
    op.drop_table("workers")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_status"))
        batch_op.drop_index(batch_op.f("ix_runs_slack_user"))
        batch_op.drop_index(batch_op.f("ix_runs_slack_channel"))
        batch_op.drop_index(batch_op.f("ix_runs_route_id"))
        batch_op.drop_index(batch_op.f("ix_runs_group_id"))
        batch_op.drop_index(batch_op.f("ix_runs_created_at"))
        batch_op.drop_index(batch_op.f("ix_runs_bench_id"))

    op.drop_table("runs")
