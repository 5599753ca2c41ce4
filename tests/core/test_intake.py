from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from hub.config import load_settings
from hub.db.models import AuditEntry, OutboxMessage
from hub.db.session import Database
from hub.services.intake import IntakeService, progress_payload, sync_payload
from schemas.changes import DossierUpsert, StatusChange, StepAdd
from schemas.dossier import ProcessingStep
from schemas.errors import ConflictError, InvalidTransitionError, NotFoundError
from schemas.messages import DossierProgressPayload, DossierSyncPayload
from schemas.status import DossierStatus
from schemas.timefmt import VN_TZ
from tests.rowcounts import row_counts
from tests.sample_dossier import make_dossier

T0 = datetime(2025, 11, 25, 8, 5, tzinfo=VN_TZ)


def settings():
    return load_settings(
        endpoints={
            "dvcqg": {"kind": "webhook", "url": "http://127.0.0.1:9/dvcqg"},
            "lgsp": {"kind": "webhook", "url": "http://127.0.0.1:9/lgsp"},
        },
        routing=[
            {
                "kinds": ["dossier.sync", "dossier.progress"],
                "endpoints": ["dvcqg", "lgsp"],
                "origins": ["source"],
            },
            {"kinds": ["dossier.sync"], "endpoints": ["lgsp"], "origins": ["dvcqg"]},
        ],
    )


def count_messages(db: Database) -> int:
    [messages] = row_counts(db, OutboxMessage)
    return messages


def test_create_writes_dossier_and_routed_messages_in_one_go(db: Database) -> None:
    service = IntakeService(db, settings())
    result = service.upsert_dossier(DossierUpsert(dossier=make_dossier(), version=1), actor="src")
    assert result.created
    assert not result.duplicate
    assert len(result.message_ids) == 2
    with db.sessions() as s:
        rows = s.scalars(select(OutboxMessage).order_by(OutboxMessage.seq)).all()
        assert {r.endpoint for r in rows} == {"dvcqg", "lgsp"}
        assert all(r.ordering_key == "000.00.18.H42-251125-0001" for r in rows)
        assert rows[0].payload["dossier"]["owner"]["name"] == "Nguyễn Văn An"
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 1


def test_repeated_idempotency_key_creates_nothing(db: Database) -> None:
    service = IntakeService(db, settings())
    cmd = DossierUpsert(dossier=make_dossier(), version=1)
    first = service.upsert_dossier(cmd, actor="src", idempotency_key="k1")
    again = service.upsert_dossier(cmd, actor="src", idempotency_key="k1")
    assert again.duplicate
    assert again.message_ids == first.message_ids
    assert count_messages(db) == 2
    other = DossierUpsert(dossier=make_dossier(summary="khác"), version=2)
    with pytest.raises(ConflictError):
        service.upsert_dossier(other, actor="src", idempotency_key="k1")
    assert count_messages(db) == 2


def test_same_or_older_version_is_a_no_op(db: Database) -> None:
    service = IntakeService(db, settings())
    service.upsert_dossier(DossierUpsert(dossier=make_dossier(), version=3), actor="src")
    stale = service.upsert_dossier(DossierUpsert(dossier=make_dossier(summary="cũ"), version=2), actor="src")
    assert stale.duplicate
    assert service.get_dossier("000.00.18.H42-251125-0001").summary.startswith("Cấp giấy")
    unchanged = service.upsert_dossier(DossierUpsert(dossier=make_dossier()), actor="src")
    assert unchanged.duplicate
    assert count_messages(db) == 2


def test_status_change_enforces_procedure_and_records_redating(db: Database) -> None:
    service = IntakeService(db, settings())
    service.upsert_dossier(DossierUpsert(dossier=make_dossier()), actor="src")
    code = "000.00.18.H42-251125-0001"
    with pytest.raises(InvalidTransitionError) as err:
        service.change_status(
            code, StatusChange(status=DossierStatus.RETURNED, at=T0, handler="Cán bộ"), actor="src"
        )
    assert "Đã trả kết quả" in err.value.message_vi
    service.change_status(
        code, StatusChange(status=DossierStatus.PROCESSING, at=T0, handler="Cán bộ"), actor="src"
    )
    new_due = T0 + timedelta(days=9)
    result = service.change_status(
        code,
        StatusChange(
            status=DossierStatus.SUPPLEMENT_REQUESTED,
            at=T0 + timedelta(days=1),
            handler="Trần Thị Bình",
            reason="Bổ sung bản sao giấy phép",
            new_due_at=new_due,
        ),
        actor="src",
    )
    assert result.status is DossierStatus.SUPPLEMENT_REQUESTED
    dossier = service.get_dossier(code)
    assert dossier.due_at == new_due
    assert dossier.supplements[-1].old_due_at == T0 + timedelta(days=5)
    assert dossier.supplements[-1].new_due_at == new_due
    # a status change sends the record and the progress step to both endpoints, in that order
    with db.sessions() as s:
        kinds = [
            m.kind
            for m in s.scalars(
                select(OutboxMessage).where(OutboxMessage.endpoint == "dvcqg").order_by(OutboxMessage.seq)
            )
        ]
    assert kinds == ["dossier.sync", "dossier.sync", "dossier.progress", "dossier.sync", "dossier.progress"]


