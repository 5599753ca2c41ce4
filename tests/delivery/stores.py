"""One test harness per outbox store, so the contract tests run unchanged on each.

A harness is the store plus what the rest of the hub does around it: enqueue (the API),
operator retry and discard (the DLQ), reading rows and attempts back, and moving a lease or
a schedule into the past (what time would do).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import update

from hub.db.base import utcnow
from hub.db.models import DeliveryWorker, OutboxMessage
from hub.db.session import Database
from hub.delivery.memory_store import MemoryOutboxStore
from hub.delivery.sql_store import SqlOutboxStore
from hub.delivery.store import OutboxStore
from hub.dlq import service

from .helpers import attempts, message, put


class StoreHarness(Protocol):
    store: OutboxStore

    def put(self, endpoint: str, dossier: str, payload: dict[str, Any] | None = None) -> int: ...

    def row(self, seq: int) -> Any:
        """The message's columns (``state``, ``attempts``, ``lease_owner``, …)."""

    def attempts(self, seq: int) -> list[Any]:
        """Its attempt records, oldest first (``outcome``, ``worker_id``, ``attempt_no``, …)."""

    def health(self, endpoint: str) -> Any: ...

    def set_lease_expiry(self, seq: int, when: datetime) -> None: ...

    def set_next_attempt(self, seq: int, when: datetime) -> None: ...

    def worker(self, worker_id: str) -> Any:
        """The ``workers`` row (``host``, ``pid``, ``last_heartbeat_at``, ``stopped_at``, …)."""

    def set_worker_heartbeat(self, worker_id: str, when: datetime) -> None: ...

    def operator_retry(self, seq: int) -> None: ...

    def discard(self, seq: int, reason: str) -> None: ...


def past() -> datetime:
    return utcnow() - timedelta(seconds=1)


class SqlHarness:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.store: OutboxStore = SqlOutboxStore(db)

    def put(self, endpoint: str, dossier: str, payload: dict[str, Any] | None = None) -> int:
        return put(self.db, endpoint, dossier, payload)

    def row(self, seq: int) -> Any:
        return message(self.db, seq)

    def attempts(self, seq: int) -> list[Any]:
        return list(attempts(self.db, seq))

    def health(self, endpoint: str) -> Any:
        return next(h for h in service.endpoint_health(self.db) if h.endpoint == endpoint)

    def _set(self, seq: int, **values: Any) -> None:
        with self.db.transaction() as session:
            session.execute(update(OutboxMessage).where(OutboxMessage.seq == seq).values(**values))

    def set_lease_expiry(self, seq: int, when: datetime) -> None:
        self._set(seq, lease_expires_at=when)

    def set_next_attempt(self, seq: int, when: datetime) -> None:
        self._set(seq, next_attempt_at=when)

    def worker(self, worker_id: str) -> Any:
        with self.db.sessions() as session:
            return session.get(DeliveryWorker, worker_id)

    def set_worker_heartbeat(self, worker_id: str, when: datetime) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(DeliveryWorker).where(DeliveryWorker.id == worker_id).values(last_heartbeat_at=when)
            )

    def operator_retry(self, seq: int) -> None:
        service.retry_message(self.db, seq, actor="tech")

    def discard(self, seq: int, reason: str) -> None:
        service.discard_message(self.db, seq, actor="tech", reason=reason)


class MemoryHarness:
    def __init__(self) -> None:
        self.memory = MemoryOutboxStore()
        self.store: OutboxStore = self.memory

    def put(self, endpoint: str, dossier: str, payload: dict[str, Any] | None = None) -> int:
        return self.memory.enqueue(endpoint, dossier, payload or {"dossier": dossier}, dossier_code=dossier)

    def row(self, seq: int) -> Any:
        return self.memory.get(seq)

    def attempts(self, seq: int) -> list[Any]:
        return self.memory.attempts_of(seq)

    def health(self, endpoint: str) -> Any:
        return self.memory.health[endpoint]

    def set_lease_expiry(self, seq: int, when: datetime) -> None:
        self.memory.get(seq).lease_expires_at = when

    def set_next_attempt(self, seq: int, when: datetime) -> None:
        self.memory.get(seq).next_attempt_at = when

    def worker(self, worker_id: str) -> Any:
        return self.memory.workers.get(worker_id)

    def set_worker_heartbeat(self, worker_id: str, when: datetime) -> None:
        self.memory.workers[worker_id].last_heartbeat_at = when

    def operator_retry(self, seq: int) -> None:
        self.memory.operator_retry(seq)

    def discard(self, seq: int, reason: str) -> None:
        self.memory.discard(seq, reason)
