"""signing_key_bindings: server-held signing keys bound to accounts by an admin

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

from hub.db.migrations.columns import time_column

revision: str = "0017"
down_revision: str | None = "0016"


def upgrade() -> None:
    op.create_table(
        "signing_key_bindings",
        sa.Column("key_id", sa.String(length=100), nullable=False),
        sa.Column("principal", sa.String(length=200), nullable=False),
        sa.Column("bound_by", sa.String(length=100), nullable=False),
        time_column("bound_at"),
        sa.PrimaryKeyConstraint("key_id", "principal", name=op.f("pk_signing_key_bindings")),
    )


def downgrade() -> None:
    op.drop_table("signing_key_bindings")
