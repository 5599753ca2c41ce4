"""Writing outbound messages inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, TypedDict, Unpack

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.json_rows import json_rows
from hub.db.models import OutboxMessage
from hub.outbox.transitions import enqueued
from hub.telemetry import correlation

#: PostgreSQL channel the workers LISTEN on; payload is the endpoint name.
NOTIFY_CHANNEL = "hub_outbox"
#: ``Session.info`` key set on a session that wrote outbox rows (the in-process wake-up of
#: ``hub.delivery.sql_store`` fires on the commit of a session carrying it).
OUTBOX_TOUCHED = "hub_outbox_touched"
#: One notification per endpoint name in ``:endpoints``, in one round trip.
_NOTIFY = text("SELECT pg_notify(:channel, endpoint) FROM unnest(CAST(:endpoints AS text[])) AS endpoint")


_RETURNED = (OutboxMessage.seq, OutboxMessage.message_id, OutboxMessage.endpoint)
#: The rows of :func:`write_messages` on PostgreSQL: one JSON parameter (:mod:`hub.db.json_rows`;
#: a batch's hundreds of messages have 12 parameters each), unnested in list order (``seq``
#: follows the list, as with SQLAlchemy's own ``sort_by_parameter_order``). Arrays per column
#: were slower still: psycopg escapes every payload of a text array with a regular expression.
_INSERT_JSON_ROWS = text(
    """
    INSERT INTO outbox_messages (correlation_id, message_id, endpoint, kind, ordering_key, dossier_code,
                                 payload, state, attempts, next_attempt_at, created_at, updated_at)
    SELECT correlation_id, message_id, endpoint, kind, ordering_key, dossier_code,
           payload, state, attempts, next_attempt_at, created_at, updated_at
    FROM ROWS FROM (
        jsonb_to_recordset(CAST(:rows AS jsonb)) AS (
            correlation_id text, message_id text, endpoint text, kind text, ordering_key text,
            dossier_code text, payload jsonb, state text, attempts integer,
            next_attempt_at timestamptz, created_at timestamptz, updated_at timestamptz
        )
    ) WITH ORDINALITY AS message
    ORDER BY message.ordinality
    RETURNING seq, message_id, endpoint
    """
)
#: The times of a message row, written as ISO 8601 text in :data:`_INSERT_JSON_ROWS`.
_TIMES = ("next_attempt_at", "created_at", "updated_at")
#: On SQLite, whose multi-row ``VALUES`` inserts in list order, ``sort_by_parameter_order``
#: only makes SQLAlchemy insert row by row (one statement each, to pair returned rows with
#: their parameters): without it one statement; the rows are put in queue order by ``seq``.
_INSERT = insert(OutboxMessage).returning(*_RETURNED)


@dataclass(frozen=True, slots=True)
class Enqueued:
    """A message written by :func:`enqueue`: its queue position and its id."""

    seq: int
    message_id: str
    endpoint: str


class NewMessage(TypedDict):
    """What a caller says of the message it writes for each endpoint (:func:`new_messages`)."""

    kind: str
    ordering_key: str
    payload: dict[str, Any]
    dossier_code: NotRequired[str | None]
    not_before: NotRequired[datetime | None]
    """Not due before this time (default: at once)."""


def new_messages(endpoints: Sequence[str], **message: Unpack[NewMessage]) -> list[dict[str, Any]]:
    """The columns of one new pending message per endpoint, for :func:`write_messages`; each
    carries the correlation id of the request writing it (:mod:`hub.telemetry.correlation`)."""
    now = utcnow()
    cid = correlation.current()
    return [enqueued(endpoint=endpoint, now=now, correlation_id=cid, **message) for endpoint in endpoints]


def _by_seq(written: Enqueued) -> int:
    return written.seq


def write_messages(session: Session, messages: Sequence[dict[str, Any]]) -> list[Enqueued]:
    """Insert ``messages`` (from :func:`new_messages`, queue order = list order), committed with
    the caller's change; returns their ``seq``, in queue order.

    One multi-row ``INSERT … RETURNING`` (SQLAlchemy's "insertmanyvalues"), not a driver
    ``executemany``: psycopg runs the latter as a pipeline of single-row statements, several
    times the cost for the one to a few hundred rows an intake transaction writes.

    On PostgreSQL one ``NOTIFY`` per endpoint is issued (in one statement) in the same
    transaction, so workers wake exactly when the commit becomes visible (and not at all if it
    rolls back). The session is marked (:data:`OUTBOX_TOUCHED`) so an in-process worker can
    wake at its commit too (SQLite has no NOTIFY).
    """
    if not messages:
        return []
    session.info[OUTBOX_TOUCHED] = True
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    rows = (
        connection.execute(_INSERT_JSON_ROWS, {"rows": json_rows(messages, _TIMES)})
        if postgres
        else connection.execute(_INSERT, messages)
    )
    written = sorted((Enqueued(row.seq, row.message_id, row.endpoint) for row in rows), key=_by_seq)
    if postgres:
        endpoints = sorted({message["endpoint"] for message in messages})
        connection.execute(_NOTIFY, {"channel": NOTIFY_CHANNEL, "endpoints": endpoints})
    return written


def enqueue(session: Session, endpoints: Sequence[str], **message: Unpack[NewMessage]) -> list[Enqueued]:
    """Write one message per endpoint in the caller's transaction (see :func:`write_messages`)."""
    return write_messages(session, new_messages(endpoints, **message))
