"""document register: per-agency, per-year numbers of issued documents (Decree 30/2020 Art. 15-16)

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "document_register_counters",
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agency_code", "year", name=op.f("pk_document_register_counters")),
    )
    op.create_table(
        "document_register",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=80), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("dossier_code", sa.String(length=64), nullable=True),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("output_file_id", sa.String(length=64), nullable=True),
        sa.Column("output_sha256", sa.String(length=64), nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.Column("created_at", hub.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_register")),
        sa.UniqueConstraint(
            "agency_code", "year", "number", name=op.f("uq_document_register_agency_code")
        ),
    )
    with op.batch_alter_table("document_register") as batch_op:
        batch_op.create_index(batch_op.f("ix_document_register_dossier_code"), ["dossier_code"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("document_register") as batch_op:
        batch_op.drop_index(batch_op.f("ix_document_register_dossier_code"))
    op.drop_table("document_register")
    op.drop_table("document_register_counters")
