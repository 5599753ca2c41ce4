"""The outbox store contract (docs/delivery.md §4–§6, §8, §10), on every implementation.

The same tests run on the in-memory store, on SQLite and on PostgreSQL: claim order
(per-dossier FIFO per endpoint: only heads are claimable, a dead head blocks its dossier),
lease guards on complete/heartbeat/release, rescue of expired leases (``lease_lost``), retry
scheduling, dead-lettering and the operator's retry and discard; workers' registration and
the rescue of a dead worker's leases (docs/delivery.md §12.3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.db.base import utcnow
from hub.db.models import MessageState
from hub.db.session import Database
from hub.delivery.store import CLAIM_COLUMNS, ClaimedMessage, Completion, Rescuer, WorkerRegistration
from hub.dlq.models import MessageSummary
from hub.outbox.identity import MessageIdentity
from hub.outbox.transitions import AttemptOutcome

from ..conftest import BACKENDS, migrated_database
from .stores import MemoryHarness, SqlHarness, StoreHarness, past

#: Takes back lost leases with five attempts per message on the ``portal`` endpoint.
RESCUER = Rescuer("rescuer", {"portal": 5})


@pytest.fixture(params=["memory", *BACKENDS])
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreHarness]:
    if request.param == "memory":
        yield MemoryHarness()
        return
    with migrated_database(request, request.param, tmp_path) as url:
        db = Database.connect(url, pool_size=8)
        try:
            yield SqlHarness(db)
        finally:
            db.dispose()


def _done(
    seq: int,
    token: str,
    attempt: int,
    outcome: AttemptOutcome = AttemptOutcome.DELIVERED,
    **kw: Any,
) -> Completion:
    now = utcnow()
    return Completion(
        seq=seq, lease_token=token, attempt_no=attempt, outcome=outcome, started_at=now, finished_at=now, **kw
    )


async def _dead_letter(outbox: StoreHarness, head: int) -> None:
    """Claim the due head ``head`` (as ``w#1``) and complete it as dead (a rejected payload)."""
    await outbox.store.claim({"portal": 1}, "w#1", 30)
    await outbox.store.complete([_done(head, "w#1", 1, AttemptOutcome.DEAD, error="rejected")], "w")


async def _rescued_and_claimed_again(
    outbox: StoreHarness, first: str, then: str
) -> tuple[int, ClaimedMessage]:
    """A new message claimed under ``first``, its lease expired and rescued, claimed again under ``then``."""
    seq = outbox.put("portal", "D1")
    await outbox.store.claim({"portal": 1}, first, 30)
    outbox.set_lease_expiry(seq, past())
    await outbox.store.rescue_expired(RESCUER)
    [again] = await outbox.store.claim({"portal": 1}, then, 30)
    return seq, again


# --- claim order ------------------------------------------------------------------------------


async def test_claim_takes_only_the_head_of_each_dossier(outbox: StoreHarness) -> None:
    store = outbox.store
    a1 = outbox.put("portal", "D1")
    a2 = outbox.put("portal", "D1")
    b1 = outbox.put("portal", "D2")
    other = outbox.put("other", "D1")

    claimed = await store.claim({"portal": 10}, "w1#1", 30)

    assert [m.seq for m in claimed] == [a1, b1]
    assert all(m.attempt_no == 1 and m.lease_token == "w1#1" for m in claimed)
    row = outbox.row(a1)
    assert row.state == MessageState.IN_FLIGHT
    assert row.lease_owner == "w1#1"
    assert row.lease_expires_at is not None
    assert row.lease_expires_at > utcnow()
    # The second message of D1 waits for the first; other endpoints are independent.
    assert await store.claim({"portal": 10}, "w2#1", 30) == []
    assert [m.seq for m in await store.claim({"other": 10}, "w2#2", 30)] == [other]
    assert await store.complete([_done(a1, "w1#1", 1)], "w1") == {a1}
    assert [m.seq for m in await store.claim({"portal": 10}, "w2#3", 30)] == [a2]


async def test_claim_respects_the_limit_per_endpoint_oldest_first(outbox: StoreHarness) -> None:
    seqs = [outbox.put("portal", f"D{i}") for i in range(5)]
    extra = outbox.put("other", "D0")
    claimed = await outbox.store.claim({"portal": 3, "other": 0}, "w#1", 30)
    assert [m.seq for m in claimed] == seqs[:3]
    assert outbox.row(extra).state == MessageState.PENDING


async def test_claimed_message_carries_what_the_connector_needs(outbox: StoreHarness) -> None:
    seq = outbox.put("portal", "D1", {"MaHoSo": "D1", "ChuHoSo": "Trần Thị Bình"})
    [claimed] = await outbox.store.claim({"portal": 1}, "w#1", 30)
    row = outbox.row(seq)
    assert (claimed.seq, claimed.message_id, claimed.endpoint) == (seq, row.message_id, "portal")
    assert (claimed.ordering_key, claimed.dossier_code, claimed.kind) == ("D1", "D1", "dossier.sync")
    assert claimed.payload == {"MaHoSo": "D1", "ChuHoSo": "Trần Thị Bình"}
    assert claimed.manual is False
    assert (claimed.attempt_no, claimed.lease_token) == (1, "w#1")
    assert (claimed.correlation_id, claimed.created_at) == (row.correlation_id, row.created_at)


def test_a_claim_takes_the_claimed_columns_in_its_field_order() -> None:
    """The stores build a claim positionally from :data:`CLAIM_COLUMNS`; it stays a slotted
    dataclass whose first fields are the message identity the DLQ views share."""
    renamed = {"attempts": "attempt_no", "manual_retry": "manual"}
    names = [renamed.get(column.key, column.key) for column in CLAIM_COLUMNS]
    assert [f.name for f in fields(ClaimedMessage)] == [*names, "lease_token"]
    assert [f.name for f in fields(MessageIdentity)] == names[:6] == list(MessageSummary.model_fields)[:6]
    assert not hasattr(ClaimedMessage.__new__(ClaimedMessage), "__dict__")


async def test_future_messages_are_not_claimed(outbox: StoreHarness) -> None:
    seq = outbox.put("portal", "D1")
    outbox.set_next_attempt(seq, utcnow() + timedelta(hours=1))
    assert await outbox.store.claim({"portal": 5}, "w#1", 30) == []


async def test_concurrent_claims_are_disjoint(outbox: StoreHarness) -> None:
    for i in range(200):
        outbox.put("portal", f"D{i}")

    async def claimer(name: str) -> list[int]:
        got: list[int] = []
        for round_no in range(20):
            got += [m.seq for m in await outbox.store.claim({"portal": 7}, f"{name}#{round_no}", 30)]
        return got

    results = await asyncio.gather(*(claimer(f"w{i}") for i in range(4)))
    everything = [seq for got in results for seq in got]
    assert len(everything) == len(set(everything)) == 200


# --- leases -----------------------------------------------------------------------------------


async def test_heartbeat_keeps_the_claim(outbox: StoreHarness) -> None:
    store = outbox.store
    seq = outbox.put("portal", "D1")
    await store.claim({"portal": 1}, "w1#1", 0.5)
    outbox.set_lease_expiry(seq, past())
    assert await store.heartbeat({"w1#1": [seq]}, 30) == {seq}
    assert await store.rescue_expired(RESCUER) == []
    assert outbox.row(seq).state == MessageState.IN_FLIGHT


async def test_heartbeat_does_not_renew_a_foreign_claim(outbox: StoreHarness) -> None:
    store = outbox.store
    seq = outbox.put("portal", "D1")
    await store.claim({"portal": 1}, "w1#1", 30)
    before = outbox.row(seq).lease_expires_at
    assert await store.heartbeat({"w2#7": [seq]}, 3600) == set()
    assert outbox.row(seq).lease_expires_at == before


async def test_release_does_not_count_an_attempt(outbox: StoreHarness) -> None:
    store = outbox.store
    seq = outbox.put("portal", "D1")
    await store.claim({"portal": 1}, "w#1", 30)
    assert await store.release([(seq, "w#1")]) == 1
    row = outbox.row(seq)
    assert row.state == MessageState.PENDING
    assert row.attempts == 0
    assert row.lease_owner is None
    assert outbox.attempts(seq) == []
    assert await store.release([(seq, "w#1")]) == 0  # not ours any more


async def test_release_with_not_before_postpones_the_message(outbox: StoreHarness) -> None:
    store = outbox.store
    seq = outbox.put("portal", "D1")
    await store.claim({"portal": 1}, "w#1", 30)
    later = utcnow() + timedelta(hours=1)
    assert await store.release([(seq, "w#1")], not_before=later) == 1
    assert outbox.row(seq).next_attempt_at == later
    assert await store.claim({"portal": 1}, "w#2", 30) == []  # an open circuit's wait


async def test_completion_after_lease_loss_does_not_overwrite(outbox: StoreHarness) -> None:
    store = outbox.store
    seq, second = await _rescued_and_claimed_again(outbox, "slow#1", "fast#1")

    # The slow worker comes back and reports: nothing changes, nothing recorded.
    late = _done(seq, "slow#1", 1, AttemptOutcome.DEAD, error="late")
    assert await store.complete([late], "slow") == set()
    row = outbox.row(seq)
    assert row.state == MessageState.IN_FLIGHT
    assert row.lease_owner == "fast#1"

    assert await store.complete([_done(seq, "fast#1", second.attempt_no)], "fast") == {seq}
    assert outbox.row(seq).state == MessageState.DELIVERED
    assert [a.outcome for a in outbox.attempts(seq)] == [AttemptOutcome.LEASE_LOST, AttemptOutcome.DELIVERED]
    # Finalised exactly once: a duplicate completion is ignored.
    assert await store.complete([_done(seq, "fast#1", second.attempt_no)], "fast") == set()
    assert len(outbox.attempts(seq)) == 2


async def test_a_stale_and_a_current_result_in_one_batch_record_only_the_current(
    outbox: StoreHarness,
) -> None:
    """A worker stalls, its claim is rescued, it claims the message again: both results may
    reach the store in one batch."""
    store = outbox.store
    seq, again = await _rescued_and_claimed_again(outbox, "w#1", "w#2")
    batch = [_done(seq, "w#1", 1), _done(seq, "w#2", again.attempt_no)]
    assert await store.complete(batch, "w") == {seq}
    assert outbox.row(seq).state == MessageState.DELIVERED
    assert [(a.outcome, a.attempt_no) for a in outbox.attempts(seq)] == [
        (AttemptOutcome.LEASE_LOST, 1),
        (AttemptOutcome.DELIVERED, 2),
    ]


# --- rescue -----------------------------------------------------------------------------------


async def test_rescue_reclaims_a_stuck_row_and_records_lease_lost(outbox: StoreHarness) -> None:
    store = outbox.store
    seq = outbox.put("portal", "D1")
    [claimed] = await store.claim({"portal": 1}, "dead-worker#1", 30)
    assert await store.rescue_expired(RESCUER) == []  # lease still valid

    outbox.set_lease_expiry(seq, past())
    assert await store.rescue_expired(RESCUER) == [seq]

    row = outbox.row(seq)
    assert row.state == MessageState.PENDING
    assert row.lease_owner is None
    [lost] = outbox.attempts(seq)
    assert lost.outcome == AttemptOutcome.LEASE_LOST
    assert lost.worker_id == "dead-worker#1"
    assert lost.attempt_no == claimed.attempt_no == 1
    assert "rescued by rescuer" in lost.error
    again = await store.claim({"portal": 1}, "w2#1", 30)
    assert [m.attempt_no for m in again] == [2]


async def test_rescue_dead_letters_when_attempts_are_exhausted(outbox: StoreHarness) -> None:
    store = outbox.store
    seq = outbox.put("portal", "D1")
    await store.claim({"portal": 1}, "w#1", 30)
    outbox.set_lease_expiry(seq, past())
    assert await store.rescue_expired(Rescuer("rescuer", {"portal": 1})) == [seq]
    row = outbox.row(seq)
    assert row.state == MessageState.DEAD
    assert row.error_class == "LeaseLost"
    assert row.dead_at is not None


async def test_rescue_does_not_race_a_completion(outbox: StoreHarness) -> None:
    store = outbox.store
    seq = outbox.put("portal", "D1")
    await store.claim({"portal": 1}, "w#1", 30)
    outbox.set_lease_expiry(seq, past())
    assert await store.complete([_done(seq, "w#1", 1)], "w") == {seq}
    assert await store.rescue_expired(RESCUER) == []
    assert outbox.row(seq).state == MessageState.DELIVERED


async def test_held_tells_a_lease_still_held_from_a_lost_one(outbox: StoreHarness) -> None:
    store = outbox.store
    done = outbox.put("portal", "D1")
    kept = outbox.put("portal", "D2")
    await store.claim({"portal": 2}, "w#1", 30)
    await store.complete([_done(done, "w#1", 1)], "w")
    asked = [(done, "w#1"), (kept, "w#1"), (kept, "other#1")]
    assert await store.held(asked) == {(kept, "w#1")}
    assert await store.held([]) == set()


# --- workers and the rescue of their leases (§12.3) ------------------------------------------


def _worker(worker_id: str) -> WorkerRegistration:
    return WorkerRegistration(id=worker_id, host="hub-a", pid=4242)


async def test_a_worker_registers_heartbeats_and_deregisters(outbox: StoreHarness) -> None:
    store = outbox.store
    await store.heartbeat_worker(_worker("w1"))
    first = outbox.worker("w1")
    assert (first.host, first.pid, first.stopped_at) == ("hub-a", 4242, None)
    registered, last = first.started_at, first.last_heartbeat_at
    await store.heartbeat_worker(_worker("w1"))
    again = outbox.worker("w1")
    assert again.started_at == registered
    assert again.last_heartbeat_at >= last
    await store.deregister_worker("w1")
    assert outbox.worker("w1").stopped_at is not None
    # A worker counted dead that wakes up (a frozen process) is alive again.
    await store.heartbeat_worker(_worker("w1"))
    assert outbox.worker("w1").stopped_at is None


async def test_leases_of_a_silent_worker_are_rescued_whatever_their_expiry(outbox: StoreHarness) -> None:
    store = outbox.store
    silent, alive = _worker("silent"), _worker("alive")
    for worker in (silent, alive):
        await store.heartbeat_worker(worker)
    theirs = outbox.put("portal", "D1")
    others = outbox.put("portal", "D2")
    unregistered = outbox.put("portal", "D3")
    await store.claim({"portal": 1}, silent.token(1), 3600)
    await store.claim({"portal": 1}, alive.token(1), 3600)
    await store.claim({"portal": 1}, "old-style-worker#1", 3600)
    assert await store.rescue_dead_workers(RESCUER, dead_after_seconds=5) == []

    outbox.set_worker_heartbeat("silent", utcnow() - timedelta(seconds=10))
    assert await store.rescue_dead_workers(RESCUER, dead_after_seconds=5) == [theirs]

    row = outbox.row(theirs)
    assert (row.state, row.lease_owner, row.error_class) == (MessageState.PENDING, None, "LeaseLost")
    [lost] = outbox.attempts(theirs)
    assert (lost.outcome, lost.worker_id, lost.attempt_no) == (AttemptOutcome.LEASE_LOST, silent.token(1), 1)
    assert "missed its heartbeats" in lost.error
    assert "rescued by rescuer" in lost.error
    # Only the silent worker's leases; one without a registered worker waits for its expiry.
    assert outbox.row(others).state == MessageState.IN_FLIGHT
    assert outbox.row(unregistered).state == MessageState.IN_FLIGHT
    assert outbox.worker("silent").stopped_at is not None
    assert outbox.worker("alive").stopped_at is None
    [again] = await store.claim({"portal": 5}, alive.token(2), 30)
    assert (again.seq, again.attempt_no) == (theirs, 2)


async def test_leases_left_by_a_stopped_worker_are_rescued(outbox: StoreHarness) -> None:
    store = outbox.store
    worker = _worker("w")
    await store.heartbeat_worker(worker)
    seq = outbox.put("portal", "D1")
    await store.claim({"portal": 1}, worker.token(1), 3600)
    await store.deregister_worker("w")  # e.g. its last release did not reach the database
    assert await store.rescue_dead_workers(RESCUER, dead_after_seconds=3600) == [seq]
    assert outbox.row(seq).state == MessageState.PENDING


async def test_rescue_of_a_dead_worker_dead_letters_when_attempts_are_exhausted(
    outbox: StoreHarness,
) -> None:
    store = outbox.store
    worker = _worker("w")
    await store.heartbeat_worker(worker)
    seq = outbox.put("portal", "D1")
    await store.claim({"portal": 1}, worker.token(1), 3600)
    outbox.set_worker_heartbeat("w", utcnow() - timedelta(seconds=10))
    assert await store.rescue_dead_workers(Rescuer("rescuer", {"portal": 1}), dead_after_seconds=5) == [seq]
    assert outbox.row(seq).state == MessageState.DEAD
    # The dead worker's late result changes nothing.
    assert await store.complete([_done(seq, worker.token(1), 1)], "w") == set()
    assert outbox.row(seq).state == MessageState.DEAD


# --- retry scheduling and dead-lettering ------------------------------------------------------


async def test_retry_completion_reschedules_and_keeps_order(outbox: StoreHarness) -> None:
    store = outbox.store
    first = outbox.put("portal", "D1")
    outbox.put("portal", "D1")
    await store.claim({"portal": 5}, "w#1", 30)
    later = utcnow() + timedelta(hours=1)
    retry = _done(
        first,
        "w#1",
        1,
        AttemptOutcome.RETRY,
        next_attempt_at=later,
        error="busy",
        error_class="EndpointBusyError",
        status_code=503,
    )
    assert await store.complete([retry], "w") == {first}
    row = outbox.row(first)
    assert row.state == MessageState.PENDING
    assert row.error_class == "EndpointBusyError"
    assert row.next_attempt_at == later
    assert row.lease_owner is None
    # The retrying head still holds its dossier: nothing is claimable.
    assert await store.claim({"portal": 5}, "w#2", 30) == []
    # Once due, the head is tried again, as attempt 2.
    outbox.set_next_attempt(first, past())
    assert [(m.seq, m.attempt_no) for m in await store.claim({"portal": 5}, "w#3", 30)] == [(first, 2)]
    [attempt] = outbox.attempts(first)
    assert (attempt.outcome, attempt.status_code, attempt.worker_id) == (AttemptOutcome.RETRY, 503, "w")


async def test_dead_letter_records_the_attempt(outbox: StoreHarness) -> None:
    store = outbox.store
    seq = outbox.put("portal", "D1")
    await store.claim({"portal": 1}, "w#1", 30)
    dead = _done(seq, "w#1", 1, AttemptOutcome.DEAD, error="HTTP 422 [permanent]", error_class="Rejected")
    assert await store.complete([dead], "w") == {seq}
    row = outbox.row(seq)
    assert (row.state, row.last_error, row.error_class) == (
        MessageState.DEAD,
        "HTTP 422 [permanent]",
        "Rejected",
    )
    assert row.dead_at is not None
    assert row.lease_owner is None
    [attempt] = outbox.attempts(seq)
    assert (attempt.outcome, attempt.attempt_no, attempt.error) == (
        AttemptOutcome.DEAD,
        1,
        "HTTP 422 [permanent]",
    )


async def test_dead_head_blocks_its_dossier_only(outbox: StoreHarness) -> None:
    store = outbox.store
    head = outbox.put("portal", "D1")
    blocked = outbox.put("portal", "D1")
    free = outbox.put("portal", "D2")
    await _dead_letter(outbox, head)
    assert [m.seq for m in await store.claim({"portal": 5}, "w#2", 30)] == [free]
    assert outbox.row(blocked).state == MessageState.PENDING


async def test_discarding_the_dead_head_releases_its_dossier(outbox: StoreHarness) -> None:
    store = outbox.store
    head = outbox.put("portal", "D1")
    held = outbox.put("portal", "D1")
    await _dead_letter(outbox, head)
    assert await store.claim({"portal": 5}, "w#2", 30) == []
    outbox.discard(head, "duplicate of dossier D0")
    row = outbox.row(head)
    assert (row.state, row.note) == (MessageState.DISCARDED, "duplicate of dossier D0")
    assert [m.seq for m in await store.claim({"portal": 5}, "w#3", 30)] == [held]


async def test_operator_retry_gives_a_fresh_budget_recorded_as_manual(outbox: StoreHarness) -> None:
    store = outbox.store
    seq = outbox.put("portal", "D1")
    await _dead_letter(outbox, seq)
    outbox.operator_retry(seq)
    row = outbox.row(seq)
    assert (row.state, row.attempts, row.manual_retry, row.dead_at) == (MessageState.PENDING, 0, True, None)
    [claimed] = await store.claim({"portal": 1}, "w#2", 30)
    assert (claimed.attempt_no, claimed.manual) == (1, True)
    assert await store.complete([_done(seq, "w#2", 1, manual=True)], "w") == {seq}
    assert outbox.row(seq).manual_retry is False
    assert [(a.outcome, a.manual) for a in outbox.attempts(seq)] == [
        (AttemptOutcome.DEAD, False),
        (AttemptOutcome.DELIVERED, True),
    ]


# --- an endpoint back from an outage ------------------------------------------------------------


async def test_make_due_brings_back_what_the_outage_pushed_back(outbox: StoreHarness) -> None:
    """When a circuit closes, the endpoint's messages whose retry was scheduled, or which an
    open circuit released, since the outage began are due at once (docs/delivery.md §7)."""
    store = outbox.store
    later = utcnow() + timedelta(hours=1)
    before = outbox.put("portal", "D0")
    outbox.set_next_attempt(before, later)  # scheduled before the outage: not the outage's doing
    await asyncio.sleep(0.002)
    since = utcnow()
    await asyncio.sleep(0.002)
    retried = outbox.put("portal", "D1")
    released = outbox.put("portal", "D2")
    delivered = outbox.put("portal", "D3")
    other = outbox.put("other", "D1")
    claimed = await store.claim({"portal": 10, "other": 10}, "w#1", 30)
    assert [m.seq for m in claimed] == [retried, released, delivered, other]
    retry = {"next_attempt_at": later, "error": "HTTP 503", "error_class": "EndpointBusyError"}
    await store.complete(
        [
            _done(retried, "w#1", 1, AttemptOutcome.RETRY, **retry),
            _done(other, "w#1", 1, AttemptOutcome.RETRY, **retry),
            _done(delivered, "w#1", 1),
        ],
        "w",
    )
    assert await store.release([(released, "w#1")], not_before=later) == 1
    assert await store.claim({"portal": 10}, "w#2", 30) == []  # all pushed back an hour

    # One for a probe: the soonest due (ties: the oldest).
    assert await store.make_due("portal", since=since, limit=1) == 1
    assert outbox.row(retried).next_attempt_at <= utcnow()
    assert outbox.row(released).next_attempt_at > utcnow()
    # The rest, once the circuit closed.
    assert await store.make_due("portal", since=since) == 1
    assert await store.make_due("portal", since=since) == 0
    assert [m.seq for m in await store.claim({"portal": 10}, "w#3", 30)] == [retried, released]
    assert outbox.row(before).next_attempt_at > utcnow()
    assert outbox.row(other).next_attempt_at > utcnow()
    assert outbox.row(delivered).state == MessageState.DELIVERED


# --- health and wake-ups ----------------------------------------------------------------------


async def test_publish_health_upserts(outbox: StoreHarness) -> None:
    await outbox.store.publish_health("portal", "open", 5, success=False, error="HTTP 503")
    await outbox.store.publish_health("portal", "closed", 0, success=True, error=None)
    health = outbox.health("portal")
    assert health.state == "closed"
    assert health.consecutive_failures == 0
    assert health.last_error == "HTTP 503"
    assert health.last_success_at is not None
    assert health.opened_at is not None


async def test_an_enqueue_wakes_a_listener(outbox: StoreHarness) -> None:
    woken = asyncio.Event()
    async with outbox.store.listen(woken.set):
        outbox.put("portal", "D1")
        await asyncio.wait_for(woken.wait(), timeout=30)


async def test_attempt_rows_keep_every_value_as_given(outbox: StoreHarness) -> None:
    """Every column of a batch's attempt rows reads back as written, text that a bulk format
    would have to escape (tabs, newlines, backslashes, ``\\N``, quotes) and Vietnamese included."""
    store = outbox.store
    seqs = [outbox.put("portal", f"D{i}") for i in range(3)]
    await store.claim({"portal": 3}, "w#1", 30)
    started = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    finished = started + timedelta(milliseconds=1500)
    awkward = 'tab\there\nnew line \\ backslash \\N "quoted" Nguyễn Văn Ánh, ĐT xx'
    batch = [
        Completion(
            seq=seqs[0],
            lease_token="w#1",
            attempt_no=1,
            outcome=AttemptOutcome.DELIVERED,
            started_at=started,
            finished_at=finished,
            manual=True,
            status_code=200,
            request_summary=awkward,
            response_summary='HTTP 200 {"ok": true}\r\n',
        ),
        Completion(
            seq=seqs[1],
            lease_token="w#1",
            attempt_no=1,
            outcome=AttemptOutcome.DEAD,
            started_at=started,
            finished_at=finished,
            error=awkward,
            error_class="BusinessRejectionError",
        ),
        _done(seqs[2], "w#1", 1),
    ]
    assert await store.complete(batch, "worker\t1") == set(seqs)
    [first] = outbox.attempts(seqs[0])
    assert (first.outcome, first.status_code, first.manual, first.worker_id) == (
        AttemptOutcome.DELIVERED,
        200,
        True,
        "worker\t1",
    )
    assert (first.started_at, first.finished_at) == (started, finished)
    assert (first.request_summary, first.response_summary) == (awkward, 'HTTP 200 {"ok": true}\r\n')
    assert (first.error, first.error_class) == (None, None)
    [second] = outbox.attempts(seqs[1])
    assert (second.outcome, second.error, second.error_class, second.status_code, second.manual) == (
        AttemptOutcome.DEAD,
        awkward,
        "BusinessRejectionError",
        None,
        False,
    )
    assert (second.request_summary, second.response_summary) == (None, None)
    [third] = outbox.attempts(seqs[2])
    assert (third.outcome, third.attempt_no) == (AttemptOutcome.DELIVERED, 1)
