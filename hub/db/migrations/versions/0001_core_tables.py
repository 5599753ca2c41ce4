"""core tables

Revision ID: 0001
Revises:
Create Date: 2026-11-25 18:39:05.849534
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from hub.db.migrations.columns import BIG_ID, JSON_DOCUMENT, id_column, time_column, timestamps

revision: str = "0001"
down_revision: str | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        id_column(),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("key_prefix", sa.String(length=12), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        time_column("created_at"),
        time_column("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
    )
    op.create_table(
        "audit_log",
        id_column(),
        time_column("at"),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("details", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_table(
        "bulk_jobs",
        id_column(),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("filter", JSON_DOCUMENT, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        time_column("created_at"),
        time_column("finished_at", nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_jobs")),
    )
    op.create_table(
        "dossier_sequences",
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agency_code", "day", name=op.f("pk_dossier_sequences")),
    )
    op.create_table(
        "dossiers",
        id_column(),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.Column("procedure_code", sa.String(length=40), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("source_version", sa.Integer(), nullable=True),
        sa.Column("owner_id_hash", sa.String(length=64), nullable=True),
        sa.Column("document", JSON_DOCUMENT, nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossiers")),
        sa.UniqueConstraint("code", name=op.f("uq_dossiers_code")),
    )
    op.create_index(op.f("ix_dossiers_agency_code"), "dossiers", ["agency_code"], unique=False)
    op.create_table(
        "endpoint_health",
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        time_column("opened_at", nullable=True),
        time_column("last_success_at", nullable=True),
        time_column("last_failure_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        time_column("updated_at"),
        sa.PrimaryKeyConstraint("endpoint", name=op.f("pk_endpoint_health")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=60), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response", JSON_DOCUMENT, nullable=False),
        time_column("created_at"),
        sa.PrimaryKeyConstraint("key", "scope", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "outbox_messages",
        id_column("seq"),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("ordering_key", sa.String(length=100), nullable=False),
        sa.Column("dossier_code", sa.String(length=64), nullable=True),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        time_column("next_attempt_at"),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        time_column("lease_expires_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_class", sa.String(length=100), nullable=True),
        *timestamps(),
        time_column("delivered_at", nullable=True),
        time_column("dead_at", nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_messages_message_id")),
    )
    _outbox_index(
        "ix_outbox_active_key",
        ["endpoint", "ordering_key", "seq"],
        "state IN ('pending', 'in_flight', 'dead')",
    )
    _outbox_index("ix_outbox_due", ["next_attempt_at"], "state = 'pending'")
    _outbox_index("ix_outbox_lease", ["lease_expires_at"], "state = 'in_flight'")
    op.create_index(
        op.f("ix_outbox_messages_dossier_code"), "outbox_messages", ["dossier_code"], unique=False
    )
    op.create_index("ix_outbox_state_endpoint", "outbox_messages", ["state", "endpoint"], unique=False)
    op.create_table(
        "stored_files",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("dossier_code", sa.String(length=64), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", BIG_ID, nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        time_column("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_files")),
    )
    op.create_index(op.f("ix_stored_files_dossier_code"), "stored_files", ["dossier_code"], unique=False)
    _create_message_log(
        "delivery_attempts",
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(length=100), nullable=False),
        time_column("started_at"),
        time_column("finished_at"),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error_class", sa.String(length=100), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("request_summary", sa.Text(), nullable=True),
        sa.Column("response_summary", sa.Text(), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False),
    )
    _create_message_log(
        "payload_revisions",
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        sa.Column("replaced_by", sa.String(length=100), nullable=False),
        time_column("replaced_at"),
        sa.Column("reason", sa.Text(), nullable=False),
    )


def _outbox_index(name: str, columns: list[str], condition: str) -> None:
    """A partial index of the outbox messages that meet ``condition``, on both backends."""
    where = sa.text(condition)
    op.create_index(
        name, "outbox_messages", columns, unique=False, postgresql_where=where, sqlite_where=where
    )


def _create_message_log(table: str, *columns: sa.Column[Any]) -> None:
    """A table of rows about one outbox message (by ``message_seq``), deleted with the message."""
    op.create_table(
        table,
        id_column(),
        sa.Column("message_seq", BIG_ID, nullable=False),
        *columns,
        sa.ForeignKeyConstraint(
            ["message_seq"],
            ["outbox_messages.seq"],
            name=op.f(f"fk_{table}_message_seq_outbox_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    )
    op.create_index(op.f(f"ix_{table}_message_seq"), table, ["message_seq"], unique=False)


def downgrade() -> None:
    """Dropping a table drops its indexes."""
    for table in (
        "payload_revisions",
        "delivery_attempts",
        "stored_files",
        "outbox_messages",
        "idempotency_keys",
        "endpoint_health",
        "dossiers",
        "dossier_sequences",
        "bulk_jobs",
        "audit_log",
        "api_keys",
    ):
        op.drop_table(table)
