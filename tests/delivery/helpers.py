"""Small helpers shared by the delivery and DLQ tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from hub.db.models import DeliveryAttempt, OutboxMessage
from hub.db.session import Database
from hub.outbox.enqueue import enqueue


def put(
    db: Database,
    endpoint: str,
    dossier: str,
    payload: dict[str, Any] | None = None,
    *,
    kind: str = "dossier.sync",
) -> int:
    with db.transaction() as session:
        rows = enqueue(
            session,
            endpoints=[endpoint],
            kind=kind,
            ordering_key=dossier,
            payload=payload or {"dossier": dossier},
            dossier_code=dossier,
        )
        return rows[0].seq


def put_many(db: Database, endpoint: str, items: list[tuple[str, dict[str, Any]]]) -> list[int]:
    with db.transaction() as session:
        seqs = []
        for dossier, payload in items:
            rows = enqueue(
                session,
                endpoints=[endpoint],
                kind="dossier.sync",
                ordering_key=dossier,
                payload=payload,
                dossier_code=dossier,
            )
            seqs.append(rows[0].seq)
        return seqs


def message(db: Database, seq: int) -> OutboxMessage:
    with db.sessions() as session:
        row = session.get(OutboxMessage, seq)
        assert row is not None
        return row


def attempts(db: Database, seq: int) -> list[DeliveryAttempt]:
    with db.sessions() as session:
        return list(
            session.scalars(
                select(DeliveryAttempt).where(DeliveryAttempt.message_seq == seq).order_by(DeliveryAttempt.id)
            )
        )


def states(db: Database) -> dict[str, int]:
    with db.sessions() as session:
        rows = session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all()
        return {state: count for state, count in rows}


async def until(predicate: Callable[[], bool], *, within: float = 30.0, step: float = 0.05) -> None:
    """Wait (asynchronously) until ``predicate()`` holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        if await asyncio.to_thread(predicate):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {within}s")
        await asyncio.sleep(step)


def wait_until(predicate: Callable[[], bool], *, within: float = 60.0, step: float = 0.1) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {within}s")
        time.sleep(step)
