"""Retention (hub/outbox/retention.py): old delivered messages and finished bulk jobs go, in
batches; recent, undelivered, dead and discarded messages stay. On both backends."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from hub import runtime
from hub.cli import build_cli
from hub.config import RetentionSettings, Settings
from hub.db.base import utcnow
from hub.db.models import (
    AuditEntry,
    BulkJob,
    DeliveryAttempt,
    DeliveryWorker,
    MessageState,
    OutboxMessage,
    PayloadRevision,
)
from hub.db.session import Database
from hub.delivery.sql_store import SqlOutboxStore
from hub.outbox.retention import count_prunable, prune

from .helpers import column, put, wait_until

DAY = timedelta(days=1)


def _finish(db: Database, seq: int, state: MessageState, at: datetime, *, attempts: int = 1) -> None:
    """Make message ``seq`` ``state`` at ``at``, with ``attempts`` attempts and one payload revision."""
    with db.transaction() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.seq == seq)
            .values(
                state=state.value,
                attempts=attempts,
                updated_at=at,
                delivered_at=at if state is MessageState.DELIVERED else None,
                dead_at=at if state is MessageState.DEAD else None,
            )
        )
        for number in range(1, attempts + 1):
            session.add(
                DeliveryAttempt(
                    message_seq=seq,
                    attempt_no=number,
                    worker_id="w",
                    started_at=at,
                    finished_at=at,
                    outcome="delivered"
                    if state is MessageState.DELIVERED and number == attempts
                    else "retry",
                )
            )
        session.add(PayloadRevision(message_seq=seq, revision=1, payload={}, replaced_by="t", replaced_at=at))


def _job(db: Database, state: str, finished: datetime | None) -> int:
    with db.transaction() as session:
        job = BulkJob(action="retry", filter={}, state=state, created_by="t", finished_at=finished)
        session.add(job)
        session.flush()
        return job.id


class Fixture:
    """Old and recent rows of every kind; which ones must go and which stay."""

    def __init__(self, db: Database) -> None:
        now = utcnow()
        old, recent = now - 40 * DAY, now - 2 * DAY
        self.old_delivered = []
        for index in range(5):
            seq = put(db, "portal", f"D{index}")
            _finish(db, seq, MessageState.DELIVERED, old, attempts=2)
            self.old_delivered.append(seq)
        # Queue D0 goes on: a pending message behind the old delivered ones.
        self.pending_behind = put(db, "portal", "D0")
        self.recent_delivered = put(db, "portal", "D1")
        _finish(db, self.recent_delivered, MessageState.DELIVERED, recent)
        self.old_dead = put(db, "portal", "D2")
        _finish(db, self.old_dead, MessageState.DEAD, old, attempts=3)
        self.old_discarded = put(db, "portal", "D3")
        _finish(db, self.old_discarded, MessageState.DISCARDED, old)
        self.old_pending = put(db, "portal", "D4")
        with db.transaction() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.seq == self.old_pending)
                .values(created_at=old, updated_at=old, next_attempt_at=old)
            )
        self.old_job = _job(db, "done", old)
        self.old_failed_job = _job(db, "failed", old)
        self.recent_job = _job(db, "done", recent)
        self.queued_job = _job(db, "queued", None)
        self.kept = {
            self.pending_behind,
            self.recent_delivered,
            self.old_dead,
            self.old_discarded,
            self.old_pending,
        }


def _seqs(db: Database) -> set[int]:
    return set(column(db, OutboxMessage.seq))


def _attempt_seqs(db: Database) -> set[int]:
    return set(column(db, DeliveryAttempt.message_seq))


def _jobs(db: Database) -> set[int]:
    return set(column(db, BulkJob.id))


def _worker(db: Database, name: str, stopped: datetime | None, beat: datetime) -> str:
    with db.transaction() as session:
        session.add(
            DeliveryWorker(
                id=name, host="h", pid=1, started_at=beat, last_heartbeat_at=beat, stopped_at=stopped
            )
        )
    return name


def _workers(db: Database) -> set[str]:
    with db.sessions() as session:
        return set(session.scalars(select(DeliveryWorker.id)))


def _audits(db: Database) -> list[AuditEntry]:
    with db.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == "retention.prune")))


def test_old_delivered_rows_and_their_attempts_go_the_rest_stays(db: Database) -> None:
    rows = Fixture(db)
    retention = RetentionSettings(delivered_days=30, bulk_jobs_days=30, batch_size=2, batch_pause_seconds=0.5)

    expected = count_prunable(db, retention)
    assert (expected.messages, expected.attempts, expected.payload_revisions, expected.bulk_jobs) == (
        5,
        10,
        5,
        2,
    )

    pauses: list[float] = []
    deleted = prune(db, retention, sleep=pauses.append)

    assert deleted == expected
    assert _seqs(db) == rows.kept
    assert _attempt_seqs(db) == {rows.recent_delivered, rows.old_dead, rows.old_discarded}
    assert _jobs(db) == {rows.recent_job, rows.queued_job}
    # Small transactions with a pause between them: 5 messages in batches of 2, 2 jobs in one.
    assert pauses == [0.5] * 4
    # One audit entry for the run, with its counts.
    [entry] = _audits(db)
    assert entry.actor == "system:retention"
    assert (entry.details["messages"], entry.details["attempts"]) == (5, 10)
    # A second run finds nothing and writes no audit entry.
    assert prune(db, retention).total == 0
    assert len(_audits(db)) == 1


def test_rows_of_long_stopped_workers_go_running_and_recent_ones_stay(db: Database) -> None:
    now = utcnow()
    _worker(db, "old-stopped", now - 10 * DAY, now - 10 * DAY)
    _worker(db, "recent-stopped", now - 2 * DAY, now - 2 * DAY)
    # A running worker's row has no stopped_at, however old its start: it is never pruned.
    _worker(db, "running", None, now - 10 * DAY)
    retention = RetentionSettings(workers_days=7, batch_pause_seconds=0)
    assert count_prunable(db, retention).workers == 1
    assert prune(db, retention).workers == 1
    assert _workers(db) == {"recent-stopped", "running"}
    [entry] = _audits(db)
    assert entry.details["workers"] == 1
    assert prune(db, RetentionSettings(workers_days=0, batch_pause_seconds=0)).workers == 0


def test_zero_days_keeps_everything(db: Database) -> None:
    Fixture(db)
    before = _seqs(db), _jobs(db)
    keep = RetentionSettings(delivered_days=0, bulk_jobs_days=0, workers_days=0)
    assert count_prunable(db, keep).total == 0
    assert prune(db, keep).total == 0
    assert (_seqs(db), _jobs(db)) == before
    assert _audits(db) == []


def test_a_stop_request_ends_the_run_between_batches(db: Database) -> None:
    rows = Fixture(db)
    retention = RetentionSettings(batch_size=2, batch_pause_seconds=0)
    batches = iter([False, True])
    deleted = prune(db, retention, should_stop=lambda: next(batches, True))
    assert deleted.messages == 2
    assert len(_seqs(db) & set(rows.old_delivered)) == 3


def test_the_worker_prunes_in_the_background(db: Database, database_url: str, tmp_path: Path) -> None:
    rows = Fixture(db)
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        retention=RetentionSettings(batch_size=2, batch_pause_seconds=0, interval_seconds=0.2),
    )
    with runtime.run_in_thread(settings, api=False, worker=True):
        wait_until(lambda: not (_seqs(db) & set(rows.old_delivered)) and rows.old_job not in _jobs(db))
    assert rows.kept <= _seqs(db)
    assert {rows.recent_job, rows.queued_job} <= _jobs(db)


def test_hub_prune_command(db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = Fixture(db)
    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    monkeypatch.delenv("HUB_CONFIG_FILE", raising=False)
    cli = build_cli()

    dry = CliRunner().invoke(cli, ["prune", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert (
        "would delete: 5 delivered message(s), 10 attempt(s), 5 payload revision(s), 2 finished" in dry.output
    )
    assert _seqs(db) >= set(rows.old_delivered)

    keep_jobs = CliRunner().invoke(cli, ["prune", "--bulk-jobs-days", "0"])
    assert keep_jobs.exit_code == 0, keep_jobs.output
    assert (
        "deleted: 5 delivered message(s), 10 attempt(s), 5 payload revision(s), 0 finished"
        in keep_jobs.output
    )
    assert _seqs(db) == rows.kept
    assert rows.old_job in _jobs(db)


def test_pruning_a_delivered_head_leaves_the_queues_as_they_were(db: Database) -> None:
    """A delivered message holds no queue: after pruning, the same messages are claimable."""
    rows = Fixture(db)
    prune(db, RetentionSettings(batch_pause_seconds=0))
    claimed = SqlOutboxStore(db).claim_sync({"portal": 100}, "t#1", 60)
    # D0's next message and the old pending one; D2's later messages would wait behind its dead one.
    assert {message.seq for message in claimed} == {rows.pending_behind, rows.old_pending}
