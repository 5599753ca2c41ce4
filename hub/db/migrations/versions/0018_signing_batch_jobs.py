"""signing_batch_jobs: the console's batch signatures as rows, shared by every API process

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

from hub.db.migrations.columns import JSON_DOCUMENT, time_column, timestamps

revision: str = "0018"
down_revision: str | None = "0017"


def upgrade() -> None:
    op.create_table(
        "signing_batch_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("key_id", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("items", JSON_DOCUMENT, nullable=False),
        sa.Column("runner", sa.String(length=300), nullable=False),
        *timestamps(),
        time_column("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_batch_jobs")),
    )
    op.create_index(op.f("ix_signing_batch_jobs_owner"), "signing_batch_jobs", ["owner"])


def downgrade() -> None:
    op.drop_index(op.f("ix_signing_batch_jobs_owner"), table_name="signing_batch_jobs")
    op.drop_table("signing_batch_jobs")
