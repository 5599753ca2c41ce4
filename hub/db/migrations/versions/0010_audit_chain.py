"""audit chain: where from, before/after, hash chain, append-only triggers (docs/security.md)

Adds ``client``, ``before``, ``after``, ``prev_hash`` and ``hash`` to ``audit_log``, the one-row
``audit_chain_head``, chains the rows already there in id order (intake's ``dossier.*`` events
stay unchained, as :mod:`hub.audit.log` writes them), then installs the triggers that refuse
UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) of audit rows. A later migration that rebuilds
``audit_log`` on SQLite (batch mode copies the table) must create the triggers again.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from hub.audit.chain import GENESIS, link_hash, normalize
from hub.db.migrations.columns import JSON_DOCUMENT, TIME

revision: str = "0010"
down_revision: str | None = "0009"

REFUSAL = "audit_log is append-only"

_PG_TRIGGERS = (
    f"""
    CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSAL}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)
_SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: {verb} refused'); END"
    for verb in ("UPDATE", "DELETE")
)


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("client", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("before", JSON_DOCUMENT, nullable=True))
        batch.add_column(sa.Column("after", JSON_DOCUMENT, nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=True),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    last_id, last_hash, length = _chain_existing_rows()
    op.bulk_insert(head, [{"id": 1, "last_id": last_id, "last_hash": last_hash, "length": length}])
    for statement in _PG_TRIGGERS if op.get_bind().dialect.name == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)


def _chain_existing_rows() -> tuple[int | None, str, int]:
    """Link the rows written before this migration, in id order; the new head."""
    log = sa.table(
        "audit_log",
        sa.column("id", sa.BigInteger()),
        sa.column("at", TIME),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("target", sa.String()),
        sa.column("details", JSON_DOCUMENT),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(log.c.id, log.c.at, log.c.actor, log.c.action, log.c.target, log.c.details)
        .where(~log.c.action.startswith("dossier."))
        .order_by(log.c.id)
    ).all()
    last_id, last_hash, links = None, GENESIS, []
    for row in rows:
        fields = {
            "at": row.at,
            "actor": row.actor,
            "action": row.action,
            "target": row.target,
            "details": normalize(row.details or {}),
        }
        digest = link_hash(last_hash, fields)
        links.append({"b_id": row.id, "b_prev": last_hash, "b_hash": digest})
        last_id, last_hash = row.id, digest
    if links:
        connection.execute(
            sa.update(log)
            .where(log.c.id == sa.bindparam("b_id"))
            .values(prev_hash=sa.bindparam("b_prev"), hash=sa.bindparam("b_hash")),
            links,
        )
    return last_id, last_hash, len(links)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER audit_log_no_update ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")
    op.drop_table("audit_chain_head")
    with op.batch_alter_table("audit_log") as batch:
        for name in ("hash", "prev_hash", "after", "before", "client"):
            batch.drop_column(name)
