"""report_export_runs: one row per scheduled export and period (the runners' claim)

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

from hub.db.migrations.columns import time_column

revision: str = "0015"
down_revision: str | None = "0014"


def upgrade() -> None:
    op.create_table(
        "report_export_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("schedule", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        time_column("claimed_at"),
        time_column("finished_at", nullable=True),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_export_runs")),
        sa.UniqueConstraint("schedule", "period", name=op.f("uq_report_export_runs_schedule")),
    )


def downgrade() -> None:
    op.drop_table("report_export_runs")
