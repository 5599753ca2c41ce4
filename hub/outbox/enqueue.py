"""Writing outbound messages inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import MessageState, OutboxMessage

#: PostgreSQL channel the workers LISTEN on; payload is the endpoint name.
NOTIFY_CHANNEL = "hub_outbox"


def new_message_id() -> str:
    """Stable id sent to the receiver (UUIDv4 text; WS-Addressing wants ``urn:uuid:`` + this)."""
    return str(uuid.uuid4())


def enqueue(
    session: Session,
    *,
    endpoints: Sequence[str],
    kind: str,
    ordering_key: str,
    payload: dict[str, Any],
    dossier_code: str | None = None,
    not_before: datetime | None = None,
) -> list[OutboxMessage]:
    """Add one message per endpoint to the session (committed with the caller's change).

    On PostgreSQL a ``NOTIFY`` is issued in the same transaction, so workers wake exactly
    when the commit becomes visible (and not at all if it rolls back).
    """
    now = utcnow()
    rows = [
        OutboxMessage(
            message_id=new_message_id(),
            endpoint=endpoint,
            kind=kind,
            ordering_key=ordering_key,
            dossier_code=dossier_code,
            payload=payload,
            state=MessageState.PENDING.value,
            attempts=0,
            next_attempt_at=not_before or now,
            created_at=now,
            updated_at=now,
        )
        for endpoint in endpoints
    ]
    session.add_all(rows)
    session.flush()
    if rows and session.get_bind().dialect.name == "postgresql":
        for endpoint in sorted({row.endpoint for row in rows}):
            session.execute(
                text("SELECT pg_notify(:channel, :endpoint)"),
                {"channel": NOTIFY_CHANNEL, "endpoint": endpoint},
            )
    return rows
