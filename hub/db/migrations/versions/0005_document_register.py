"""document register: per-agency, per-year numbers of issued documents (Decree 30/2020 Art. 15-16)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from hub.db.migrations.columns import id_column, timestamps

revision: str = "0005"
down_revision: str | None = "0004"


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
        id_column(),
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
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_register")),
        sa.UniqueConstraint("agency_code", "year", "number", name=op.f("uq_document_register_agency_code")),
    )
    op.create_index(
        op.f("ix_document_register_dossier_code"), "document_register", ["dossier_code"], unique=False
    )


def downgrade() -> None:
    op.drop_table("document_register")
    op.drop_table("document_register_counters")