def test_unknown_dossier_and_duplicate_step(db: Database) -> None:
    service = IntakeService(db, settings())
    step = ProcessingStep(handler="A", at=T0, content="Thẩm định", status=DossierStatus.PROCESSING)
    with pytest.raises(NotFoundError):
        service.add_step("000.00.18.H42-251125-0009", StepAdd(step=step), actor="src")
    service.upsert_dossier(DossierUpsert(dossier=make_dossier()), actor="src")
    service.add_step("000.00.18.H42-251125-0001", StepAdd(step=step), actor="src")
    again = service.add_step("000.00.18.H42-251125-0001", StepAdd(step=step), actor="src")
    assert again.duplicate


def test_portal_origin_routes_only_to_department_side(db: Database) -> None:
    service = IntakeService(db, settings())
    result = service.upsert_dossier(
        DossierUpsert(dossier=make_dossier(status=DossierStatus.SUBMITTED)), actor="dvcqg", origin="dvcqg"
    )
    with db.sessions() as s:
        endpoints = [m.endpoint for m in s.scalars(select(OutboxMessage))]
    assert endpoints == ["lgsp"]
    assert len(result.message_ids) == 1


def test_sequence_generator_is_unique_under_concurrency(db: Database) -> None:
    service = IntakeService(db, settings())
    codes: list[str] = []
    lock = threading.Lock()

    def allocate() -> None:
        for _ in range(10):
            code = service.next_dossier_code("000.00.18.H42", date(2025, 11, 25))
            with lock:
                codes.append(code)

    threads = [threading.Thread(target=allocate) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(codes)) == 60
    assert sorted(codes)[0] == "000.00.18.H42-251125-0001"
    assert sorted(codes)[-1] == "000.00.18.H42-251125-0060"
    assert service.next_dossier_code("000.00.18.H42", date(2025, 11, 26)).endswith("-251126-0001")


def test_delivery_state_shows_messages_held_behind_a_dead_letter(db: Database) -> None:
    service = IntakeService(db, settings())
    code = "000.00.18.H42-251125-0001"
    service.upsert_dossier(DossierUpsert(dossier=make_dossier()), actor="src")
    with db.transaction() as s:
        head = s.scalars(
            select(OutboxMessage).where(OutboxMessage.endpoint == "dvcqg").order_by(OutboxMessage.seq)
        ).first()
        assert head is not None
        head.state = "dead"
    step = ProcessingStep(handler="A", at=T0, content="Thẩm định", status=DossierStatus.PROCESSING)
    service.add_step(code, StepAdd(step=step), actor="src")
    states = {(m.endpoint, m.kind): m.state.value for m in service.delivery_state(code)}
    assert states == {
        ("dvcqg", "dossier.sync"): "dead",
        ("dvcqg", "dossier.progress"): "blocked",
        ("lgsp", "dossier.sync"): "pending",
        ("lgsp", "dossier.progress"): "pending",
    }


def test_payloads_around_one_dump_are_the_schemas_json() -> None:
    """Intake dumps a changed dossier once for its messages and its row: the payloads built
    around that dump are exactly what the message schemas serialise to."""
    dossier = make_dossier()
    step = ProcessingStep(
        handler="Trần Thị Bình", at=T0, content="Chuyển xử lý", status=DossierStatus.PROCESSING
    )
    dossier.steps.append(step)
    document = dossier.model_dump(mode="json")
    assert sync_payload(document, 3) == DossierSyncPayload(dossier=dossier, revision=3).model_dump(
        mode="json"
    )
    progress = DossierProgressPayload(dossier_code=dossier.code, steps=[step], dossier=dossier, revision=3)
    assert progress_payload(dossier.code, [step], document, 3) == progress.model_dump(mode="json")
    assert list(progress_payload(dossier.code, [step], document, 3)) == list(progress.model_dump())
