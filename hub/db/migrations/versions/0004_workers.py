"""workers: registered delivery workers and their heartbeats (dead workers noticed in seconds)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from hub.db.migrations.columns import time_column

revision: str = "0004"
down_revision: str | None = "0003"


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        time_column("started_at"),
        time_column("last_heartbeat_at"),
        time_column("stopped_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )


def downgrade() -> None:
    op.drop_table("workers")
