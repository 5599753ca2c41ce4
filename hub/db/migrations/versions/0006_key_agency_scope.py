"""key agency scope: source keys write only their agencies' dossiers; idempotency keys per caller

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("agency_codes", sa.Text(), nullable=True))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.alter_column(
            "scope", existing_type=sa.String(length=60), type_=sa.String(length=120), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.alter_column(
            "scope", existing_type=sa.String(length=120), type_=sa.String(length=60), existing_nullable=False
        )
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("agency_codes")
