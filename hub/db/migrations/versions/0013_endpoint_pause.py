"""endpoint_pauses: delivery to an endpoint paused by an operator

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db.base

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = hub.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "endpoint_pauses",
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("paused_by", sa.String(length=100), nullable=False),
        sa.Column("paused_at", _TIME, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", name=op.f("pk_endpoint_pauses")),
    )


def downgrade() -> None:
    op.drop_table("endpoint_pauses")
