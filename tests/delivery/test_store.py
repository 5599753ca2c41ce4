"""Claim, lease, heartbeat, rescue and guarded completion (docs/delivery.md §4, §10)."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import update

from hub.db.base import utcnow
from hub.db.models import MessageState, OutboxMessage
from hub.db.session import Database
from hub.delivery.store import (
    OUTCOME_DEAD,
    OUTCOME_DELIVERED,
    OUTCOME_LEASE_LOST,
    OUTCOME_RETRY,
    Completion,
    OutboxStore,
)

from .helpers import attempts, message, put


def _expire(db: Database, seq: int) -> None:
    with db.transaction() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.seq == seq)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


def _done(seq: int, token: str, attempt: int, outcome: str = OUTCOME_DELIVERED, **kw: object) -> Completion:
    now = utcnow()
    return Completion(
        seq=seq, lease_token=token, attempt_no=attempt, outcome=outcome, started_at=now, finished_at=now, **kw
    )  # type: ignore[arg-type]


def test_claim_takes_only_the_head_of_each_dossier(db: Database) -> None:
    store = OutboxStore(db)
    a1 = put(db, "portal", "D1")
    a2 = put(db, "portal", "D1")
    b1 = put(db, "portal", "D2")
    other = put(db, "other", "D1")

    claimed = store.claim({"portal": 10}, "w1#1", 30)

    assert [m.seq for m in claimed] == [a1, b1]
    assert all(m.attempt_no == 1 and m.lease_token == "w1#1" for m in claimed)
    row = message(db, a1)
    assert row.state == MessageState.IN_FLIGHT
    assert row.lease_owner == "w1#1"
    assert row.lease_expires_at is not None
    assert row.lease_expires_at > utcnow()
    # The second message of D1 waits for the first; other endpoints are independent.
    assert store.claim({"portal": 10}, "w2#1", 30) == []
    assert [m.seq for m in store.claim({"other": 10}, "w2#2", 30)] == [other]
    assert store.complete([_done(a1, "w1#1", 1)], "w1") == {a1}
    assert [m.seq for m in store.claim({"portal": 10}, "w2#3", 30)] == [a2]


def test_future_messages_are_not_claimed(db: Database) -> None:
    store = OutboxStore(db)
    seq = put(db, "portal", "D1")
    with db.transaction() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.seq == seq)
            .values(next_attempt_at=utcnow() + timedelta(hours=1))
        )
    assert store.claim({"portal": 5}, "w#1", 30) == []


def test_rescue_reclaims_a_stuck_row_and_records_lease_lost(db: Database) -> None:
    store = OutboxStore(db)
    seq = put(db, "portal", "D1")
    [claimed] = store.claim({"portal": 1}, "dead-worker#1", 30)
    assert store.rescue_expired({"portal": 5}, "rescuer") == []  # lease still valid

    _expire(db, seq)
    assert store.rescue_expired({"portal": 5}, "rescuer") == [seq]

    row = message(db, seq)
    assert row.state == MessageState.PENDING
    assert row.lease_owner is None
    [lost] = attempts(db, seq)
    assert lost.outcome == OUTCOME_LEASE_LOST
    assert lost.worker_id == "dead-worker#1"
    assert lost.attempt_no == claimed.attempt_no == 1
    again = store.claim({"portal": 1}, "w2#1", 30)
    assert [m.attempt_no for m in again] == [2]


def test_rescue_dead_letters_when_attempts_are_exhausted(db: Database) -> None:
    store = OutboxStore(db)
    seq = put(db, "portal", "D1")
    store.claim({"portal": 1}, "w#1", 30)
    _expire(db, seq)
    assert store.rescue_expired({"portal": 1}, "rescuer") == [seq]
    row = message(db, seq)
    assert row.state == MessageState.DEAD
    assert row.error_class == "LeaseLost"


def test_heartbeat_keeps_the_claim(db: Database) -> None:
    store = OutboxStore(db)
    seq = put(db, "portal", "D1")
    store.claim({"portal": 1}, "w1#1", 0.5)
    _expire(db, seq)
    assert store.heartbeat({"w1#1": [seq]}, 30) == {seq}
    assert store.rescue_expired({"portal": 5}, "rescuer") == []
    assert message(db, seq).state == MessageState.IN_FLIGHT


def test_heartbeat_does_not_renew_a_foreign_claim(db: Database) -> None:
    store = OutboxStore(db)
    seq = put(db, "portal", "D1")
    store.claim({"portal": 1}, "w1#1", 30)
    before = message(db, seq).lease_expires_at
    assert store.heartbeat({"w2#7": [seq]}, 3600) == set()
    assert message(db, seq).lease_expires_at == before


def test_completion_after_lease_loss_does_not_overwrite(db: Database) -> None:
    store = OutboxStore(db)
    seq = put(db, "portal", "D1")
    store.claim({"portal": 1}, "slow#1", 30)
    _expire(db, seq)
    store.rescue_expired({"portal": 5}, "rescuer")
    [second] = store.claim({"portal": 1}, "fast#1", 30)

    # The slow worker comes back and reports: nothing changes, nothing recorded.
    assert store.complete([_done(seq, "slow#1", 1, OUTCOME_DEAD, error="late")], "slow") == set()
    row = message(db, seq)
    assert row.state == MessageState.IN_FLIGHT
    assert row.lease_owner == "fast#1"

    assert store.complete([_done(seq, "fast#1", second.attempt_no)], "fast") == {seq}
    assert message(db, seq).state == MessageState.DELIVERED
    assert [a.outcome for a in attempts(db, seq)] == [OUTCOME_LEASE_LOST, OUTCOME_DELIVERED]
    # Finalised exactly once: a duplicate completion is ignored.
    assert store.complete([_done(seq, "fast#1", second.attempt_no)], "fast") == set()
    assert len(attempts(db, seq)) == 2


def test_rescue_does_not_race_a_completion(db: Database) -> None:
    store = OutboxStore(db)
    seq = put(db, "portal", "D1")
    store.claim({"portal": 1}, "w#1", 30)
    _expire(db, seq)
    assert store.complete([_done(seq, "w#1", 1)], "w") == {seq}
    assert store.rescue_expired({"portal": 5}, "rescuer") == []
    assert message(db, seq).state == MessageState.DELIVERED


def test_retry_completion_reschedules_and_keeps_order(db: Database) -> None:
    store = OutboxStore(db)
    first = put(db, "portal", "D1")
    put(db, "portal", "D1")
    store.claim({"portal": 5}, "w#1", 30)
    later = utcnow() + timedelta(hours=1)
    done = store.complete(
        [
            _done(
                first,
                "w#1",
                1,
                OUTCOME_RETRY,
                next_attempt_at=later,
                error="busy",
                error_class="EndpointBusyError",
            )
        ],
        "w",
    )
    assert done == {first}
    row = message(db, first)
    assert row.state == MessageState.PENDING
    assert row.error_class == "EndpointBusyError"
    # The retrying head still holds its dossier: nothing is claimable.
    assert store.claim({"portal": 5}, "w#2", 30) == []


def test_release_does_not_count_an_attempt(db: Database) -> None:
    store = OutboxStore(db)
    seq = put(db, "portal", "D1")
    store.claim({"portal": 1}, "w#1", 30)
    assert store.release([(seq, "w#1")]) == 1
    row = message(db, seq)
    assert row.state == MessageState.PENDING
    assert row.attempts == 0
    assert row.lease_owner is None
    assert attempts(db, seq) == []
    assert store.release([(seq, "w#1")]) == 0  # not ours any more


def test_dead_head_blocks_its_dossier_only(db: Database) -> None:
    store = OutboxStore(db)
    head = put(db, "portal", "D1")
    blocked = put(db, "portal", "D1")
    free = put(db, "portal", "D2")
    store.claim({"portal": 1}, "w#1", 30)
    store.complete([_done(head, "w#1", 1, OUTCOME_DEAD, error="rejected")], "w")
    assert [m.seq for m in store.claim({"portal": 5}, "w#2", 30)] == [free]
    assert message(db, blocked).state == MessageState.PENDING


def test_concurrent_claims_are_disjoint(db: Database) -> None:
    store = OutboxStore(db)
    for i in range(200):
        put(db, "portal", f"D{i}")
    results: dict[str, list[int]] = {}

    def claim(name: str) -> None:
        got: list[int] = []
        for round_no in range(20):
            got += [m.seq for m in store.claim({"portal": 7}, f"{name}#{round_no}", 30)]
        results[name] = got

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [seq for got in results.values() for seq in got]
    assert len(everything) == len(set(everything)) == 200


def test_publish_health_upserts(db: Database) -> None:
    from hub.dlq.service import endpoint_health

    store = OutboxStore(db)
    store.publish_health("portal", "open", 5, success=False, error="HTTP 503")
    store.publish_health("portal", "closed", 0, success=True, error=None)
    [health] = endpoint_health(db)
    assert health.state == "closed"
    assert health.last_error == "HTTP 503"
    assert health.last_success_at is not None
    assert health.opened_at is not None
