"""Late entries (issue 12, "work done by hand while the system was down"): events that happened
during an outage are entered afterwards with their real time, marked, audited, bounded by the
window, refused when they contradict the recorded history, applied and delivered in real-time
order, and counted at their real time (docs/architecture.md, "Late entries")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub import runtime
from hub.db.models import AuditEntry, DossierRow, OutboxMessage
from hub.simulators.dvcqg import DvcqgSimulator, SimulatorConfig
from schemas.codes import format_dossier_code
from schemas.dossier import Dossier
from schemas.timefmt import now_vn, to_dvcqg
from tests.api.livehub import (
    BOOTSTRAP,
    LiveHub,
    bind_loopback,
    dossier_json,
    hub_settings,
    live_hub,
    status_json,
)
from tests.rowcounts import row_counts

AGENCY = "000.00.18.H42"
#: The dossier was received six days ago, due three days later; the hub was down from the day
#: after the receipt for a day and a half, while it was processed, finished and returned on
#: paper — on time. Everything is entered now, three days and more after it happened.
RECEIVED = now_vn().replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=6)
DUE = RECEIVED + timedelta(days=3)
PROCESSING_AT = RECEIVED + timedelta(days=1, hours=1)
FINISHED_AT = RECEIVED + timedelta(days=2)
RETURNED_AT = RECEIVED + timedelta(days=2, hours=2)
CODE = format_dossier_code(AGENCY, RECEIVED.date(), 1)
BASE = f"/api/v1/dossiers/{CODE}"
LATE = {"reason": "Mất kết nối phần mềm một cửa, xử lý trên giấy", "entered_by": "Lê Văn Cường"}


def create(client: Any) -> None:
    body = dossier_json(CODE, received_at=RECEIVED.isoformat(), due_at=DUE.isoformat())
    response = client.post("/api/v1/dossiers", json={"dossier": body, "version": 1})
    assert response.status_code == 201, response.text


def late_status(status: int, at: datetime, **extra: Any) -> dict[str, Any]:
    return status_json(status, at, late_entry=LATE, **extra)


def backlog_out_of_order() -> list[dict[str, Any]]:
    """The after-outage backlog as the department sends it: not in time order."""
    return [
        {"op": "status", "code": CODE, **late_status(10, RETURNED_AT)},
        {"op": "status", "code": CODE, **late_status(4, PROCESSING_AT)},
        {"op": "status", "code": CODE, **late_status(9, FINISHED_AT)},
    ]


def state(hub: LiveHub) -> tuple[int, int, int]:
    """(dossier revision, outbox messages, audit rows): what a refused entry must leave alone."""
    with hub.db.sessions() as session:
        revision = session.scalar(select(DossierRow.revision).where(DossierRow.code == CODE)) or 0
    messages, audits = row_counts(hub.db, OutboxMessage, AuditEntry)
    return revision, messages, audits


def stored(hub: LiveHub) -> Dossier:
    with hub.db.sessions() as session:
        document = session.scalar(select(DossierRow.document).where(DossierRow.code == CODE))
    return Dossier.model_validate(document)


def test_backlog_batch_is_stored_at_real_times_marked_audited_and_enqueued_in_time_order(
    hub: LiveHub,
) -> None:
    with hub.client("source") as client:
        create(client)
        response = client.post("/api/v1/dossiers/batch", json={"changes": backlog_out_of_order()})
    assert response.status_code == 200, response.text
    # one result per change, in the order sent; the last applied (returned) ends in status 10
    assert [r["status"] for r in response.json()["results"]] == [10, 4, 9]

    dossier = stored(hub)
    assert dossier.status == 10
    assert dossier.finished_at == FINISHED_AT
    assert dossier.returned_at == RETURNED_AT
    # counted at its real time: finished and returned before the due date, on time by the rule
    assert dossier.finished_on_time() is True
    assert dossier.returned_at is not None
    assert dossier.due_at is not None
    assert dossier.returned_at <= dossier.due_at
    late_steps = [step for step in dossier.steps if step.late_entry is not None]
    assert [(s.status, s.at) for s in late_steps] == [
        (4, PROCESSING_AT),
        (9, FINISHED_AT),
        (10, RETURNED_AT),
    ]
    for step in late_steps:
        assert step.late_entry is not None
        assert step.late_entry.entered_by == LATE["entered_by"]
        assert step.late_entry.reason == LATE["reason"]
        assert step.late_entry.entered_at > RETURNED_AT + timedelta(days=3)

    with hub.db.sessions() as session:
        progress = session.scalars(
            select(OutboxMessage.payload)
            .where(OutboxMessage.endpoint == "dvcqg", OutboxMessage.kind == "dossier.progress")
            .order_by(OutboxMessage.seq)
        ).all()
        audits = session.execute(
            select(AuditEntry.actor, AuditEntry.details)
            .where(AuditEntry.action == "dossier.late_entry", AuditEntry.target == CODE)
            .order_by(AuditEntry.id)
        ).all()
    assert [p["steps"][0]["at"] for p in progress] == [
        PROCESSING_AT.isoformat(),
        FINISHED_AT.isoformat(),
        RETURNED_AT.isoformat(),
    ]
    assert [(actor, d["event"], d["occurred_at"]) for actor, d in audits] == [
        ("test-source", "status 4", PROCESSING_AT.isoformat()),
        ("test-source", "status 9", FINISHED_AT.isoformat()),
        ("test-source", "status 10", RETURNED_AT.isoformat()),
    ]
    assert all(d["entered_by"] == LATE["entered_by"] and d["entered_at"] for _a, d in audits)


def test_single_late_step_is_marked_with_the_callers_name_by_default(hub: LiveHub) -> None:
    step = {"handler": "Trần Thị Bình", "at": (RECEIVED + timedelta(hours=30)).isoformat()}
    step |= {"content": "Thẩm định hồ sơ tại chỗ", "status": 2}
    with hub.client("source") as client:
        create(client)
        entered = client.post(f"{BASE}/steps", json={"step": step, "late_entry": {"reason": "mất điện"}})
        again = client.post(f"{BASE}/steps", json={"step": step, "late_entry": {"reason": "mất điện"}})
    assert entered.status_code == 200, entered.text
    assert again.json()["duplicate"] is True
    [late] = [s for s in stored(hub).steps if s.late_entry is not None]
    assert late.late_entry is not None
    assert late.late_entry.entered_by == "test-source"
    assert hub.audit_trail(CODE).count(("dossier.late_entry", "test-source")) == 1


@pytest.mark.parametrize(
    ("at", "field"),
    [
        (now_vn() - timedelta(days=8), "earliest"),  # beyond the 7-day window
        (now_vn() + timedelta(hours=1), "now"),  # in the future
    ],
    ids=["beyond-window", "future"],
)
def test_out_of_bounds_late_entry_is_422_and_stores_nothing(hub: LiveHub, at: datetime, field: str) -> None:
    with hub.client("source") as client:
        create(client)
        before = state(hub)
        response = client.post(f"{BASE}/status", json=late_status(4, at))
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["details"]
    assert state(hub) == before


def test_window_is_configurable(database_url: str, tmp_path: Path) -> None:
    with (
        live_hub(database_url, tmp_path / "data", intake={"late_entry_window_days": 1}) as hub,
        hub.client("source") as client,
    ):
        create(client)
        response = client.post(f"{BASE}/status", json=late_status(4, PROCESSING_AT))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["window_days"] == 1


def test_entry_before_a_recorded_event_is_409_naming_it_and_stores_nothing(hub: LiveHub) -> None:
    with hub.client("source") as client:
        create(client)
        recorded = client.post(f"{BASE}/status", json=status_json(4, FINISHED_AT))
        assert recorded.status_code == 200, recorded.text
        before = state(hub)
        earlier = client.post(f"{BASE}/status", json=late_status(5, PROCESSING_AT))
        before_receipt = client.post(f"{BASE}/status", json=late_status(9, RECEIVED - timedelta(hours=1)))
    assert earlier.status_code == 409, earlier.text
    error = earlier.json()["error"]
    assert error["code"] == "late_entry_conflict"
    assert error["details"]["recorded_at"] == FINISHED_AT.isoformat()
    assert "status 4" in error["details"]["recorded_event"]
    assert "lịch sử" in error["message_vi"]
    assert before_receipt.status_code == 409
    assert state(hub) == before


def test_transition_not_allowed_at_the_real_time_is_409_and_a_batch_stores_nothing(hub: LiveHub) -> None:
    with hub.client("source") as client:
        create(client)
        before = state(hub)
        single = client.post(f"{BASE}/status", json=late_status(9, FINISHED_AT))
        # the backlog lacks "processing": finished is not allowed from "received"
        batch = client.post(
            "/api/v1/dossiers/batch",
            json={"changes": [c for c in backlog_out_of_order() if c["status"] != 4]},
        )
    assert single.status_code == 409, single.text
    assert single.json()["error"]["details"] == {
        "occurred_at": FINISHED_AT.isoformat(),
        "from": 2,
        "to": 9,
    }
    assert batch.status_code == 409, batch.text
    assert batch.json()["error"]["details"]["item"] == 1  # the finish, applied first in time order
    assert state(hub) == before


def test_a_step_cannot_carry_a_mark_of_its_own(hub: LiveHub) -> None:
    step = {"handler": "A", "at": PROCESSING_AT.isoformat(), "content": "x", "status": 2}
    step["late_entry"] = {"entered_by": "A", "entered_at": PROCESSING_AT.isoformat(), "reason": "r"}
    with hub.client("source") as client:
        create(client)
        before = state(hub)
        response = client.post(f"{BASE}/steps", json={"step": step})
    assert response.status_code == 422, response.text
    assert state(hub) == before


# --- end to end: the DVCQG simulator receives the backlog in real-time order ----------------------


@pytest.fixture
def dvcqg() -> Iterator[DvcqgSimulator]:
    config = SimulatorConfig(madonvi=AGENCY, require_catalogue_procedure=False)
    with DvcqgSimulator(config) as simulator:
        yield simulator


def test_backlog_reaches_the_dvcqg_portal_in_real_time_order_with_real_times(
    database_url: str, tmp_path: Path, dvcqg: DvcqgSimulator
) -> None:
    from hub.auth.keys import ApiKeyService

    sock = bind_loopback()
    settings = hub_settings(
        database_url,
        tmp_path / "data",
        sock.getsockname()[1],
        worker={"poll_interval_seconds": 0.1},
        endpoints={
            "dvcqg": {
                "kind": "dvcqg",
                "url": dvcqg.adapter_url,
                "username": "hub",
                "password": "hub-secret",
                "timeout_seconds": 5,
                "options": {"madonvi": AGENCY, "login_backoff_seconds": 0.01},
            }
        },
        routing=[{"kinds": ["dossier.sync", "dossier.progress"], "endpoints": ["dvcqg"]}],
    )
    with runtime.run_in_thread(
        settings, api=True, worker=True, sock=sock, bootstrap_token=BOOTSTRAP, access_log=False
    ) as running:
        token = ApiKeyService(running.db).create("src", "source", actor="tests", agency_codes=[AGENCY]).token
        hub = LiveHub(base_url=str(running.base_url), settings=settings, db=running.db)
        hub.tokens["source"] = token
        with hub.client("source") as client:
            create(client)
            response = client.post("/api/v1/dossiers/batch", json={"changes": backlog_out_of_order()})
            assert response.status_code == 200, response.text
            deadline = time.monotonic() + 30
            # the portal has the three progress messages and the hub has recorded every answer
            # (a message arrives before its completion is written)
            while time.monotonic() < deadline:
                deliveries = client.get(f"{BASE}/deliveries").json()
                if len(dvcqg.progress(CODE)) >= 3 and {d["state"] for d in deliveries} == {"delivered"}:
                    break
                time.sleep(0.1)
    progress = dvcqg.progress(CODE)
    assert [(p["TrangThai"], p["ThoiDiemXuLy"]) for p in progress] == [
        ("4", to_dvcqg(PROCESSING_AT)),
        ("9", to_dvcqg(FINISHED_AT)),
        ("10", to_dvcqg(RETURNED_AT)),
    ]
    record = dvcqg.record(CODE)
    assert record is not None
    assert record["NgayKetThucXuLy"] == to_dvcqg(FINISHED_AT)
    assert record["NgayTra"] == to_dvcqg(RETURNED_AT)
    assert record["TrangThaiHoSo"] == "10"
    assert {d["state"] for d in deliveries} == {"delivered"}
