"""Dead-letter operations against a real database, with the real worker where it matters."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from hub.db.base import utcnow
from hub.db.models import AuditEntry, MessageState, OutboxMessage, PayloadRevision
from hub.db.session import Database
from hub.delivery import Worker
from hub.delivery.sql_store import SqlOutboxStore
from hub.delivery.store import Completion
from hub.dlq import service
from hub.dlq.models import BulkAction, BulkState, DlqFilter, ViewState
from hub.dlq.runner import BulkJobRunner
from hub.outbox.transitions import AttemptOutcome
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.sink import WebhookSink
from schemas.errors import ConflictError, InvalidInputError, NotFoundError
from tests.delivery.helpers import attempts, make_settings, message, put, states, until


def kill(db: Database, *seqs: int, error_class: str = "BusinessRejectionError") -> None:
    """Dead-letter ``seqs`` the way the worker does (claim, failed attempt, guarded completion)."""
    store = SqlOutboxStore(db)
    token = f"t#{seqs[0]}"
    endpoints = {message(db, seq).endpoint for seq in seqs}
    everything = store.claim_sync(dict.fromkeys(endpoints, 1000), token, 30)
    claimed = {m.seq: m for m in everything if m.seq in seqs}
    assert set(claimed) == set(seqs), "some messages are not claimable"
    now = utcnow()
    store.complete_sync(
        [
            Completion(
                seq=seq,
                lease_token=token,
                attempt_no=claimed[seq].attempt_no,
                outcome=AttemptOutcome.DEAD,
                started_at=now,
                finished_at=now,
                error="HTTP 422 rejected",
                error_class=error_class,
                status_code=422,
            )
            for seq in seqs
        ],
        "test-worker",
    )
    store.release_sync([(m.seq, token) for m in everything if m.seq not in seqs])


def audit(db: Database) -> list[AuditEntry]:
    with db.sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_list_filters_and_blocked_view(db: Database) -> None:
    a = put(db, "portal", "D1")
    a_next = put(db, "portal", "D1")
    b = put(db, "other", "D2")
    put(db, "portal", "D3")
    kill(db, a)
    kill(db, b, error_class="SoapFaultError")

    dead = service.list_messages(db, DlqFilter())
    assert [m.seq for m in dead] == [a, b]
    assert [m.seq for m in service.list_messages(db, DlqFilter(endpoint="other"))] == [b]
    assert [m.seq for m in service.list_messages(db, DlqFilter(error_class="SoapFaultError"))] == [b]
    assert [m.seq for m in service.list_messages(db, DlqFilter(dossier_code="D1"))] == [a]
    future = utcnow() + timedelta(hours=1)
    assert service.list_messages(db, DlqFilter(since=future)) == []
    assert len(service.list_messages(db, DlqFilter(until=future))) == 2
    [blocked] = service.list_messages(db, DlqFilter(state=ViewState.BLOCKED))
    assert blocked.seq == a_next
    assert blocked.state is ViewState.BLOCKED
    assert blocked.blocked_by == a
    assert service.count_messages(db, DlqFilter(state=None)) == 4


def test_naive_time_filters_are_refused() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="time zone"):
        DlqFilter(since=datetime(2026, 1, 1))  # a naive datetime is the point of the test


def test_show_has_attempts_and_revisions(db: Database) -> None:
    seq = put(db, "portal", "D1", {"v": 1})
    kill(db, seq)
    service.edit_message(db, seq, {"v": 2}, actor="tech", reason="fix code", retry=False)
    detail = service.get_message(db, seq)
    assert detail.payload == {"v": 2}
    assert [(a.outcome, a.status_code) for a in detail.attempt_log] == [("dead", 422)]
    [revision] = detail.revisions
    assert revision.payload == {"v": 1}
    assert revision.replaced_by == "tech"
    assert revision.reason == "fix code"
    with pytest.raises(NotFoundError):
        service.get_message(db, 999_999)


def test_discard_needs_a_reason_and_releases_the_dossier(db: Database) -> None:
    head = put(db, "portal", "D1")
    held = put(db, "portal", "D1")
    kill(db, head)
    store = SqlOutboxStore(db)
    assert store.claim_sync({"portal": 10}, "w#1", 30) == []  # held behind the dead head

    with pytest.raises(InvalidInputError):
        service.discard_message(db, head, actor="tech", reason="   ")
    assert message(db, head).state == MessageState.DEAD  # nothing half-done

    service.discard_message(db, head, actor="tech", reason="duplicate of dossier D0")
    row = message(db, head)
    assert row.state == MessageState.DISCARDED
    assert row.note == "duplicate of dossier D0"
    assert [m.seq for m in store.claim_sync({"portal": 10}, "w#2", 30)] == [held]
    [entry] = audit(db)
    assert (entry.actor, entry.action, entry.target) == ("tech", "dlq.discard", f"outbox:{head}")
    assert entry.details["reason"] == "duplicate of dossier D0"


def test_invalid_state_changes_are_refused(db: Database) -> None:
    seq = put(db, "portal", "D1")
    with pytest.raises(ConflictError):
        service.retry_message(db, seq, actor="tech")  # pending: nothing to retry
    SqlOutboxStore(db).claim_sync({"portal": 1}, "w#1", 30)
    with pytest.raises(ConflictError):
        service.discard_message(db, seq, actor="tech", reason="x")  # in flight
    with pytest.raises(InvalidInputError):
        service.edit_message(db, seq, ["not", "an", "object"], actor="tech")  # type: ignore[arg-type]
    assert audit(db) == []


async def test_manual_retry_and_edit_are_recorded(db: Database, database_url: str) -> None:
    sink = WebhookSink()
    await sink.start_async()
    try:
        sink.faults.replace([Fault(kind=FaultKind.STATUS, status=422, times=None)])
        settings = make_settings(database_url, {"portal": sink.url})
        seq = put(db, "portal", "D1", {"so_ho_so": "H42.01-x"})
        stop = asyncio.Event()
        task = asyncio.create_task(Worker(settings, db, worker_id="w").run(stop))
        await until(lambda: message(db, seq).state == MessageState.DEAD)

        # A manual retry of the unchanged payload is attempted again (not deduplicated away).
        await asyncio.to_thread(service.retry_message, db, seq, actor="tech", reason="portal fixed?")
        await until(lambda: len(attempts(db, seq)) == 2)
        await until(lambda: message(db, seq).state == MessageState.DEAD)

        sink.faults.clear()
        await asyncio.to_thread(
            service.edit_message, db, seq, {"so_ho_so": "H42.01-y"}, actor="admin", reason="typo in code"
        )
        await until(lambda: message(db, seq).state == MessageState.DELIVERED)
        stop.set()
        await task
    finally:
        await sink.stop_async()

    log = attempts(db, seq)
    assert [(a.outcome, a.manual) for a in log] == [("dead", False), ("dead", True), ("delivered", True)]
    assert sink.arrivals()[-1].body == b'{"so_ho_so":"H42.01-y"}'
    with db.sessions() as session:
        [revision] = session.scalars(select(PayloadRevision).where(PayloadRevision.message_seq == seq))
    assert revision.payload == {"so_ho_so": "H42.01-x"}
    assert [(e.actor, e.action) for e in audit(db)] == [("tech", "dlq.retry"), ("admin", "dlq.edit")]
    assert message(db, seq).manual_retry is False


def test_bulk_retry_with_progress(db: Database) -> None:
    seqs = [put(db, "portal", f"D{i}") for i in range(450)]
    other = put(db, "other", "X")
    kill(db, *seqs, other)
    job = service.create_bulk_job(db, BulkAction.RETRY, DlqFilter(endpoint="portal"), actor="tech")
    assert job.state is BulkState.QUEUED
    assert job.total == 450
    assert job.processed == 0

    done = service.run_bulk_job(db, job.id)
    assert done.state is BulkState.DONE
    assert done.processed == 450
    assert done.finished_at is not None
    assert states(db) == {"pending": 450, "dead": 1}
    row = message(db, seqs[0])
    assert row.manual_retry is True
    assert row.attempts == 0
    actions = [e.action for e in audit(db)]
    assert actions.count("dlq.retry") == 450
    assert actions[0] == "dlq.bulk_retry"
    assert actions[-1] == "dlq.bulk_done"
    assert service.run_bulk_job(db, job.id).state is BulkState.DONE  # runs once


def test_bulk_discard_needs_a_reason_and_can_be_cancelled(db: Database) -> None:
    seqs = [put(db, "portal", f"D{i}") for i in range(10)]
    kill(db, *seqs)
    with pytest.raises(InvalidInputError):
        service.create_bulk_job(db, BulkAction.DISCARD, DlqFilter(), actor="tech")
    job = service.create_bulk_job(db, BulkAction.DISCARD, DlqFilter(), actor="tech", reason="portal retired")
    cancelled = service.cancel_bulk_job(db, job.id, actor="admin")
    assert cancelled.state is BulkState.CANCELLED
    assert service.run_bulk_job(db, job.id).processed == 0
    assert states(db) == {"dead": 10}
    with pytest.raises(ConflictError):
        service.cancel_bulk_job(db, job.id, actor="admin")

    job2 = service.create_bulk_job(db, BulkAction.DISCARD, DlqFilter(), actor="tech", reason="portal retired")
    assert service.run_next_bulk_job(db) is True
    assert service.get_bulk_job(db, job2.id).processed == 10
    assert states(db) == {"discarded": 10}
    assert service.run_next_bulk_job(db) is False
    assert [j.id for j in service.list_bulk_jobs(db)] == [job2.id, job.id]


# SQLite has one writer at a time: there a cancel waits for the running chunk to finish.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_bulk_job_stops_when_cancelled_midway(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    seqs = [put(db, "portal", f"D{i}") for i in range(30)]
    kill(db, *seqs)
    monkeypatch.setattr(service, "BULK_CHUNK", 10)
    job = service.create_bulk_job(db, BulkAction.RETRY, DlqFilter(), actor="tech")
    original = service._apply_retry
    calls = {"n": 0}

    def cancelling_retry(row: OutboxMessage, now: object) -> str:
        calls["n"] += 1
        if calls["n"] == 10:  # end of the first chunk: an operator cancels
            with db.engine.connect() as conn:  # separate connection, committed at once
                from hub.db.models import BulkJob

                conn.execute(update(BulkJob).where(BulkJob.id == job.id).values(state="cancelled"))
                conn.commit()
        return original(row, now)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "_apply_retry", cancelling_retry)
    result = service.run_bulk_job(db, job.id)
    assert result.state is BulkState.CANCELLED
    assert result.processed == 10
    assert states(db) == {"pending": 10, "dead": 20}


def test_a_job_orphaned_by_a_dead_runner_can_be_resumed(db: Database) -> None:
    seqs = [put(db, "portal", f"D{i}") for i in range(5)]
    kill(db, *seqs)
    job = service.create_bulk_job(db, BulkAction.RETRY, DlqFilter(), actor="tech")
    with pytest.raises(ConflictError):
        service.resume_bulk_job(db, job.id, actor="ops")  # queued, not running: nothing to resume
    assert service._take_job(db, job.id) == job.id  # a runner took it ... and was SIGKILLed
    resumed = service.resume_bulk_job(db, job.id, actor="ops")
    assert resumed.state is BulkState.DONE
    assert resumed.processed == 5
    assert states(db) == {"pending": 5}
    assert "dlq.bulk_resume" in [e.action for e in audit(db)]


def test_a_stopping_runner_puts_the_job_back_in_the_queue(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    seqs = [put(db, "portal", f"D{i}") for i in range(25)]
    kill(db, *seqs)
    monkeypatch.setattr(service, "BULK_CHUNK", 10)
    job = service.create_bulk_job(db, BulkAction.RETRY, DlqFilter(), actor="tech")
    chunks = iter([False, True])  # one chunk, then the worker is asked to stop
    assert service.run_next_bulk_job(db, should_stop=lambda: next(chunks)) is True
    paused = service.get_bulk_job(db, job.id)
    assert paused.state is BulkState.QUEUED
    assert paused.processed == 10
    assert service.run_next_bulk_job(db) is True  # another worker picks it up and finishes
    done = service.get_bulk_job(db, job.id)
    assert done.state is BulkState.DONE
    assert done.processed == 25
    assert states(db) == {"pending": 25}


async def test_the_worker_runs_queued_bulk_jobs(db: Database, database_url: str) -> None:
    sink = WebhookSink()
    await sink.start_async()
    try:
        seqs = [put(db, "portal", f"D{i % 3}", {"n": i}) for i in range(12)]
        kill(db, seqs[0], seqs[1], seqs[2])  # the heads of three dossiers; the rest is blocked
        job = service.create_bulk_job(db, BulkAction.RETRY, DlqFilter(endpoint="portal"), actor="tech")
        settings = make_settings(database_url, {"portal": sink.url})
        stop = asyncio.Event()
        task = asyncio.create_task(Worker(settings, db, worker_id="w").run(stop))
        await until(lambda: states(db) == {"delivered": 12}, within=30)
        stop.set()
        await task
    finally:
        await sink.stop_async()
    assert service.get_bulk_job(db, job.id).state is BulkState.DONE
    assert len(sink.arrivals()) == 12


async def test_the_bulk_job_runner_runs_queued_jobs_until_stopped(db: Database) -> None:
    seqs = [put(db, "portal", f"D{i}") for i in range(5)]
    kill(db, *seqs)
    job = service.create_bulk_job(db, BulkAction.RETRY, DlqFilter(), actor="tech")
    progressed = asyncio.Event()
    stop = asyncio.Event()
    task = asyncio.create_task(BulkJobRunner(db, on_progress=progressed.set).run(stop))
    await asyncio.wait_for(progressed.wait(), timeout=30)
    stop.set()
    await task
    assert service.get_bulk_job(db, job.id).state is BulkState.DONE
    assert states(db) == {"pending": 5}
