"""Small helpers shared by the delivery and DLQ tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from connectors.settings import EndpointSettings, RetrySettings
from hub.config import Settings, WorkerSettings
from hub.db.models import DeliveryAttempt, OutboxMessage
from hub.db.session import Database
from hub.outbox.enqueue import enqueue
from hub.simulators.sink import WebhookSink


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


def column(db: Database, attribute: Any) -> list[Any]:
    """Every row's value of one column, e.g. ``column(db, OutboxMessage.seq)``."""
    with db.sessions() as session:
        return list(session.scalars(select(attribute)))


def numbers_by_dossier(sink: WebhookSink) -> dict[str, list[int]]:
    """The ``n`` of each arrival's JSON body per ``dossier``, in arrival order (the tests'
    payloads number each dossier's messages in queue order)."""
    seen: dict[str, list[int]] = {}
    for arrival in sink.arrivals():
        body = json.loads(arrival.body)
        seen.setdefault(body["dossier"], []).append(body["n"])
    return seen


def assert_dossier_order(sink: WebhookSink) -> None:
    """No message of a dossier arrived after a later one (a re-sent one may repeat, never overtake)."""
    for dossier, numbers in numbers_by_dossier(sink).items():
        assert numbers == sorted(numbers), dossier


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


def make_settings(
    database_url: str,
    endpoints: dict[str, str],
    *,
    schedule: list[float] | None = None,
    worker: dict[str, Any] | None = None,
    endpoint_options: dict[str, Any] | None = None,
) -> Settings:
    """Settings with webhook endpoints ``name → url`` and test-friendly timings."""
    retry = RetrySettings(
        schedule_seconds=schedule if schedule is not None else [0.05, 0.1, 0.2],
        jitter_ratio=0.0,
        retry_after_min_seconds=0,
        throttle_min_seconds=0,
    )
    options = {"timeout_seconds": 5, "connect_timeout_seconds": 1, **(endpoint_options or {})}
    return Settings(
        database_url=database_url,
        endpoints={
            name: EndpointSettings(kind="webhook", url=url, retry=retry, **options)  # type: ignore[arg-type]
            for name, url in endpoints.items()
        },
        worker=WorkerSettings(
            **{
                "concurrency": 16,
                "batch_size": 20,
                "lease_seconds": 30,
                "heartbeat_seconds": 5,
                "poll_interval_seconds": 0.05,
                "shutdown_grace_seconds": 5,
                **(worker or {}),
            }
        ),
    )
