"""The worker end to end, in-process: real HTTP to a local sink, real database."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from sqlalchemy import select, update

from hub.config import Settings
from hub.db.base import utcnow
from hub.db.models import EndpointHealth, MessageState, OutboxMessage
from hub.db.session import Database
from hub.delivery import Worker
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.sink import WebhookSink

from .helpers import (
    assert_dossier_order,
    attempts,
    make_settings,
    message,
    numbers_by_dossier,
    put,
    put_many,
    states,
    until,
)


@asynccontextmanager
async def running(settings: Settings, db: Database, count: int = 1) -> AsyncIterator[list[Worker]]:
    workers = [Worker(settings, db, worker_id=f"w{i}") for i in range(count)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)) for worker in workers]
    try:
        yield workers
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def _delivered(db: Database, n: int) -> bool:
    return states(db).get(MessageState.DELIVERED, 0) == n


async def test_delivers_with_stable_message_id_and_records_attempts(
    db: Database, database_url: str, sink: WebhookSink
) -> None:
    settings = make_settings(database_url, {"portal": sink.url})
    seqs = put_many(db, "portal", [(f"D{i}", {"n": i, "tên": "Nguyễn Văn A"}) for i in range(30)])
    async with running(settings, db):
        await until(lambda: _delivered(db, 30))
    arrivals = {a.message_id: a for a in sink.arrivals()}
    for seq in seqs:
        row = message(db, seq)
        assert row.message_id in arrivals
        assert json.loads(arrivals[row.message_id].body)["tên"] == "Nguyễn Văn A"
        [attempt] = attempts(db, seq)
        assert attempt.outcome == "delivered"
        assert attempt.status_code == 200
        assert attempt.worker_id == "w0"
        assert attempt.request_summary
        assert row.message_id in attempt.request_summary


async def test_permanent_rejection_is_dead_lettered_at_once(
    db: Database, database_url: str, sink: WebhookSink
) -> None:
    sink.faults.replace([Fault(kind=FaultKind.STATUS, status=422, times=None)])
    settings = make_settings(database_url, {"portal": sink.url})
    seq = put(db, "portal", "D1")
    async with running(settings, db):
        await until(lambda: message(db, seq).state == MessageState.DEAD)
    row = message(db, seq)
    assert row.error_class == "BusinessRejectionError"
    assert "HTTP 422" in (row.last_error or "")
    [attempt] = attempts(db, seq)
    assert attempt.outcome == "dead"
    assert attempt.status_code == 422


async def test_retryable_failures_are_retried_then_delivered(
    db: Database, database_url: str, sink: WebhookSink
) -> None:
    sink.faults.replace([Fault(kind=FaultKind.STATUS, status=503, attempts=2, times=None)])
    settings = make_settings(database_url, {"portal": sink.url})
    seq = put(db, "portal", "D1")
    async with running(settings, db):
        await until(lambda: message(db, seq).state == MessageState.DELIVERED)
    assert [(a.attempt_no, a.outcome, a.status_code) for a in attempts(db, seq)] == [
        (1, "retry", 503),
        (2, "retry", 503),
        (3, "delivered", 200),
    ]
    assert [a.attempt for a in sink.arrivals()] == [3]


async def test_attempts_exhausted_goes_dead(db: Database, database_url: str, sink: WebhookSink) -> None:
    sink.faults.replace([Fault(kind=FaultKind.STATUS, status=500, times=None)])
    settings = make_settings(database_url, {"portal": sink.url}, schedule=[0.01, 0.01])
    seq = put(db, "portal", "D1")
    async with running(settings, db):
        await until(lambda: message(db, seq).state == MessageState.DEAD)
    assert [a.outcome for a in attempts(db, seq)] == ["retry", "retry", "dead"]
    assert "exhausted" in (message(db, seq).last_error or "")


async def test_retry_after_header_sets_the_next_attempt(
    db: Database, database_url: str, sink: WebhookSink
) -> None:
    sink.faults.replace([Fault(kind=FaultKind.STATUS, status=429, retry_after="3600", times=None)])
    settings = make_settings(database_url, {"portal": sink.url})
    settings.endpoints["portal"].retry.retry_after_max_seconds = 120
    seq = put(db, "portal", "D1")
    async with running(settings, db):
        await until(lambda: len(attempts(db, seq)) == 1)
    row = message(db, seq)
    [attempt] = attempts(db, seq)
    assert row.state == MessageState.PENDING
    assert attempt.status_code == 429
    wait = (row.next_attempt_at - attempt.finished_at).total_seconds()
    assert 119 <= wait <= 121  # Retry-After 3600 clamped to the 120 s maximum


async def test_per_dossier_order_with_several_workers(
    db: Database, database_url: str, sink: WebhookSink
) -> None:
    settings = make_settings(database_url, {"portal": sink.url}, worker={"concurrency": 8, "batch_size": 5})
    # Every message fails once: retries must not let later messages of a dossier overtake.
    settings.endpoints["portal"].breaker.failure_threshold = 10_000
    sink.faults.replace([Fault(kind=FaultKind.STATUS, status=503, attempts=1, times=None)])
    items = [(f"D{i % 12}", {"dossier": f"D{i % 12}", "n": i}) for i in range(120)]
    put_many(db, "portal", items)
    async with running(settings, db, count=3):
        await until(lambda: _delivered(db, 120), within=60)
    assert sum(len(v) for v in numbers_by_dossier(sink).values()) == 120
    assert_dossier_order(sink)


async def test_one_dead_endpoint_does_not_slow_the_others(
    db: Database, database_url: str, sink: WebhookSink
) -> None:
    down = WebhookSink()
    await down.start_async()
    down_url = down.url
    await down.stop_async()  # connection refused from now on
    settings = make_settings(
        database_url,
        {"good": sink.url, "bad": down_url},
        schedule=[0.05] * 20,
        endpoint_options={"max_in_flight": 4},
    )
    settings.endpoints["bad"].breaker.failure_threshold = 3
    settings.endpoints["bad"].breaker.open_seconds = 3600
    settings.endpoints["bad"].breaker.probe_interval_seconds = 3600  # no probe during the test
    bad = put_many(db, "bad", [(f"B{i}", {"n": i}) for i in range(20)])
    put_many(db, "good", [(f"G{i}", {"n": i}) for i in range(100)])
    async with running(settings, db) as [worker]:
        await until(lambda: states_for(db, "good") == {"delivered": 100})
        await until(lambda: _health(db, "bad") == "open")
        assert worker.breakers["bad"].state == "open"
    # The open circuit stopped the attempts: at most threshold + in-flight slots were tried.
    tried = sum(len(attempts(db, seq)) for seq in bad)
    assert 3 <= tried <= 3 + 4
    assert all(message(db, seq).state == MessageState.PENDING for seq in bad)
    assert _health(db, "good") is None  # never failed, nothing to publish


def states_for(db: Database, endpoint: str) -> dict[str, int]:
    from sqlalchemy import func

    from hub.db.models import OutboxMessage

    with db.sessions() as session:
        rows = session.execute(
            select(OutboxMessage.state, func.count())
            .where(OutboxMessage.endpoint == endpoint)
            .group_by(OutboxMessage.state)
        ).all()
        return {state: count for state, count in rows}


def _health(db: Database, endpoint: str) -> str | None:
    with db.sessions() as session:
        row = session.get(EndpointHealth, endpoint)
        return row.state if row else None


async def test_breaker_half_open_probe_recovers(db: Database, database_url: str, sink: WebhookSink) -> None:
    sink.faults.replace([Fault(kind=FaultKind.STATUS, status=503, times=None)])
    settings = make_settings(database_url, {"portal": sink.url}, schedule=[0.05] * 50)
    settings.endpoints["portal"].breaker.failure_threshold = 2
    settings.endpoints["portal"].breaker.open_seconds = 0.5
    seqs = put_many(db, "portal", [(f"D{i}", {"n": i}) for i in range(10)])
    async with running(settings, db):
        await until(lambda: _health(db, "portal") == "open")
        sink.faults.clear()
        await until(lambda: _delivered(db, 10))
        await until(lambda: _health(db, "portal") == "closed")
    assert all(message(db, seq).state == MessageState.DELIVERED for seq in seqs)


async def test_endpoint_down_for_a_while_then_back(
    db: Database, database_url: str, sink: WebhookSink
) -> None:
    url = sink.url
    await sink.stop_async()
    settings = make_settings(database_url, {"portal": url}, schedule=[0.1] * 100)
    settings.endpoints["portal"].breaker.open_seconds = 0.3
    seqs = put_many(db, "portal", [(f"D{i % 5}", {"n": i}) for i in range(25)])
    async with running(settings, db):
        await until(lambda: any(attempts(db, s) for s in seqs))
        await asyncio.sleep(0.5)
        await sink.start_async()
        await until(lambda: _delivered(db, 25), within=60)
    delivered_ids = {a.message_id for a in sink.arrivals()}
    assert {message(db, s).message_id for s in seqs} <= delivered_ids
    assert any(a.outcome == "retry" for s in seqs for a in attempts(db, s))


async def _stop_with_work_in_flight(
    db: Database,
    database_url: str,
    sink: WebhookSink,
    *,
    grace: float,
    latency: float,
    count: int,
    in_flight: int,
) -> tuple[Worker, list[int]]:
    """Run one worker on ``count`` slow messages and ask it to stop once ``in_flight`` are in
    flight; returns when it has stopped (after ``grace`` seconds at the most)."""
    sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=latency, times=None)])
    settings = make_settings(database_url, {"portal": sink.url}, worker={"shutdown_grace_seconds": grace})
    seqs = put_many(db, "portal", [(f"D{i}", {"n": i}) for i in range(count)])
    worker = Worker(settings, db, worker_id="w")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await until(lambda: states(db).get(MessageState.IN_FLIGHT, 0) >= in_flight)
    stop.set()
    await task
    return worker, seqs


async def test_graceful_stop_finishes_in_flight_work(
    db: Database, database_url: str, sink: WebhookSink
) -> None:
    await _stop_with_work_in_flight(db, database_url, sink, grace=10, latency=0.3, count=10, in_flight=1)
    assert states(db) == {"delivered": 10}


async def test_stop_after_grace_releases_without_counting(
    db: Database, database_url: str, sink: WebhookSink
) -> None:
    worker, seqs = await _stop_with_work_in_flight(
        db, database_url, sink, grace=0.2, latency=30, count=5, in_flight=5
    )
    for seq in seqs:
        row = message(db, seq)
        assert row.state == MessageState.PENDING
        assert row.attempts == 0
        assert row.lease_owner is None
    assert worker.stats.released == 5


@pytest.mark.parametrize(
    "database_url", ["postgresql"], indirect=True
)  # backend termination: PostgreSQL only
async def test_survives_database_connections_being_killed(
    db: Database, database_url: str, sink: WebhookSink
) -> None:
    """PostgreSQL backends killed mid-run (the hardbyte ``pg_backend_kill`` cell): no loss."""
    from sqlalchemy import text

    sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=0.02, times=None)])
    settings = make_settings(database_url, {"portal": sink.url}, worker={"heartbeat_seconds": 0.2})
    seqs = put_many(db, "portal", [(f"D{i % 20}", {"n": i}) for i in range(300)])
    async with running(settings, db):
        await until(lambda: len(sink.arrivals()) >= 50)
        for _ in range(3):
            with db.engine.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            await asyncio.sleep(0.3)
        await until(lambda: _delivered(db, 300), within=60)
    assert {message(db, s).message_id for s in seqs} <= {a.message_id for a in sink.arrivals()}


async def test_in_process_enqueue_wakes_the_worker_without_polling(
    db: Database, database_url: str, sink: WebhookSink
) -> None:
    """``hub serve`` on SQLite: the API's commit wakes the embedded worker (no NOTIFY there)."""
    settings = make_settings(database_url, {"portal": sink.url}, worker={"poll_interval_seconds": 3600})
    async with running(settings, db):
        await asyncio.sleep(0.2)  # the first (empty) claim is done; the next poll is an hour away
        seq = await asyncio.to_thread(put, db, "portal", "D1")
        await until(lambda: message(db, seq).state == MessageState.DELIVERED, within=20)


