"""Writing outbound messages inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, text
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import OutboxMessage
from hub.outbox.transitions import enqueued

#: PostgreSQL channel the workers LISTEN on; payload is the endpoint name.
NOTIFY_CHANNEL = "hub_outbox"


@dataclass(frozen=True, slots=True)
class Enqueued:
    """A message written by :func:`enqueue`: its queue position and its id."""

    seq: int
    message_id: str
    endpoint: str


def new_messages(
    *,
    endpoints: Sequence[str],
    kind: str,
    ordering_key: str,
    payload: dict[str, Any],
    dossier_code: str | None = None,
    not_before: datetime | None = None,
) -> list[dict[str, Any]]:
    """The columns of one new pending message per endpoint, for :func:`write_messages`."""
    now = utcnow()
    return [
        enqueued(
            endpoint=endpoint,
            kind=kind,
            ordering_key=ordering_key,
            payload=payload,
            dossier_code=dossier_code,
            not_before=not_before,
            now=now,
        )
        for endpoint in endpoints
    ]


def write_messages(
    connection: Connection | Session, messages: Sequence[dict[str, Any]], *, returning: bool = False
) -> list[Enqueued]:
    """Insert ``messages`` (from :func:`new_messages`, queue order = list order) in one
    statement, committed with the caller's change; with ``returning``, their ``seq``.

    On PostgreSQL one ``NOTIFY`` per endpoint is issued in the same transaction, so workers
    wake exactly when the commit becomes visible (and not at all if it rolls back).
    """
    if not messages:
        return []
    written: list[Enqueued] = []
    if returning:
        t = OutboxMessage
        statement = insert(t).returning(t.seq, t.message_id, t.endpoint, sort_by_parameter_order=True)
        written = [
            Enqueued(row.seq, row.message_id, row.endpoint) for row in connection.execute(statement, messages)
        ]
    else:
        connection.execute(insert(OutboxMessage), messages)
    bind = connection.get_bind() if isinstance(connection, Session) else connection
    if bind.dialect.name == "postgresql":
        for endpoint in sorted({message["endpoint"] for message in messages}):
            connection.execute(
                text("SELECT pg_notify(:channel, :endpoint)"),
                {"channel": NOTIFY_CHANNEL, "endpoint": endpoint},
            )
    return written


def enqueue(
    session: Session | Connection,
    *,
    endpoints: Sequence[str],
    kind: str,
    ordering_key: str,
    payload: dict[str, Any],
    dossier_code: str | None = None,
    not_before: datetime | None = None,
) -> list[Enqueued]:
    """Write one message per endpoint in the caller's transaction (see :func:`write_messages`)."""
    messages = new_messages(
        endpoints=endpoints,
        kind=kind,
        ordering_key=ordering_key,
        payload=payload,
        dossier_code=dossier_code,
        not_before=not_before,
    )
    return write_messages(session, messages, returning=True)
