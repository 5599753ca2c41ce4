"""outages: recorded outages (database, hub, department's software) and hub process runs

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from hub.db.migrations.columns import id_column, time_column

revision: str = "0008"
down_revision: str | None = "0007"


def upgrade() -> None:
    op.create_table(
        "hub_runs",
        id_column(),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        time_column("started_at"),
        time_column("last_seen_at"),
        time_column("stopped_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_runs")),
    )
    op.create_index(op.f("ix_hub_runs_started_at"), "hub_runs", ["started_at"])
    op.create_index(op.f("ix_hub_runs_last_seen_at"), "hub_runs", ["last_seen_at"])
    op.create_table(
        "outages",
        id_column(),
        sa.Column("kind", sa.String(length=20), nullable=False),
        time_column("started_at"),
        time_column("ended_at"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        time_column("recorded_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outages")),
    )
    op.create_index(op.f("ix_outages_kind"), "outages", ["kind"])
    op.create_index(op.f("ix_outages_started_at"), "outages", ["started_at"])
    op.create_index(op.f("ix_outages_ended_at"), "outages", ["ended_at"])


def downgrade() -> None:
    op.drop_table("outages")
    op.drop_table("hub_runs")
