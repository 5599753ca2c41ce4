"""The chaos verifier on synthetic logs: a clean run passes, and each kind of violation is caught."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from hub.db.models import DeliveryAttempt, MessageState, OutboxMessage
from hub.db.session import Database
from hub.simulators.sink import WebhookSink
from tests.delivery.helpers import put_many

from .verifier import ReceivedMessage, Report, ViolationKind, check, fetch_records, verify

NOW = datetime(2025, 11, 25, 8, 0, tzinfo=UTC)


def sent(seq: int, dossier: str = "D1", state: str = "delivered", **extra: Any) -> OutboxMessage:
    """An outbox row that never joins a session, with the columns the verifier reads."""
    fields: dict[str, Any] = {"endpoint": "portal", **extra}
    return OutboxMessage(seq=seq, message_id=f"m{seq}", ordering_key=dossier, state=state, **fields)


def lost_lease(seq: int) -> DeliveryAttempt:
    """An attempt at message ``seq`` that ended ``lease_lost`` (the rescuer's trace)."""
    return DeliveryAttempt(message_seq=seq, outcome="lease_lost")


def arrived(*seqs: int) -> list[ReceivedMessage]:
    return [ReceivedMessage(message_id=f"m{seq}") for seq in seqs]


def kinds(report: Report) -> list[str]:
    return sorted(v.kind.value for v in report.violations)


def test_a_clean_run_passes() -> None:
    # Two dossiers interleaved at the receiver, each in its own order.
    messages = [sent(1, "A"), sent(2, "B"), sent(3, "A"), sent(4, "B"), sent(5, "A")]
    report = check(messages, arrived(2, 1, 3, 4, 5), now=NOW)
    report.assert_ok()
    assert report.summary() == {
        "enqueued": 5,
        "arrivals": 5,
        "delivered": 5,
        "duplicates": 0,
        "duplicate_arrivals": 0,
        "lease_lost": 0,
        "violations": {},
    }


def test_a_duplicate_explained_by_a_lost_lease_is_reported_not_a_violation() -> None:
    # The killed worker's delivery arrived, the rescuer's redelivery too, then the next one.
    report = check([sent(1), sent(2)], arrived(1, 1, 2), now=NOW, attempts=[lost_lease(1)])
    report.assert_ok()
    [duplicate] = report.duplicates
    assert (duplicate.message_id, duplicate.arrivals, duplicate.lease_lost) == ("m1", 2, 1)
    assert report.summary()["duplicate_arrivals"] == 1


def test_arrivals_from_sink_records_and_dicts() -> None:
    records = [{"message_id": "m1", "dossier_code": "D1", "attempt": 1, "at": 1.5}]
    check([sent(1)], records, now=NOW).assert_ok()
    assert ReceivedMessage.from_record(records[0]) == ReceivedMessage("m1", "D1", 1.5, attempt=1)


def test_lost() -> None:
    report = check([sent(1), sent(2)], arrived(1), now=NOW)
    assert kinds(report) == ["lost"]
    assert report.violations[0].message_id == "m2"
    with pytest.raises(AssertionError, match="lost: m2"):
        report.assert_ok()


def test_dead() -> None:
    report = check([sent(1, state="dead")], arrived(1), now=NOW)
    assert kinds(report) == ["dead"]


def test_stuck_in_flight_with_an_expired_lease() -> None:
    expired = sent(1, state="in_flight", lease_expires_at=NOW - timedelta(seconds=1))
    assert kinds(check([expired], arrived(1), now=NOW)) == ["stuck_in_flight"]
    live = sent(1, state="in_flight", lease_expires_at=NOW + timedelta(seconds=30))
    assert kinds(check([live], arrived(1), now=NOW)) == ["unfinished"]


def test_stuck_pending_past_the_deadline() -> None:
    due = sent(1, state="pending", next_attempt_at=NOW - timedelta(seconds=5))
    assert kinds(check([due], arrived(1), now=NOW)) == ["stuck_pending"]
    later = sent(1, state="pending", next_attempt_at=NOW + timedelta(hours=1))
    assert kinds(check([later], arrived(1), now=NOW)) == ["unfinished"]
    assert kinds(check([later], arrived(1), now=NOW, deadline=NOW + timedelta(hours=2))) == ["stuck_pending"]


def test_never_sent_and_still_pending_is_lost_and_stuck() -> None:
    due = sent(1, state="pending", next_attempt_at=NOW)
    assert kinds(check([due], [], now=NOW)) == ["lost", "stuck_pending"]


def test_phantom() -> None:
    report = check([sent(1)], [*arrived(1), ReceivedMessage("nobody-sent-this")], now=NOW)
    assert kinds(report) == ["phantom"]


def test_unexplained_duplicate() -> None:
    report = check([sent(1), sent(2)], arrived(1, 1, 1, 2), now=NOW, attempts=[lost_lease(1)])
    assert kinds(report) == ["unexplained_duplicate"]
    assert "arrived 3× with 1 lease(s) lost" in str(report)
    assert kinds(check([sent(1)], arrived(1, 1), now=NOW)) == ["unexplained_duplicate"]


def test_reordered() -> None:
    report = check([sent(1), sent(2), sent(3)], arrived(2, 1, 3), now=NOW)
    assert kinds(report) == ["reordered"]
    assert report.violations[0].message_id == "m1"
    assert "seq 1 arrived first (attempt 0) after seq 2" in report.violations[0].detail


def test_stale_redelivery_after_the_next_message_was_acknowledged() -> None:
    # First arrivals are in order; the duplicate is explained; its late arrival is not.
    report = check([sent(1), sent(2)], arrived(1, 2, 1), now=NOW, attempts=[lost_lease(1)])
    assert kinds(report) == ["stale_redelivery"]
    assert "seq 1 arrived again (attempt 0) after seq 2" in report.violations[0].detail


def test_order_is_per_dossier_and_per_endpoint() -> None:
    messages = [sent(1, "A"), sent(2, "B"), sent(3, "A", endpoint="other")]
    check(messages, arrived(3, 2, 1), now=NOW).assert_ok()


def test_an_unacknowledged_arrival_does_not_move_the_order_on() -> None:
    # m2 reached the receiver but was not acknowledged (dropped answer): m1 may still come.
    log = [ReceivedMessage("m2", acknowledged=False), *arrived(1, 2)]
    report = check([sent(1), sent(2)], log, now=NOW, attempts=[lost_lease(2)])
    assert ViolationKind.REORDERED not in {v.kind for v in report.violations}
    report.assert_ok()


def test_verify_reads_the_outbox_and_the_lost_leases(db: Database) -> None:
    seqs = put_many(db, "portal", [("D1", {"n": 1}), ("D1", {"n": 2}), ("D2", {"n": 3})])
    with db.transaction() as session:
        session.execute(update(OutboxMessage).values(state=MessageState.DELIVERED.value))
        session.add(
            DeliveryAttempt(
                message_seq=seqs[0],
                attempt_no=1,
                worker_id="rescuer",
                started_at=NOW,
                finished_at=NOW,
                outcome="lease_lost",
            )
        )
    with db.sessions() as session:
        ids = {row.seq: row.message_id for row in session.query(OutboxMessage)}
    log = [ReceivedMessage(ids[s]) for s in (seqs[0], seqs[0], seqs[2], seqs[1])]
    report = verify(db, log)
    report.assert_ok()
    assert report.lease_lost == 1
    assert [d.message_id for d in report.duplicates] == [ids[seqs[0]]]
    # And the same database with the second message never arriving.
    assert kinds(verify(db, log[:3])) == ["lost"]


def test_fetch_records_reads_a_sink_over_http() -> None:
    with WebhookSink() as sink:
        httpx.post(sink.url, headers={"X-Message-Id": "m1", "X-Dossier-Code": "D1", "X-Attempt": "1"})
        records = fetch_records(sink.base_url)
    assert [(r["message_id"], r["dossier_code"]) for r in records] == [("m1", "D1")]
    check([sent(1)], records, now=NOW).assert_ok()
