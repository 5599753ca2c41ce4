"""Retention: finished work is deleted after ``retention.*_days`` (docs/deployment.md, "Retention").

What goes: delivered messages older than ``retention.delivered_days`` (by ``delivered_at``),
with their delivery attempts and payload revisions, and DLQ bulk jobs finished (done, failed,
cancelled) more than ``retention.bulk_jobs_days`` ago, and the rows of worker processes that
stopped (or were found dead) more than ``retention.workers_days`` ago (docs/delivery.md §12.3:
every run of ``hub worker`` registers one). What stays, always: pending, in-flight
and dead messages (dead letters wait for an operator), discarded ones (the operator's reason
is the record), and the audit log (never touched here; append-only, docs/security.md §9). ``0``
days keeps everything of that kind.

Pruning never blocks delivery (docs/delivery.md §6, §11.7): a delivered message holds no
queue (only pending, in-flight and dead ones do, :data:`hub.db.models.ACTIVE_STATES`), so
deleting it never changes a queue's head; rows go in small batches (``retention.batch_size``
messages per transaction, attempts and revisions first, then the messages), rows another
transaction holds are skipped (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's writers
take turns), and the pruner pauses ``retention.batch_pause_seconds`` between batches.

Every delivery worker runs :class:`RetentionRunner` beside its DLQ bulk-job runner, once at
start and then every ``retention.interval_seconds``; several workers pruning at once share the
work. ``hub prune [--dry-run]`` runs the same pass once (or only counts). A run that deleted
something is written to the audit log (actor ``system:retention``); every run logs one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hub.audit.log import record
from hub.config import RetentionSettings
from hub.db.base import utcnow
from hub.db.models import (
    BulkJob,
    DeliveryAttempt,
    DeliveryWorker,
    MessageState,
    OutboxMessage,
    PayloadRevision,
)
from hub.db.session import Database

log = logging.getLogger("hub.retention")

__all__ = ["FINISHED_JOB_STATES", "PruneCounts", "RetentionRunner", "count_prunable", "prune"]

#: Bulk-job states that are final (hub/dlq/models.py ``BulkState``).
FINISHED_JOB_STATES = ("done", "failed", "cancelled")
#: Actor of the audit entries the pruner writes.
ACTOR = "system:retention"


@dataclass(frozen=True, slots=True)
class PruneCounts:
    """Rows deleted (or, for a dry run, that would be)."""

    messages: int = 0
    attempts: int = 0
    payload_revisions: int = 0
    bulk_jobs: int = 0
    workers: int = 0

    def __add__(self, other: PruneCounts) -> PruneCounts:
        return PruneCounts(
            self.messages + other.messages,
            self.attempts + other.attempts,
            self.payload_revisions + other.payload_revisions,
            self.bulk_jobs + other.bulk_jobs,
            self.workers + other.workers,
        )

    @property
    def total(self) -> int:
        return self.messages + self.attempts + self.payload_revisions + self.bulk_jobs + self.workers

    def describe(self) -> str:
        return (
            f"{self.messages} delivered message(s), {self.attempts} attempt(s), "
            f"{self.payload_revisions} payload revision(s), {self.bulk_jobs} finished bulk job(s), "
            f"{self.workers} stopped worker(s)"
        )


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Rows finished before these moments go; ``None``: that kind is kept."""

    delivered_before: datetime | None
    bulk_jobs_before: datetime | None
    workers_before: datetime | None

    @classmethod
    def of(cls, retention: RetentionSettings, now: datetime) -> Cutoffs:
        def before(days: int) -> datetime | None:
            return now - timedelta(days=days) if days > 0 else None

        return cls(
            before(retention.delivered_days), before(retention.bulk_jobs_days), before(retention.workers_days)
        )


def _old_delivered(before: datetime) -> Any:
    return select(OutboxMessage.seq).where(
        OutboxMessage.state == MessageState.DELIVERED.value, OutboxMessage.delivered_at < before
    )


def _old_jobs(before: datetime) -> Any:
    return select(BulkJob.id).where(BulkJob.state.in_(FINISHED_JOB_STATES), BulkJob.finished_at < before)


def _old_workers(before: datetime) -> Any:
    return select(DeliveryWorker.id).where(DeliveryWorker.stopped_at < before)


def count_prunable(db: Database, retention: RetentionSettings, *, now: datetime | None = None) -> PruneCounts:
    """What :func:`prune` would delete now (``hub prune --dry-run``)."""
    cutoffs = Cutoffs.of(retention, now or utcnow())
    messages = attempts = revisions = jobs = workers = 0
    with db.sessions() as session:
        if cutoffs.delivered_before is not None:
            doomed = _old_delivered(cutoffs.delivered_before)
            messages = _count_rows(session, doomed)
            attempts = _count(session, select(func.count()).where(DeliveryAttempt.message_seq.in_(doomed)))
            revisions = _count(session, select(func.count()).where(PayloadRevision.message_seq.in_(doomed)))
        if cutoffs.bulk_jobs_before is not None:
            jobs = _count_rows(session, _old_jobs(cutoffs.bulk_jobs_before))
        if cutoffs.workers_before is not None:
            workers = _count_rows(session, _old_workers(cutoffs.workers_before))
    return PruneCounts(messages, attempts, revisions, jobs, workers)