async def test_heartbeat_keeps_slow_deliveries_claimed(
    db: Database, database_url: str, sink: WebhookSink
) -> None:
    """A delivery slower than the lease is not rescued while its worker heartbeats."""
    sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=2.5, times=None)])
    settings = make_settings(
        database_url,
        {"portal": sink.url},
        worker={"lease_seconds": 1.5, "heartbeat_seconds": 0.25},
    )
    seqs = put_many(db, "portal", [(f"D{i}", {"n": i}) for i in range(3)])
    async with running(settings, db, count=2) as workers:  # the second one runs a rescuer too
        await until(lambda: _delivered(db, 3), within=30)
    assert sorted(a.message_id for a in sink.arrivals()) == sorted(message(db, s).message_id for s in seqs)
    assert all([a.outcome for a in attempts(db, s)] == ["delivered"] for s in seqs)
    assert sum(w.stats.rescued for w in workers) == 0


async def test_a_portal_back_from_an_outage_gets_a_probe_then_everything_it_held(
    db: Database, database_url: str, sink: WebhookSink, caplog: pytest.LogCaptureFixture
) -> None:
    """The portal answers 503 until the circuit opens and every message is pushed back an hour.
    Probes keep coming, each on a message made due for it; once the portal answers, the probe
    closes the circuit, which makes the held messages due at once (not in an hour)."""
    caplog.set_level(logging.INFO, logger="hub.delivery")
    sink.faults.replace([Fault(kind=FaultKind.STATUS, status=503, times=None)])
    settings = make_settings(database_url, {"portal": sink.url}, schedule=[3600.0] * 20)
    breaker = settings.endpoints["portal"].breaker
    breaker.failure_threshold, breaker.probe_interval_seconds, breaker.open_seconds = 2, 0.05, 0.5
    seqs = put_many(db, "portal", [(f"D{i}", {"n": i}) for i in range(6)])
    async with running(settings, db):
        await until(lambda: _health(db, "portal") == "open")
        await until(lambda: sum(len(attempts(db, seq)) for seq in seqs) >= 6 + 1)  # and a probe failed
        sink.faults.clear()
        await until(lambda: _delivered(db, 6))
        await until(lambda: _health(db, "portal") == "closed")
    delivered = sorted(
        (a for seq in seqs for a in attempts(db, seq) if a.outcome == "delivered"),
        key=lambda a: a.finished_at,
    )
    probe, *held = delivered
    assert len(held) == 5
    assert all(a.started_at >= probe.finished_at for a in held)  # only once the probe had closed it
    assert any("is back: 5 held message(s) due now" in r.getMessage() for r in caplog.records)


