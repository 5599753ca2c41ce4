"""The worker's planning, capacity and breaker logic in milliseconds (docs/delivery.md §4–§7).

The in-memory outbox store (same contract as the SQL one, ``test_store_contract.py``) and an
in-process connector (same contract as the webhook one, ``test_connector_contract.py``) stand
in for the database and the portals; the same behaviours against PostgreSQL/SQLite and real
HTTP are in ``test_worker.py`` and ``test_crash.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from connectors.base import Delivery, DeliveryReceipt
from connectors.settings import BreakerSettings, EndpointSettings
from hub.config import Settings, WorkerSettings
from hub.db.base import utcnow
from hub.db.models import MessageState
from hub.delivery import Worker
from hub.delivery.breaker import BreakerState, CircuitBreaker
from hub.delivery.memory_store import MemoryOutboxStore
from hub.delivery.planner import CapacityPlanner
from hub.delivery.store import ClaimedMessage, Rescuer, WorkerRegistration
from hub.outbox.transitions import AttemptOutcome

from .fakes import FakeConnector
from .helpers import make_settings

# --- planning (no event loop needed) ----------------------------------------------------------


def _planner(
    concurrency: int,
    max_in_flight: dict[str, int],
    *,
    batch_size: int = 20,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[CapacityPlanner, dict[str, CircuitBreaker]]:
    endpoints = {
        name: EndpointSettings(kind="webhook", url="http://portal.invalid/", max_in_flight=n)
        for name, n in max_in_flight.items()
    }
    breaker = BreakerSettings(failure_threshold=1, open_seconds=30, half_open_probes=2)
    breakers = {name: CircuitBreaker(name, breaker, clock) for name in endpoints}
    config = WorkerSettings(concurrency=concurrency, batch_size=batch_size)
    return CapacityPlanner(config, endpoints, breakers), breakers


def _claimed(endpoint: str, seq: int) -> ClaimedMessage:
    return ClaimedMessage(
        seq, f"m{seq}", endpoint, "dossier.sync", f"D{seq}", None, {}, 1, False, None, None, lease_token="w#1"
    )


def test_free_slots_and_the_claim_ahead_are_shared_out_in_turn() -> None:
    planner, _ = _planner(5, {"a": 4, "b": 4})  # threshold 1, ahead 5: room for 10 claimed
    assert planner.claim_ahead == 5
    assert planner.wants() == {"b": 8, "a": 2}  # b: its 4 slots and 4 ahead (never more than its slots)
    assert planner.wants() == {"a": 8, "b": 2}  # the rotation lets each endpoint go first in turn


def test_an_endpoint_never_runs_more_than_its_own_slots() -> None:
    planner, _ = _planner(64, {"a": 3, "b": 10}, batch_size=5)  # threshold 5, ahead 64
    assert planner.wants() == {"a": 5, "b": 5}
    for seq in range(6):  # a's 3 slots, and 3 ahead (its share of the ahead: its own slots)
        planner.wait(_claimed("a", seq))
    assert planner.wants() == {"b": 5}
    started = [planner.next_to_start() for _ in range(4)]
    assert [m.seq if m else None for m in started] == [0, 1, 2, None]  # claim order; a is full
    assert (planner.in_flight["a"], planner.total_waiting) == (3, 3)
    planner.finished("a")
    message = planner.next_to_start()
    assert message is not None
    assert message.seq == 3
    assert planner.wants() == {"a": 1, "b": 5}


def test_claimed_messages_start_only_in_free_slots_of_the_worker() -> None:
    planner, _ = _planner(4, {"a": 10, "b": 10})  # threshold 1, ahead 4
    for seq in range(8):
        planner.wait(_claimed("a" if seq < 4 else "b", seq))
    started = []
    while (message := planner.next_to_start()) is not None:
        started.append(message)
    assert [m.seq for m in started] == [0, 4, 1, 5]  # the endpoints take turns, each in claim order
    assert (planner.total_in_flight, planner.total_waiting) == (4, 4)
    assert planner.wants() == {}
    assert not planner.has_room()
    planner.finished("a")
    message = planner.next_to_start()
    assert message is not None
    assert planner.next_to_start() is None
    assert planner.has_room()  # room for a threshold's worth (a quarter of the concurrency, >= 1)
    assert sum(planner.wants().values()) == 1
    assert len(planner.take_waiting()) == 3
    assert planner.total_waiting == 0


def test_endpoints_take_turns_at_the_slots_that_free() -> None:
    """A freed slot is not kept for its endpoint's own waiting messages: b gets every other
    slot while a's keep coming (the worker's slots are shared out, §7)."""
    planner, _ = _planner(2, {"a": 10, "b": 10})
    for seq in range(20):
        planner.wait(_claimed("a", seq))
    for seq in range(20, 24):
        planner.wait(_claimed("b", seq))
    running: list[str] = []
    while (message := planner.next_to_start()) is not None:
        running.append(message.endpoint)
    started = []
    for _ in range(6):
        planner.finished(running.pop(0))
        message = planner.next_to_start()
        assert message is not None
        running.append(message.endpoint)
        started.append(message.endpoint)
    assert started.count("a") == started.count("b") == 3


def test_an_open_circuit_takes_no_claims_and_a_half_open_one_only_probes() -> None:
    clock = [0.0]
    planner, breakers = _planner(64, {"a": 10, "b": 10}, clock=lambda: clock[0])
    breakers["a"].record_failure("HTTP 503", probe=False)
    assert breakers["a"].state is BreakerState.OPEN
    assert set(planner.wants()) == {"b"}
    clock[0] = 30.0
    assert planner.wants() == {"a": 2, "b": 20}  # probes only, never ahead; b: 10 slots, 10 ahead
    assert breakers["a"].try_acquire() == (True, True)
    assert planner.wants() == {"a": 1, "b": 20}
    planner.wait(_claimed("a", 1))  # claimed as the second probe, not started yet
    assert planner.wants() == {"b": 20}


# --- the worker on the in-memory store --------------------------------------------------------


def _settings(names: list[str], *, schedule: list[float] | None = None, **worker: Any) -> Settings:
    return make_settings(
        "sqlite://",  # unused: the in-memory store stands in for the database
        {name: f"http://{name}.invalid/" for name in names},
        schedule=schedule,
        worker={"poll_interval_seconds": 0.01, "completion_flush_seconds": 0.005, **worker},
    )


@asynccontextmanager
async def running(
    settings: Settings, store: MemoryOutboxStore, connectors: dict[str, FakeConnector]
) -> AsyncIterator[Worker]:
    worker = Worker(settings, None, store=store, connectors=connectors, worker_id="w")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task


async def settle(predicate: Callable[[], bool], *, within: float = 10.0) -> None:
    """Yield to the worker until ``predicate()`` holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {within}s")
        await asyncio.sleep(0.001)