def _count(session: Session, statement: Any) -> int:
    return int(session.scalar(statement) or 0)


def _count_rows(session: Session, rows: Any) -> int:
    """How many rows the select ``rows`` returns."""
    return _count(session, select(func.count()).select_from(rows.subquery()))


def _lock_batch(session: Session, rows: Any, key: Any, size: int) -> list[Any]:
    """The first ``size`` keys of the select ``rows`` by ``key``, their rows locked; rows another
    pruner holds are skipped, not waited for."""
    return list(session.scalars(rows.order_by(key).limit(size).with_for_update(skip_locked=True)))


def _prune_messages_batch(db: Database, before: datetime, size: int) -> PruneCounts:
    """One transaction: up to ``size`` old delivered messages, their attempts and revisions
    (deleted first: no reliance on ``ON DELETE CASCADE`` being enforced)."""
    with db.transaction() as session:
        seqs = _lock_batch(session, _old_delivered(before), OutboxMessage.seq, size)
        if not seqs:
            return PruneCounts()
        conn = session.connection()
        attempts = conn.execute(delete(DeliveryAttempt).where(DeliveryAttempt.message_seq.in_(seqs)))
        revisions = conn.execute(delete(PayloadRevision).where(PayloadRevision.message_seq.in_(seqs)))
        messages = conn.execute(
            delete(OutboxMessage).where(
                OutboxMessage.seq.in_(seqs), OutboxMessage.state == MessageState.DELIVERED.value
            )
        )
        return PruneCounts(messages.rowcount, attempts.rowcount, revisions.rowcount)


def _prune_jobs_batch(db: Database, before: datetime, size: int) -> PruneCounts:
    """One transaction: up to ``size`` bulk jobs finished before ``before``."""
    with db.transaction() as session:
        ids = _lock_batch(session, _old_jobs(before), BulkJob.id, size)
        if not ids:
            return PruneCounts()
        result = session.connection().execute(delete(BulkJob).where(BulkJob.id.in_(ids)))
        return PruneCounts(bulk_jobs=result.rowcount)


def _prune_workers_batch(db: Database, before: datetime, size: int) -> PruneCounts:
    """One transaction: up to ``size`` rows of workers stopped before ``before`` (a running
    worker's row has no ``stopped_at`` and is never touched; a stopped worker holds no lease)."""
    with db.transaction() as session:
        ids = _lock_batch(session, _old_workers(before), DeliveryWorker.id, size)
        if not ids:
            return PruneCounts()
        result = session.connection().execute(
            delete(DeliveryWorker).where(DeliveryWorker.id.in_(ids), DeliveryWorker.stopped_at < before)
        )
        return PruneCounts(workers=result.rowcount)


def prune(
    db: Database,
    retention: RetentionSettings,
    *,
    now: datetime | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> PruneCounts:
    """Delete what has outlived its retention, batch by batch, until nothing is left or
    ``should_stop()``; audit and log the run. Returns what was deleted."""
    cutoffs = Cutoffs.of(retention, now or utcnow())
    started = time.monotonic()
    deleted = PruneCounts()
    batches: list[tuple[datetime, Callable[[Database, datetime, int], PruneCounts]]] = []
    if cutoffs.delivered_before is not None:
        batches.append((cutoffs.delivered_before, _prune_messages_batch))
    if cutoffs.bulk_jobs_before is not None:
        batches.append((cutoffs.bulk_jobs_before, _prune_jobs_batch))
    if cutoffs.workers_before is not None:
        batches.append((cutoffs.workers_before, _prune_workers_batch))
    for before, batch in batches:
        while not should_stop():
            counts = batch(db, before, retention.batch_size)
            deleted += counts
            if counts.total == 0:
                break
            if retention.batch_pause_seconds:
                sleep(retention.batch_pause_seconds)
    if deleted.total:
        with db.transaction() as session:
            record(
                session,
                actor=ACTOR,
                action="retention.prune",
                target="outbox",
                details={
                    **asdict(deleted),
                    "delivered_before": _iso(cutoffs.delivered_before),
                    "bulk_jobs_before": _iso(cutoffs.bulk_jobs_before),
                    "workers_before": _iso(cutoffs.workers_before),
                },
            )
    log.info(
        "retention: deleted %s in %.1fs (delivered before %s, bulk jobs finished before %s)%s",
        deleted.describe(),
        time.monotonic() - started,
        _iso(cutoffs.delivered_before) or "never",
        _iso(cutoffs.bulk_jobs_before) or "never",
        " (stopped early)" if should_stop() else "",
    )
    return deleted


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class RetentionRunner:
    """Prunes in the background of a delivery worker (a sibling of the DLQ bulk-job runner)."""

    def __init__(self, db: Database, retention: RetentionSettings) -> None:
        self.db = db
        self.retention = retention

    async def run(self, stop: asyncio.Event) -> None:
        """Prune at start and then every ``interval_seconds`` until ``stop`` is set; a stop
        request ends the current run after its current batch."""
        if not (self.retention.delivered_days or self.retention.bulk_jobs_days):
            return
        while not stop.is_set():
            try:
                await asyncio.to_thread(prune, self.db, self.retention, should_stop=stop.is_set)
            except Exception:
                log.exception("retention run failed; trying again after the interval")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.retention.interval_seconds)
