"""The outbox in process memory: :class:`MemoryOutboxStore` (like procrastinate's in-memory connector).

Same protocol, same transitions (:mod:`hub.outbox.transitions`) and same head-of-queue rule
(:mod:`hub.outbox.queue`) as the SQL store, and the same contract tests
(``tests/delivery/test_store_contract.py``); it lets the worker's planning, capacity and
breaker logic be tested in milliseconds. Every method runs on the event loop without awaiting
anything, so each one is atomic, as a transaction is in the SQL store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hub.db.base import utcnow
from hub.db.models import DeliveryAttempt, DeliveryWorker, EndpointHealth, MessageState, OutboxMessage
from hub.delivery.store import TOKEN_SEPARATOR, ClaimedMessage, Completion, Rescuer, WorkerRegistration
from hub.outbox import transitions
from hub.outbox.enqueue import new_messages
from hub.outbox.queue import blocked_by_of, head_seq_of
from hub.outbox.transitions import LeaseLoss, apply_changes
from schemas.errors import ConflictError, NotFoundError


@dataclass
class MemoryOutboxStore:
    """:class:`~hub.delivery.store.OutboxStore` over Python objects (one process, one loop).

    Its rows are instances of the ORM classes the SQL store maps (:class:`OutboxMessage`,
    :class:`EndpointHealth`, :class:`DeliveryWorker`) that never join a session: the same
    columns, declared once."""

    messages: dict[int, OutboxMessage] = field(default_factory=dict)
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    health: dict[str, EndpointHealth] = field(default_factory=dict)
    workers: dict[str, DeliveryWorker] = field(default_factory=dict)
    _last_seq: int = 0
    _queues: dict[tuple[str, str], list[OutboxMessage]] = field(default_factory=dict)
    _listeners: list[Callable[[], None]] = field(default_factory=list)

    # --- what the rest of the hub does to the outbox (enqueue, operator actions) -------------

    def enqueue(
        self,
        endpoint: str,
        ordering_key: str,
        payload: dict[str, Any],
        *,
        kind: str = "dossier.sync",
        dossier_code: str | None = None,
        not_before: datetime | None = None,
    ) -> int:
        """Add one pending message (like :func:`hub.outbox.enqueue.enqueue`) and wake listeners."""
        self._last_seq += 1
        seq = self._last_seq
        (columns,) = new_messages(
            [endpoint],
            kind=kind,
            ordering_key=ordering_key,
            payload=payload,
            dossier_code=dossier_code,
            not_before=not_before,
        )
        row = OutboxMessage(seq=seq, manual_retry=False, **columns)
        self.messages[seq] = row
        self._queues.setdefault((endpoint, ordering_key), []).append(row)
        self._notify()
        return seq

    def get(self, seq: int) -> OutboxMessage:
        try:
            return self.messages[seq]
        except KeyError:
            raise NotFoundError(f"outbox message {seq} does not exist") from None

    def attempts_of(self, seq: int) -> list[DeliveryAttempt]:
        return [attempt for attempt in self.attempts if attempt.message_seq == seq]

    def blocked_by(self, seq: int) -> int | None:
        """The dead message holding ``seq``'s queue (the DLQ's ``blocked`` view)."""
        row = self.get(seq)
        return blocked_by_of(row, self._queue(row))

    def operator_retry(self, seq: int) -> None:
        """What ``hub dlq retry`` does: a fresh attempt budget, recorded as manual."""
        self._operator(seq, transitions.RETRYABLE_STATES, transitions.operator_retry(now=utcnow()))

    def discard(self, seq: int, reason: str) -> None:
        """What ``hub dlq discard`` does: releases the later messages of the dossier."""
        self._operator(seq, transitions.DISCARDABLE_STATES, transitions.discard(reason=reason, now=utcnow()))

    def _operator(self, seq: int, allowed: Sequence[MessageState], changes: transitions.Changes) -> None:
        row = self.get(seq)
        if row.state not in {state.value for state in allowed}:
            raise ConflictError(f"message {seq} is {row.state}")
        apply_changes(row, changes)
        self._notify()

    def _queue(self, row: OutboxMessage) -> list[OutboxMessage]:
        return self._queues[(row.endpoint, row.ordering_key)]

    def _notify(self) -> None:
        for wake in list(self._listeners):
            wake()

    def _held(self, seq: int, token: str) -> OutboxMessage | None:
        row = self.messages.get(seq)
        if row is None or row.state != transitions.LEASED_STATE.value or row.lease_owner != token:
            return None
        return row

    # --- the protocol ------------------------------------------------------------------------

    async def claim(
        self, wants: Mapping[str, int], lease_token: str, lease_seconds: float
    ) -> list[ClaimedMessage]:
        now = utcnow()
        changes = transitions.claim(
            lease_owner=lease_token, lease_expires_at=now + timedelta(seconds=lease_seconds), now=now
        )
        claimed: list[ClaimedMessage] = []
        for endpoint, limit in sorted(wants.items()):
            if limit <= 0:
                continue
            candidates = [
                row
                for row in self.messages.values()  # in seq order, as added
                if row.endpoint == endpoint
                and row.state == transitions.CLAIMABLE_STATE.value
                and row.next_attempt_at <= now
                and head_seq_of(self._queue(row)) == row.seq
            ][:limit]
            for row in candidates:
                apply_changes(row, changes)
                claimed.append(ClaimedMessage.from_row(row, lease_token))
        claimed.sort(key=lambda message: message.seq)
        return claimed

    async def heartbeat(self, leases: Mapping[str, Sequence[int]], lease_seconds: float) -> set[int]:
        changes = transitions.extend_lease(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        held: set[int] = set()
        for token, seqs in leases.items():
            for seq in seqs:
                row = self._held(seq, token)
                if row is not None:
                    apply_changes(row, changes)
                    held.add(seq)
        return held

    async def release(self, leases: Iterable[tuple[int, str]], *, not_before: datetime | None = None) -> int:
        changes = transitions.release(not_before=not_before, now=utcnow())
        released = 0
        for seq, token in leases:
            row = self._held(seq, token)
            if row is not None:
                apply_changes(row, changes)
                released += 1
        return released

    async def complete(self, completions: Sequence[Completion], worker_id: str) -> set[int]:
        now = utcnow()
        done: set[int] = set()
        for completion in completions:
            row = self._held(completion.seq, completion.lease_token)
            if row is None:
                continue
            self.attempts.append(completion.attempt(worker_id))
            apply_changes(
                row,
                transitions.finish(
                    completion.outcome,
                    now=now,
                    next_attempt_at=completion.next_attempt_at,
                    error=completion.error,
                    error_class=completion.error_class,
                ),
            )
            done.add(completion.seq)
        return done

    async def held(self, leases: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
        return {(seq, token) for seq, token in leases if self._held(seq, token) is not None}

    async def rescue_expired(self, rescuer: Rescuer) -> list[int]:
        now = utcnow()
        return self._rescue(
            lambda row: row.lease_expires_at is not None and row.lease_expires_at < now,
            rescuer,
            now=now,
            cause=LeaseLoss.EXPIRED,
        )

    async def rescue_dead_workers(self, rescuer: Rescuer, *, dead_after_seconds: float) -> list[int]:
        now = utcnow()
        cutoff = now - timedelta(seconds=dead_after_seconds)
        dead = {
            worker_id
            for worker_id, worker in self.workers.items()
            if worker.stopped_at is not None or worker.last_heartbeat_at < cutoff
        }
        rescued = self._rescue(
            lambda row: (row.lease_owner or "").partition(TOKEN_SEPARATOR)[0] in dead,
            rescuer,
            now=now,
            cause=LeaseLoss.WORKER_DEAD,
        )
        for worker in self.workers.values():
            if worker.stopped_at is None and worker.last_heartbeat_at < cutoff:
                worker.stopped_at = now
        return rescued

    def _rescue(
        self,
        lost: Callable[[OutboxMessage], bool],
        rescuer: Rescuer,
        *,
        now: datetime,
        cause: LeaseLoss,
    ) -> list[int]:
        """Return the in-flight rows ``lost`` selects to the queue (or dead-letter them), each
        with a ``lease_lost`` attempt."""
        leased = transitions.LEASED_STATE.value
        rows = sorted(
            (row for row in self.messages.values() if row.state == leased and lost(row)),
            key=lambda row: row.seq,
        )[: rescuer.limit]
        for row in rows:
            error = transitions.lease_lost_error(row.lease_owner, row.attempts, cause)
            attempt = transitions.lease_lost_attempt(row, rescuer_id=rescuer.id, now=now, cause=cause)
            apply_changes(row, transitions.rescue(dead=rescuer.out_of_attempts(row), error=error, now=now))
            self.attempts.append(attempt)
        return [row.seq for row in rows]

    async def heartbeat_worker(self, worker: WorkerRegistration) -> None:
        now = utcnow()
        row = self.workers.setdefault(
            worker.id, DeliveryWorker(id=worker.id, host=worker.host, pid=worker.pid, started_at=now)
        )
        row.last_heartbeat_at, row.stopped_at = now, None

    async def deregister_worker(self, worker_id: str) -> None:
        row = self.workers.get(worker_id)
        if row is not None:
            row.stopped_at = utcnow()

    async def make_due(self, endpoint: str, *, since: datetime, limit: int | None = None) -> int:
        now = utcnow()
        held = sorted(
            (
                row
                for row in self.messages.values()
                if transitions.held_back(row, endpoint=endpoint, since=since, now=now)
            ),
            key=lambda row: (row.next_attempt_at, row.seq),
        )[:limit]
        for row in held:
            apply_changes(row, transitions.make_due(now=now))
        if held:
            self._notify()
        return len(held)

    async def publish_health(
        self, endpoint: str, state: str, consecutive_failures: int, *, success: bool, error: str | None
    ) -> None:
        now = utcnow()
        row = self.health.setdefault(endpoint, EndpointHealth(endpoint=endpoint))
        row.state, row.consecutive_failures, row.updated_at = state, consecutive_failures, now
        if state == "open":
            row.opened_at = now
        if success:
            row.last_success_at = now
        elif error is not None:
            row.last_failure_at, row.last_error = now, error

    @asynccontextmanager
    async def listen(self, wake: Callable[[], None]) -> AsyncIterator[None]:
        self._listeners.append(wake)
        try:
            yield
        finally:
            self._listeners.remove(wake)