# --- a lock held elsewhere (docs/delivery.md §12.1) --------------------------------------------


def _lease_expired(db: Database, seq: int) -> bool:
    row = message(db, seq)
    return row.lease_expires_at is not None and row.lease_expires_at < utcnow()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # row locks: PostgreSQL only
@pytest.mark.parametrize("held", ["in_flight", "pending"])
async def test_a_row_locked_elsewhere_does_not_freeze_delivery(
    db: Database, database_url: str, sink: WebhookSink, held: str
) -> None:
    """A session holds ``SELECT … FOR UPDATE`` on one dossier's head (in flight, or pending) for
    longer than the lease: every other message keeps moving, nothing is lost, and the locked
    one is delivered, in order, once the lock goes."""
    settings = make_settings(
        database_url, {"portal": sink.url}, worker={"lease_seconds": 2, "heartbeat_seconds": 0.25}
    )
    head = put(db, "portal", "X", {"dossier": "X", "n": 0})
    after = put(db, "portal", "X", {"dossier": "X", "n": 1})
    if held == "in_flight":
        sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=1.0, times=1)])
    head_id = message(db, head).message_id
    async with running(settings, db) as [worker]:
        with db.engine.connect() as other:
            if held == "in_flight":
                await until(lambda: message(db, head).state == MessageState.IN_FLIGHT)
            other.execute(select(OutboxMessage.seq).where(OutboxMessage.seq == head).with_for_update())
            if held == "in_flight":
                # Answered meanwhile: its completion now waits on the lock, and its lease runs out.
                await until(lambda: head_id in {a.message_id for a in sink.arrivals()})
                await until(lambda: _lease_expired(db, head))
            items = [(f"D{i % 20}", {"dossier": f"D{i % 20}", "n": i}) for i in range(100)]
            rest = await asyncio.to_thread(put_many, db, "portal", items)
            # While the lock is still held, the rest of the queue is delivered.
            await until(lambda: all(message(db, s).state == MessageState.DELIVERED for s in rest), within=60)
            other.rollback()
        await until(lambda: message(db, after).state == MessageState.DELIVERED, within=60)
    assert message(db, head).state == MessageState.DELIVERED
    assert all([a.outcome for a in attempts(db, s)] == ["delivered"] for s in rest)
    assert worker.stats.fenced == 0  # the worker itself never stopped trusting its leases
    numbers = [json.loads(a.body)["n"] for a in sink.arrivals() if json.loads(a.body)["dossier"] == "X"]
    assert numbers == sorted(numbers)
    assert set(numbers) == {0, 1}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_resumes_after_a_write_lock_longer_than_the_lease(
    db: Database, database_url: str, sink: WebhookSink
) -> None:
    """SQLite locks the whole database: every writer waits (``busy_timeout``), the worker too,
    then goes on; nothing is lost and per-dossier order holds."""
    sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=0.1, times=None)])
    settings = make_settings(
        database_url, {"portal": sink.url}, worker={"lease_seconds": 2, "heartbeat_seconds": 0.25}
    )
    seqs = put_many(db, "portal", [(f"D{i % 10}", {"dossier": f"D{i % 10}", "n": i}) for i in range(60)])
    async with running(settings, db):
        await until(lambda: len(sink.arrivals()) >= 5)
        with db.engine.connect() as other:  # BEGIN IMMEDIATE: the write lock
            other.execute(update(OutboxMessage).where(OutboxMessage.seq == -1).values(note="x"))
            await asyncio.sleep(3)  # longer than the lease
            other.rollback()
        await until(lambda: _delivered(db, 60), within=60)
    assert {message(db, s).message_id for s in seqs} <= {a.message_id for a in sink.arrivals()}
    assert_dossier_order(sink)


