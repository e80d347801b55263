"""runs: the provider task a billed submit created, so it is collected, never paid for twice

Revision ID: 0005_tasks
Revises: 0004_bench
Create Date: 2026-11-25 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_tasks"
down_revision = "0004_bench"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("task_polling_url", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("task_submitted_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("task_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_runs_task_id"), ["task_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_task_id"))
        batch_op.drop_column("task_expires_at")
        batch_op.drop_column("task_submitted_at")
        batch_op.drop_column("task_polling_url")
        batch_op.drop_column("task_id")
