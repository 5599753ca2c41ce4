"""outages: recorded outages (database, hub, department's software) and hub process runs

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = hub.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "hub_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("last_seen_at", _TIME, nullable=False),
        sa.Column("stopped_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_runs")),
    )
    op.create_index(op.f("ix_hub_runs_started_at"), "hub_runs", ["started_at"])
    op.create_index(op.f("ix_hub_runs_last_seen_at"), "hub_runs", ["last_seen_at"])
    op.create_table(
        "outages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("ended_at", _TIME, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outages")),
    )
    op.create_index(op.f("ix_outages_kind"), "outages", ["kind"])
    op.create_index(op.f("ix_outages_started_at"), "outages", ["started_at"])
    op.create_index(op.f("ix_outages_ended_at"), "outages", ["ended_at"])


def downgrade() -> None:
    op.drop_table("outages")
    op.drop_table("hub_runs")