class HoldingSink(WebhookSink):
    """The webhook sink, holding every request until the test lets answers go
    (:meth:`answer`); counts the requests it holds. Serves on the test's event loop."""

    def __init__(self) -> None:
        super().__init__()
        self.held = 0
        self._answers = asyncio.Semaphore(0)

    def answer(self, count: int = 1) -> None:
        for _ in range(count):
            self._answers.release()

    def answer_all(self) -> None:
        self.answer(10_000)

    async def _deliver(self, request: web.Request) -> web.StreamResponse:
        self.held += 1
        try:
            await self._answers.acquire()
        finally:
            self.held -= 1
        return await super()._deliver(request)


@pytest.fixture
async def holding_sink() -> AsyncIterator[HoldingSink]:
    server = HoldingSink()
    await server.start_async()
    yield server
    server.answer_all()
    await server.stop_async()


async def test_a_freed_slot_is_refilled_at_once_from_the_messages_claimed_ahead(
    db: Database, database_url: str, holding_sink: HoldingSink
) -> None:
    """docs/delivery.md §11.4: a delivery that ends is replaced by a message claimed ahead,
    without waiting for a quarter of the slots to free and a claim's round trip: the portal
    keeps ``concurrency`` requests in flight. (Before, one answered request left its slot empty
    until a quarter of them were free.)"""
    sink = holding_sink
    settings = make_settings(
        database_url,
        {"portal": sink.url},
        worker={"concurrency": 8, "batch_size": 100, "poll_interval_seconds": 3600},
        endpoint_options={"timeout_seconds": 120},
    )  # a claim threshold of 2, up to 8 claimed ahead; no poll: only a freed slot starts a claim
    seqs = put_many(db, "portal", [(f"D{i}", {"n": i}) for i in range(40)])
    async with running(settings, db) as [worker]:
        await until(lambda: sink.held == 8)
        for answered in range(1, 21):
            sink.answer()
            await until(lambda answered=answered: len(sink.arrivals()) == answered and sink.held == 8)
            assert worker.in_flight == 8
        sink.answer_all()
        await until(lambda: _delivered(db, 40))
    assert sorted(a.message_id for a in sink.arrivals()) == sorted(message(db, s).message_id for s in seqs)
    assert (worker.stats.claimed, worker.stats.retried) == (40, 0)


