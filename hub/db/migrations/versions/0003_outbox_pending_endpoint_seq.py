"""outbox: index pending messages by (endpoint, seq) for the FIFO claim scan

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    op.create_index(
        "ix_outbox_pending_endpoint_seq",
        "outbox_messages",
        ["endpoint", "seq"],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending_endpoint_seq", table_name="outbox_messages")
