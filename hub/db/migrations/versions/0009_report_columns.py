"""report columns: report_dossiers, the indexed projection the on-time reports aggregate over

Backfilled from the stored dossiers with the rule of hub.reports.ontime (docs/reports.md §3).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from hub.db.migrations.columns import time_column

revision: str = "0009"
down_revision: str | None = "0008"


def upgrade() -> None:
    op.create_table(
        "report_dossiers",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.Column("procedure_code", sa.String(length=40), nullable=False),
        sa.Column("procedure_name", sa.Text(), nullable=True),
        sa.Column("field_code", sa.String(length=100), nullable=True),
        sa.Column("field_name", sa.Text(), nullable=True),
        sa.Column("channel", sa.SmallInteger(), nullable=False),
        time_column("received_at"),
        time_column("due_at", nullable=True),
        time_column("end_at", nullable=True),
        sa.Column("end_kind", sa.SmallInteger(), nullable=True),
        sa.Column("end_day", sa.Integer(), nullable=True),
        sa.Column("due_day", sa.Integer(), nullable=True),
        time_column("supplement_from", nullable=True),
        time_column("supplement_until", nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_report_dossiers")),
    )
    op.create_index("ix_report_dossiers_received_at", "report_dossiers", ["received_at"])
    op.create_index("ix_report_dossiers_end_at", "report_dossiers", ["end_at"])
    # Backfill with the rule as the code states it now (a later rule change: hub report rebuild).
    from hub.reports.projection import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_report_dossiers_end_at", table_name="report_dossiers")
    op.drop_index("ix_report_dossiers_received_at", table_name="report_dossiers")
    op.drop_table("report_dossiers")