async def test_messages_claimed_ahead_go_back_at_stop_without_an_attempt(
    db: Database, database_url: str, holding_sink: HoldingSink
) -> None:
    """Claimed but not started when the worker stops: released, not counted, not sent (§12)."""
    sink = holding_sink
    settings = make_settings(
        database_url,
        {"portal": sink.url},
        worker={"concurrency": 4, "shutdown_grace_seconds": 0.2},
        endpoint_options={"timeout_seconds": 120},
    )  # a claim threshold of 1, up to 4 claimed ahead
    seqs = put_many(db, "portal", [(f"D{i % 3}", {"dossier": f"D{i % 3}", "n": i}) for i in range(12)])
    seqs += put_many(db, "portal", [(f"E{i}", {"dossier": f"E{i}", "n": i}) for i in range(3)])
    async with running(settings, db) as [worker]:
        # 6 heads (D0-D2, E0-E2): 4 sent and held by the portal, 2 claimed ahead.
        await until(lambda: sink.held == 4 and states(db).get(MessageState.IN_FLIGHT, 0) == 6)
    assert sink.arrivals() == []  # the 4 sent were cancelled unanswered, the 2 ahead never sent
    for seq in seqs:
        row = message(db, seq)
        assert (row.state, row.attempts, row.lease_owner) == (MessageState.PENDING, 0, None)
    assert worker.stats.released == 6
    # Delivered afterwards by another worker, each once and in each dossier's order.
    sink.answer_all()
    async with running(settings, db):
        await until(lambda: _delivered(db, 15))
    assert sorted(a.message_id for a in sink.arrivals()) == sorted(message(db, s).message_id for s in seqs)
    assert_dossier_order(sink)
