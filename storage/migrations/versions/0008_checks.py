"""run_checks: automatic acceptance checks of each run's output (text, edit, transparency...)

Revision ID: 0008_checks
Revises: 0007_scale
Create Date: 2026-11-26 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_checks"
down_revision = "0007_scale"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "name", "position", name="uq_run_check_position"),
    )
    with op.batch_alter_table("run_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_checks_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("run_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_checks_run_id"))
    op.drop_table("run_checks")
