"""Batch intake over a real server: all or none, the failing change named, bounded, role, replay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from hub.db.models import AuditEntry, DossierRow, OutboxMessage
from hub.services.intake import MAX_BATCH_CHANGES
from tests.api.livehub import LiveHub, dossier_json, status_json
from tests.sample_dossier import T0

BATCH = "/api/v1/dossiers/batch"


def code(n: int) -> str:
    return f"000.00.18.H42-251125-{n:04d}"


def counts(hub: LiveHub) -> tuple[int, int, int]:
    with hub.db.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(DossierRow)) or 0,
            session.scalar(select(func.count()).select_from(OutboxMessage)) or 0,
            session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("dossier.%"))
            )
            or 0,
        )


def changes() -> list[dict[str, Any]]:
    return [
        {"op": "upsert", "dossier": dossier_json(code(1)), "version": 1},
        {"op": "upsert", "dossier": dossier_json(code(2))},
        {"op": "status", "code": code(1), **status_json(4, T0 + timedelta(hours=1))},
        {
            "op": "step",
            "code": code(2),
            "step": {
                "handler": "Lê Văn C",
                "at": (T0 + timedelta(hours=2)).isoformat(),
                "content": "Thẩm định",
                "status": 4,
            },
        },
    ]


def test_batch_applies_every_change_in_order(hub: LiveHub) -> None:
    with hub.client("source") as client:
        response = client.post(BATCH, json={"changes": changes()})
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        first = client.get(f"/api/v1/dossiers/{code(1)}").json()
    assert [r["dossier_code"] for r in results] == [code(1), code(2), code(1), code(2)]
    assert [r["created"] for r in results] == [True, True, False, False]
    assert [r["revision"] for r in results] == [1, 1, 2, 2]
    # creates: sync to 2 endpoints; status change: sync + progress to each; step: progress to each
    assert [len(r["message_ids"]) for r in results] == [2, 2, 4, 2]
    assert first["status"] == 4
    assert first["steps"][-1]["handler"] == "Trần Thị Bình"
    assert counts(hub) == (2, 10, 4)
    with hub.db.sessions() as session:
        ids = session.scalars(select(OutboxMessage.message_id).order_by(OutboxMessage.seq)).all()
    assert ids == [i for r in results for i in r["message_ids"]]  # queue order = batch order


def test_one_bad_change_rolls_back_the_whole_batch(hub: LiveHub) -> None:
    bad = changes()
    bad[2] = {
        "op": "status",
        "code": code(1),
        **status_json(10, T0 + timedelta(hours=1)),
    }  # returned: too early
    with hub.client("source") as client:
        response = client.post(BATCH, json={"changes": bad})
        missing = client.post(
            BATCH, json={"changes": [*changes()[:1], {"op": "status", "code": code(9), **status_json(4, T0)}]}
        )
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_transition"
    assert error["details"]["item"] == 2
    assert error["message"].startswith("change 2:")
    assert error["message_vi"].startswith("thay đổi thứ 2:")
    assert missing.status_code == 404
    assert missing.json()["error"]["details"]["item"] == 1
    assert counts(hub) == (0, 0, 0)


def test_batch_is_bounded(hub: LiveHub) -> None:
    over = [{"op": "upsert", "dossier": dossier_json(code(n + 1))} for n in range(MAX_BATCH_CHANGES + 1)]
    with hub.client("source") as client:
        too_many = client.post(BATCH, json={"changes": over})
        empty = client.post(BATCH, json={"changes": []})
    assert too_many.status_code in (413, 422), too_many.text
    assert empty.status_code == 422
    assert counts(hub) == (0, 0, 0)


def test_batch_needs_the_source_role(hub: LiveHub) -> None:
    for role in ("portal", "officer", "technician"):
        with hub.client(role) as client:
            response = client.post(BATCH, json={"changes": changes()})
        assert response.status_code == 403
    with hub.client() as anonymous:
        assert anonymous.post(BATCH, json={"changes": changes()}).status_code == 401
    assert counts(hub) == (0, 0, 0)


def test_batch_idempotency_key_replays_and_conflicts(hub: LiveHub) -> None:
    with hub.client("source", headers={"Idempotency-Key": "batch-1"}) as client:
        first = client.post(BATCH, json={"changes": changes()})
        again = client.post(BATCH, json={"changes": changes()})
        other = client.post(BATCH, json={"changes": changes()[:2]})
    assert first.status_code == again.status_code == 200
    assert again.json()["duplicate"] is True
    assert all(r["duplicate"] and not r["created"] for r in again.json()["results"])
    assert [r["message_ids"] for r in again.json()["results"]] == [
        r["message_ids"] for r in first.json()["results"]
    ]
    assert other.status_code == 409
    assert counts(hub) == (2, 10, 4)


def test_openapi_documents_the_batch_route(hub: LiveHub) -> None:
    with hub.client() as client:
        spec = client.get("/api/v1/openapi.json").json()
    operation = spec["paths"][BATCH]["post"]
    assert "all or none" in operation["summary"]
    assert {"403", "409", "413", "422"} <= set(operation["responses"])
