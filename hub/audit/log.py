"""The one writer of the audit log (docs/security.md, "Audit log").

:func:`record` appends one row inside the caller's transaction, so an audit row never exists
without the change it records, nor the change without its row. Each row is linked into the
hash chain (:mod:`hub.audit.chain`): the append locks the single row of ``audit_chain_head``
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite has one writer at a time), reads the last hash,
inserts the row and moves the head, so rows are chained in commit order and the chain never
forks. The lock is held until the caller's transaction ends: keep audited transactions short.

From where (``client``): given by the caller, else the ambient value of the request or command
being served (:func:`acting_from`; the API sets it per request from the client address and
user agent, the ``hub`` CLI to ``cli:<user>@<host>``: :mod:`hub.audit.context`).

Intake's per-dossier events (``dossier.*``, :mod:`hub.services.intake`) are business records,
not operator actions: they are written to the same table by intake itself, unchained
(``hash`` NULL), so the chain lock never serialises intake commits (measured in
docs/security.md). The triggers refuse their update and deletion like any other row's, and
``hub audit verify`` reports an unchained row of any other action as tampering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.audit.chain import GENESIS, link_hash, normalize
from hub.audit.context import MAX_CLIENT, current_client
from hub.db.base import utcnow
from hub.db.models import AuditChainHead, AuditEntry

#: Id of the one row of ``audit_chain_head``.
HEAD_ID = 1

#: Actions written unchained by intake (:mod:`hub.services.intake`); any other unchained row
#: is tampering.
UNCHAINED_PREFIX = "dossier."


@dataclass(frozen=True, slots=True)
class Recorded:
    """What :func:`record` appended."""

    id: int
    hash: str


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
    client: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> Recorded:
    """Append one chained audit row in ``session``'s transaction (committed with it).

    ``actor``: who (key name, ``cli:<user>``, ``system:<part>``); ``action``: what, dotted
    (``api_key.create``); ``target``: what it was done to; ``before``/``after``: the state a
    change replaced and left. Long values are cut to their column's size.
    """
    connection = session.connection()
    prev_hash = _lock_head(session)
    fields: dict[str, Any] = {
        "at": utcnow(),
        "actor": actor[:100],
        "action": action[:60],
        "target": target[:200],
        "details": normalize(details or {}),
        "client": (client or current_client() or "")[:MAX_CLIENT] or None,
        "before": normalize(before) if before is not None else None,
        "after": normalize(after) if after is not None else None,
    }
    digest = link_hash(prev_hash, fields)
    row_id = connection.execute(
        insert(AuditEntry).returning(AuditEntry.id), {**fields, "prev_hash": prev_hash, "hash": digest}
    ).scalar_one()
    connection.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(last_id=row_id, last_hash=digest, length=AuditChainHead.length + 1)
    )
    return Recorded(id=row_id, hash=digest)


def hold_chain(session: Session) -> None:
    """Take the chain's lock now, before :func:`record` would: a "read the last row, append if
    it differs" check made under it cannot be made twice at once (two processes starting)."""
    _lock_head(session)


def _lock_head(session: Session) -> str:
    """The chain's last hash, its row locked until the transaction ends (a database that lacks
    the row gets it). Read as a column, never an ORM object a second append would see stale."""
    statement = select(AuditChainHead.last_hash).where(AuditChainHead.id == HEAD_ID).with_for_update()
    last_hash = session.execute(statement).scalar_one_or_none()
    if last_hash is None:
        values = {"id": HEAD_ID, "last_id": None, "last_hash": GENESIS, "length": 0}
        dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            dialect_insert(AuditChainHead).values(values).on_conflict_do_nothing(index_elements=["id"])
        )
        last_hash = session.execute(statement).scalar_one()
    return last_hash
