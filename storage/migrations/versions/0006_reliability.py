"""spend reservations held while calls are in flight, and the parent message a run resolves

Revision ID: 0006_reliability
Revises: 0005_tasks
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_reliability"
down_revision = "0005_tasks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spend_reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker_id", sa.String(length=100), nullable=False),
        sa.Column("route_id", sa.String(length=64), nullable=False),
        sa.Column("slack_user", sa.String(length=32), nullable=True),
        sa.Column("usd", sa.Float(), nullable=False),
        sa.Column("request_key", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key"),
    )
    with op.batch_alter_table("spend_reservations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_spend_reservations_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_spend_reservations_worker_id"), ["worker_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_spend_reservations_route_id"), ["route_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_spend_reservations_slack_user"), ["slack_user"], unique=False
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slack_parent_ts", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("slack_parent_ts")
    with op.batch_alter_table("spend_reservations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spend_reservations_slack_user"))
        batch_op.drop_index(batch_op.f("ix_spend_reservations_route_id"))
        batch_op.drop_index(batch_op.f("ix_spend_reservations_worker_id"))
        batch_op.drop_index(batch_op.f("ix_spend_reservations_created_at"))
    op.drop_table("spend_reservations")
