"""Writing outbound messages inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import OutboxMessage
from hub.outbox.transitions import enqueued

#: PostgreSQL channel the workers LISTEN on; payload is the endpoint name.
NOTIFY_CHANNEL = "hub_outbox"


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
            **enqueued(
                endpoint=endpoint,
                kind=kind,
                ordering_key=ordering_key,
                payload=payload,
                dossier_code=dossier_code,
                not_before=not_before,
                now=now,
            )
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