def _states(store: MemoryOutboxStore, endpoint: str | None = None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in store.messages.values():
        if endpoint is None or row.endpoint == endpoint:
            counts[row.state] = counts.get(row.state, 0) + 1
    return counts


async def test_capacity_limits_hold_under_load() -> None:
    gate = asyncio.Event()
    store = MemoryOutboxStore()
    fakes = {name: FakeConnector(name, gate=gate) for name in ("a", "b")}
    settings = _settings(["a", "b"], concurrency=3, batch_size=10)
    for endpoint in settings.endpoints.values():
        endpoint.max_in_flight = 2
    for i in range(10):
        store.enqueue("a", f"A{i}", {"n": i})
        store.enqueue("b", f"B{i}", {"n": i})
    async with running(settings, store, fakes) as worker:
        await settle(lambda: worker.in_flight == 3)
        assert sum(fake.in_flight for fake in fakes.values()) == 3
        # 3 running, 3 claimed ahead (docs/delivery.md §11.4) waiting for a slot
        await settle(lambda: _states(store) == {"in_flight": 6, "pending": 14})
        assert sum(fake.in_flight for fake in fakes.values()) == 3
        gate.set()
        await settle(lambda: _states(store) == {"delivered": 20})
    assert all(fake.most_in_flight <= 2 for fake in fakes.values())
    assert worker.stats.claimed == worker.stats.delivered == 20


async def test_an_open_circuit_stops_attempts_and_spares_the_other_endpoints() -> None:
    store = MemoryOutboxStore()
    fakes = {name: FakeConnector(name) for name in ("good", "bad")}
    fakes["bad"].configure(status=503)
    settings = _settings(["good", "bad"], schedule=[0.001] * 20)
    settings.endpoints["bad"].max_in_flight = 4
    settings.endpoints["bad"].breaker.failure_threshold = 3
    settings.endpoints["bad"].breaker.open_seconds = 3600
    settings.endpoints["bad"].breaker.probe_interval_seconds = 3600  # no probe during the test
    bad = [store.enqueue("bad", f"B{i}", {"n": i}) for i in range(20)]
    for i in range(100):
        store.enqueue("good", f"G{i}", {"n": i})
    async with running(settings, store, fakes) as worker:
        await settle(lambda: _states(store, "good") == {"delivered": 100})
        await settle(lambda: "bad" in store.health and store.health["bad"].state == "open")
        assert worker.breakers["bad"].state == "open"
    # At most threshold + in-flight slots were tried; the rest waits, unattempted.
    assert 3 <= len(fakes["bad"].tries) <= 3 + 4
    assert all(store.get(seq).state == MessageState.PENDING for seq in bad)
    assert "good" not in store.health  # never failed, nothing to publish


async def test_a_half_open_probe_closes_the_circuit() -> None:
    store = MemoryOutboxStore()
    fake = FakeConnector("portal")
    fake.configure(status=503)
    settings = _settings(["portal"], schedule=[0.001] * 50)
    settings.endpoints["portal"].breaker.failure_threshold = 2
    settings.endpoints["portal"].breaker.open_seconds = 0.05
    seqs = [store.enqueue("portal", f"D{i}", {"n": i}) for i in range(10)]
    async with running(settings, store, {"portal": fake}):
        await settle(lambda: "portal" in store.health and store.health["portal"].state == "open")
        fake.configure(status=200)
        await settle(lambda: _states(store) == {"delivered": 10})
        await settle(lambda: store.health["portal"].state == "closed")
    assert all(store.get(seq).state == MessageState.DELIVERED for seq in seqs)


async def test_a_portal_back_from_an_outage_gets_a_probe_then_everything_it_held() -> None:
    """Every message failed and was pushed back an hour: the half-open circuit makes one due to
    probe with; the probe closes the circuit, which makes the rest due at once."""
    store = MemoryOutboxStore()
    fake = FakeConnector("portal")
    fake.configure(status=503)
    settings = _settings(["portal"], schedule=[3600.0] * 5)
    breaker = settings.endpoints["portal"].breaker
    breaker.failure_threshold, breaker.probe_interval_seconds, breaker.open_seconds = 2, 0.01, 0.05
    seqs = [store.enqueue("portal", f"D{i}", {"n": i}) for i in range(6)]
    async with running(settings, store, {"portal": fake}) as worker:
        await settle(lambda: len(fake.tries) >= 6 + 2)  # every message failed, then two probes did
        assert worker.breakers["portal"].state is not BreakerState.CLOSED
        fake.configure(status=200)
        await settle(lambda: _states(store) == {"delivered": 6})
        assert worker.breakers["portal"].state is BreakerState.CLOSED
    probe, *rest = [delivery.message_id for delivery in fake.delivered]
    # The first delivery after recovery went alone, as a probe; the others only after it closed.
    assert len(rest) == 5
    closed_at = min(a.finished_at for a in store.attempts if a.outcome is AttemptOutcome.DELIVERED)
    later = [a for a in store.attempts if a.outcome is AttemptOutcome.DELIVERED and a.finished_at > closed_at]
    assert all(a.started_at >= closed_at for a in later)
    assert {store.get(seq).message_id for seq in seqs} == {probe, *rest}


async def test_a_refusal_dead_letters_at_once_and_holds_only_its_dossier() -> None:
    store = MemoryOutboxStore()
    fake = FakeConnector("portal")
    fake.configure(status=422)
    head = store.enqueue("portal", "D1", {"n": 1})
    held = store.enqueue("portal", "D1", {"n": 2})
    async with running(_settings(["portal"]), store, {"portal": fake}) as worker:
        await settle(lambda: store.get(head).state == MessageState.DEAD)
        fake.configure(status=200)
        free = store.enqueue("portal", "D2", {"n": 3})
        await settle(lambda: store.get(free).state == MessageState.DELIVERED)
        assert worker.breakers["portal"].state is BreakerState.CLOSED  # it answered: alive
    assert store.get(held).state == MessageState.PENDING
    assert store.blocked_by(held) == head
    [attempt] = store.attempts_of(head)
    assert (attempt.outcome, attempt.error_class) == (AttemptOutcome.DEAD, "BusinessRejectionError")
    assert "[permanent]" in (store.get(head).last_error or "")


async def test_retries_never_let_a_dossier_overtake_itself() -> None:
    store = MemoryOutboxStore()
    fake = FakeConnector("portal")
    fake.configure(status=503, fail_first=1)
    settings = _settings(["portal"], schedule=[0.0], concurrency=8, batch_size=5)
    settings.endpoints["portal"].breaker.failure_threshold = 10_000
    for i in range(60):
        store.enqueue("portal", f"D{i % 6}", {"dossier": f"D{i % 6}", "n": i})
    async with running(settings, store, {"portal": fake}) as worker:
        await settle(lambda: _states(store) == {"delivered": 60})
    seen: dict[str, list[int]] = {}
    for delivery in fake.delivered:
        seen.setdefault(delivery.payload["dossier"], []).append(delivery.payload["n"])
    assert all(numbers == sorted(numbers) for numbers in seen.values())
    assert worker.stats.retried == 60


async def test_exhausted_attempts_go_dead() -> None:
    store = MemoryOutboxStore()
    fake = FakeConnector("portal")
    fake.configure(status=500)
    seq = store.enqueue("portal", "D1", {"n": 1})
    async with running(_settings(["portal"], schedule=[0.0, 0.0]), store, {"portal": fake}):
        await settle(lambda: store.get(seq).state == MessageState.DEAD)
    assert [a.outcome for a in store.attempts_of(seq)] == ["retry", "retry", "dead"]
    assert "exhausted" in (store.get(seq).last_error or "")


async def test_a_result_after_a_lost_lease_is_dropped() -> None:
    gate = asyncio.Event()
    store = MemoryOutboxStore()
    fake = FakeConnector("portal", gate=gate)
    seq = store.enqueue("portal", "D1", {"n": 1})
    async with running(_settings(["portal"]), store, {"portal": fake}) as worker:
        await settle(lambda: fake.in_flight == 1)
        # The worker stalls past its lease; another worker's rescuer takes the message back.
        store.get(seq).lease_expires_at = utcnow() - timedelta(seconds=1)
        assert await store.rescue_expired(Rescuer("other", {"portal": 5})) == [seq]
        gate.set()
        await settle(lambda: store.get(seq).state == MessageState.DELIVERED)
        await settle(lambda: worker.stats.stale_completions == 1)
    assert [(a.outcome, a.attempt_no) for a in store.attempts_of(seq)] == [
        ("lease_lost", 1),
        ("delivered", 2),
    ]


async def test_stop_after_grace_releases_without_counting() -> None:
    store = MemoryOutboxStore()
    fake = FakeConnector("portal", gate=asyncio.Event())  # never answers
    seqs = [store.enqueue("portal", f"D{i}", {"n": i}) for i in range(5)]
    settings = _settings(["portal"], shutdown_grace_seconds=0)
    async with running(settings, store, {"portal": fake}) as worker:
        await settle(lambda: fake.in_flight == 5)
    for seq in seqs:
        row = store.get(seq)
        assert (row.state, row.attempts, row.lease_owner) == (MessageState.PENDING, 0, None)
    assert worker.stats.released == 5
    assert store.attempts == []


async def test_an_enqueue_wakes_the_worker_without_polling() -> None:
    store = MemoryOutboxStore()
    fake = FakeConnector("portal")
    async with running(_settings(["portal"], poll_interval_seconds=3600), store, {"portal": fake}):
        await asyncio.sleep(0.01)  # the first (empty) claim is done; the next poll is an hour away
        seq = store.enqueue("portal", "D1", {"n": 1})
        await settle(lambda: store.get(seq).state == MessageState.DELIVERED)


class LateResultsStore(MemoryOutboxStore):
    """The in-memory outbox, whose first "make one held message due" finds none: the failures
    that pushed the messages back were not written yet (results are written in batches, and a
    loaded machine may take longer than the circuit's open window)."""

    missed = 0

    async def make_due(self, endpoint: str, *, since: Any, limit: int | None = None) -> int:
        if limit is not None and not self.missed:
            self.missed += 1
            return 0
        return await super().make_due(endpoint, since=since, limit=limit)


async def test_a_probe_is_made_due_even_when_the_first_try_finds_nothing_held() -> None:
    """Seen under load on PostgreSQL: the probe's make-due ran before the failures were written,
    found nothing, and was not tried again for that opening, so no probe ever went and the
    messages waited out their hour of backoff."""
    store = LateResultsStore()
    fake = FakeConnector("portal")
    fake.configure(status=503)
    settings = _settings(["portal"], schedule=[3600.0] * 5)
    breaker = settings.endpoints["portal"].breaker
    breaker.failure_threshold, breaker.probe_interval_seconds, breaker.open_seconds = 2, 0.01, 0.05
    seqs = [store.enqueue("portal", f"D{i}", {"n": i}) for i in range(2)]  # two failures open it
    async with running(settings, store, {"portal": fake}):
        await settle(lambda: len(fake.tries) >= 2)
        fake.configure(status=200)
        await settle(lambda: _states(store) == {"delivered": 2})
    assert store.missed == 1
    assert {store.get(seq).state for seq in seqs} == {MessageState.DELIVERED}


# --- leases, liveness and the fence (docs/delivery.md §12) ------------------------------------


class FreezingStore(MemoryOutboxStore):
    """The in-memory outbox, whose next claim freezes the whole event loop after it returns: the
    worker process stops between claim and send (a GC pause, a SIGSTOP, a VM migration)."""

    freeze_seconds = 0.0

    async def claim(self, wants: Any, lease_token: str, lease_seconds: float) -> Any:
        claimed = await super().claim(wants, lease_token, lease_seconds)
        if claimed and self.freeze_seconds:
            time.sleep(self.freeze_seconds)  # noqa: ASYNC251 - the point: every task stops, heartbeats too
            self.freeze_seconds = 0.0
        return claimed


class StuckStore(MemoryOutboxStore):
    """The in-memory outbox, whose completions fail while ``stuck`` (results cannot drain)."""

    stuck = True

    async def complete(self, completions: Any, worker_id: str) -> set[int]:
        if self.stuck:
            raise ConnectionError("results cannot be written")
        return await super().complete(completions, worker_id)


_LIVENESS = {"worker_heartbeat_seconds": 0.05, "dead_worker_seconds": 1.0, "fence_margin_seconds": 0.2}


async def test_the_worker_registers_heartbeats_and_deregisters() -> None:
    store = MemoryOutboxStore()
    async with running(_settings(["portal"], **_LIVENESS), store, {"portal": FakeConnector("portal")}) as w:
        await settle(lambda: w.registration.id in store.workers)
        registered = store.workers[w.registration.id]
        first = registered.last_heartbeat_at
        await settle(lambda: registered.last_heartbeat_at > first)
        assert registered.stopped_at is None
        assert w.registration.id.startswith("w:")  # the name, then pid and a random part
    assert registered.stopped_at is not None


async def test_a_worker_frozen_between_claim_and_send_does_not_send() -> None:
    """Frozen longer than its liveness allows, it may have been counted dead and its messages
    given to another worker: the fence keeps it from sending them; they go back to the queue."""
    store = FreezingStore()
    fake = FakeConnector("portal")
    seqs = [store.enqueue("portal", f"D{i}", {"n": i}) for i in range(3)]
    store.freeze_seconds = 1.5  # > dead_worker_seconds
    async with running(_settings(["portal"], **_LIVENESS), store, {"portal": fake}) as worker:
        await settle(lambda: _states(store) == {"delivered": 3})
    assert worker.stats.fenced >= 3  # the frozen claim's (a loaded machine may add more)
    assert sorted(d.payload["n"] for d in fake.tries) == [0, 1, 2]  # each sent once, after the release
    assert all([a.outcome for a in store.attempts_of(seq)] == ["delivered"] for seq in seqs)


async def test_a_heartbeat_that_finds_its_lease_lost_cancels_the_delivery() -> None:
    gate = asyncio.Event()
    store = MemoryOutboxStore()
    fake = FakeConnector("portal", gate=gate)
    seq = store.enqueue("portal", "D1", {"n": 1})
    settings = _settings(["portal"], heartbeat_seconds=0.02)
    async with running(settings, store, {"portal": fake}) as worker:
        await settle(lambda: fake.in_flight == 1)
        store.get(seq).lease_expires_at = utcnow() - timedelta(seconds=1)
        assert await store.rescue_expired(Rescuer("other", {"portal": 5})) == [seq]
        await settle(lambda: worker.stats.lost == 1)
        await settle(lambda: fake.in_flight == 1 and len(fake.tries) == 2)  # claimed again, attempt 2
        gate.set()
        await settle(lambda: store.get(seq).state == MessageState.DELIVERED)
    assert [d.attempt for d in fake.delivered] == [2]  # the cancelled attempt never completed
    assert [(a.outcome, a.attempt_no) for a in store.attempts_of(seq)] == [
        ("lease_lost", 1),
        ("delivered", 2),
    ]


async def test_a_message_claimed_ahead_whose_lease_is_lost_is_never_sent() -> None:
    """A heartbeat finds the lease of a message still waiting for a slot taken back: it is
    dropped from the waiting ones and never sent by this worker (docs/delivery.md §12.2)."""
    gate = asyncio.Event()
    store = MemoryOutboxStore()
    fake = FakeConnector("portal", gate=gate)
    seqs = [store.enqueue("portal", f"D{i}", {"n": i}) for i in range(3)]
    settings = _settings(["portal"], concurrency=1, heartbeat_seconds=0.02)  # 1 running, 1 ahead
    async with running(settings, store, {"portal": fake}) as worker:
        await settle(lambda: fake.in_flight == 1 and _states(store) == {"in_flight": 2, "pending": 1})
        waiting = seqs[1]
        store.get(waiting).lease_expires_at = utcnow() - timedelta(seconds=1)
        assert await store.rescue_expired(Rescuer("other", {"portal": 5})) == [waiting]
        await settle(lambda: worker.stats.lost == 1)
        assert [d.message_id for d in fake.tries] == [store.get(seqs[0]).message_id]
        gate.set()
        await settle(lambda: _states(store) == {"delivered": 3})
    # Each sent once: the lost one only after it was claimed again (attempt 2).
    assert sorted(d.message_id for d in fake.tries) == sorted(store.get(s).message_id for s in seqs)
    assert [a.attempt_no for a in store.attempts_of(waiting)] == [1, 2]
    assert [a.outcome for a in store.attempts_of(waiting)] == ["lease_lost", "delivered"]


class FirstAnswersOthersHang(FakeConnector):
    """Holds every delivery at its gate, except the message ``{"n": 0}``: answered (as
    configured) once :attr:`answer_first` is set."""

    def __init__(self, name: str, *, gate: asyncio.Event) -> None:
        super().__init__(name, gate=gate)
        self.answer_first = asyncio.Event()

    async def deliver(self, delivery: Delivery) -> DeliveryReceipt:
        if delivery.payload["n"] == 0:
            self.tries.append(delivery)
            await self.answer_first.wait()
            return self._answer(delivery)
        return await super().deliver(delivery)


async def test_messages_claimed_ahead_for_an_endpoint_whose_circuit_opens_go_back_at_once() -> None:
    """The circuit opens while messages wait for a slot: they are released there and then,
    unsent and without an attempt, due when it half-opens, even while the endpoint's other
    deliveries hang (docs/delivery.md §7, §11.4)."""
    store = MemoryOutboxStore()
    fake = FirstAnswersOthersHang("portal", gate=asyncio.Event())  # the gate never opens
    fake.configure(status=503)
    settings = _settings(["portal"], concurrency=4, shutdown_grace_seconds=0, schedule=[3600.0] * 5)
    breaker = settings.endpoints["portal"].breaker
    breaker.failure_threshold, breaker.open_seconds, breaker.probe_interval_seconds = 1, 3600, 3600
    seqs = [store.enqueue("portal", f"D{i}", {"n": i}) for i in range(6)]  # 4 running, 2 ahead
    async with running(settings, store, {"portal": fake}) as worker:
        await settle(lambda: len(fake.tries) == 4 and _states(store) == {"in_flight": 6})
        fake.answer_first.set()  # the first fails, the circuit opens; the 3 others hang
        await settle(lambda: [store.get(s).state for s in seqs[4:]] == [MessageState.PENDING] * 2)
        assert worker.breakers["portal"].state is BreakerState.OPEN
        assert fake.in_flight == 3
        assert [d.payload["n"] for d in fake.tries] == [0, 1, 2, 3]
        for seq in seqs[4:]:
            row = store.get(seq)
            assert row.attempts == 0
            assert row.next_attempt_at > utcnow() + timedelta(seconds=3000)  # when it half-opens
        assert worker.stats.released == 2


async def test_claiming_pauses_while_results_do_not_drain() -> None:
    store = StuckStore()
    fake = FakeConnector("portal")
    for i in range(100):
        store.enqueue("portal", f"D{i}", {"n": i})
    settings = _settings(["portal"], concurrency=4, batch_size=2)
    async with running(settings, store, {"portal": fake}) as worker:
        await settle(worker.ledger.backlogged)
        for _ in range(50):  # many poll intervals: time to claim everything, were it allowed
            await asyncio.sleep(0.002)
        # At most the backlog bound (2 batches) plus one claim's worth of slots.
        assert worker.stats.claimed <= 2 * 2 + 4
        store.stuck = False
        await settle(lambda: _states(store) == {"delivered": 100})


async def test_a_dead_workers_leases_are_rescued_before_they_expire() -> None:
    store = MemoryOutboxStore()
    seq = store.enqueue("portal", "D1", {"n": 1})
    dead = WorkerRegistration(id="dead:1:abcdef", host="h", pid=1)
    await store.heartbeat_worker(dead)
    await store.claim({"portal": 1}, dead.token(1), 3600)  # an hour-long lease
    store.workers[dead.id].last_heartbeat_at = utcnow() - timedelta(seconds=10)
    fake = FakeConnector("portal")
    async with running(_settings(["portal"], **_LIVENESS), store, {"portal": fake}) as worker:
        await settle(lambda: store.get(seq).state == MessageState.DELIVERED)
    assert worker.stats.rescued == 1
    lost, delivered = store.attempts_of(seq)
    assert (lost.outcome, lost.worker_id, delivered.outcome) == ("lease_lost", dead.token(1), "delivered")
    assert store.workers[dead.id].stopped_at is not None
