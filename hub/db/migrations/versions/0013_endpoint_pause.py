"""endpoint_pauses: delivery to an endpoint paused by an operator

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

from hub.db.migrations.columns import time_column

revision: str = "0013"
down_revision: str | None = "0012"


def upgrade() -> None:
    op.create_table(
        "endpoint_pauses",
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("paused_by", sa.String(length=100), nullable=False),
        time_column("paused_at"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", name=op.f("pk_endpoint_pauses")),
    )


def downgrade() -> None:
    op.drop_table("endpoint_pauses")
