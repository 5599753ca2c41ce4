"""The DLQ API on the hub as ``hub serve`` runs it (the runtime, uvicorn on loopback): auth,
error bodies, real database."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from hub import runtime
from hub.auth.keys import ApiKeyService
from hub.config import Settings
from hub.db.session import Database
from hub.dlq import service

from .test_service import audit, kill, put


@pytest.fixture
def client(db: Database, database_url: str, tmp_path: object) -> Iterator[httpx.Client]:
    settings = Settings(database_url=database_url, data_dir=tmp_path)  # type: ignore[arg-type]
    with (
        runtime.run_in_thread(settings, worker=False, host="127.0.0.1", port=0, access_log=False) as hub,
        httpx.Client(base_url=hub.base_url or "", timeout=30) as http_client,
    ):
        yield http_client


def token(db: Database, name: str, role: str) -> dict[str, str]:
    issued = ApiKeyService(db).create(name, role, actor="test")
    return {"Authorization": f"Bearer {issued.token}"}


def test_operators_only(db: Database, client: httpx.Client) -> None:
    assert client.get("/api/v1/dlq/messages").status_code == 401
    officer = token(db, "officer1", "officer")
    response = client.get("/api/v1/dlq/messages", headers=officer)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_list_show_retry_discard(db: Database, client: httpx.Client) -> None:
    tech = token(db, "tech1", "technician")
    first = put(db, "portal", "H42.01-260101-0001", {"v": 1})
    second = put(db, "portal", "H42.01-260101-0002", {"v": 2})
    kill(db, first, second)

    page = client.get("/api/v1/dlq/messages", params={"endpoint": "portal"}, headers=tech).json()
    assert page["total"] == 2
    assert [m["seq"] for m in page["items"]] == [first, second]
    detail = client.get(f"/api/v1/dlq/messages/{first}", headers=tech).json()
    assert detail["payload"] == {"v": 1}
    assert detail["attempt_log"][0]["status_code"] == 422

    retried = client.post(f"/api/v1/dlq/messages/{first}/retry", json={"reason": "retry"}, headers=tech)
    assert retried.status_code == 200
    assert retried.json()["state"] == "pending"
    again = client.post(f"/api/v1/dlq/messages/{first}/retry", json={}, headers=tech)
    assert again.status_code == 409

    no_reason = client.post(f"/api/v1/dlq/messages/{second}/discard", json={}, headers=tech)
    assert no_reason.status_code == 422
    blank = client.post(f"/api/v1/dlq/messages/{second}/discard", json={"reason": "  "}, headers=tech)
    assert blank.status_code == 422
    ok = client.post(f"/api/v1/dlq/messages/{second}/discard", json={"reason": "sent by hand"}, headers=tech)
    assert ok.json()["state"] == "discarded"
    assert client.get("/api/v1/dlq/messages/999999", headers=tech).status_code == 404
    assert [(e.actor, e.action) for e in audit(db)][-2:] == [("tech1", "dlq.retry"), ("tech1", "dlq.discard")]


def test_edit_and_bulk(db: Database, client: httpx.Client) -> None:
    admin = token(db, "admin1", "admin")
    seqs = [put(db, "portal", f"D{i}") for i in range(5)]
    kill(db, *seqs)
    edited = client.post(
        f"/api/v1/dlq/messages/{seqs[0]}/edit",
        json={"payload": {"fixed": True}, "reason": "wrong agency code"},
        headers=admin,
    )
    assert edited.status_code == 200
    detail = client.get(f"/api/v1/dlq/messages/{seqs[0]}", headers=admin).json()
    assert detail["payload"] == {"fixed": True}
    assert detail["revisions"][0]["payload"] == {"dossier": "D0"}
    bad = client.post(f"/api/v1/dlq/messages/{seqs[1]}/edit", json={"payload": [1, 2]}, headers=admin)
    assert bad.status_code == 422

    created = client.post(
        "/api/v1/dlq/bulk", json={"action": "retry", "filter": {"endpoint": "portal"}}, headers=admin
    )
    assert created.status_code == 202
    job = created.json()
    assert job["total"] == 4
    assert job["state"] == "queued"
    cancelled = client.post(f"/api/v1/dlq/bulk/{job['id']}/cancel", headers=admin).json()
    assert cancelled["state"] == "cancelled"
    assert client.get("/api/v1/dlq/bulk", headers=admin).json()[0]["id"] == job["id"]
    assert client.get("/api/v1/dlq/bulk/12345", headers=admin).status_code == 404
    assert client.post("/api/v1/dlq/bulk", json={"action": "discard"}, headers=admin).status_code == 422
    assert client.get("/api/v1/dlq/endpoints", headers=admin).json() == []


def test_filters_are_validated(db: Database, client: httpx.Client) -> None:
    tech = token(db, "tech2", "technician")
    naive = client.get("/api/v1/dlq/messages", params={"since": "2026-01-01T00:00:00"}, headers=tech)
    assert naive.status_code == 422
    bad_state = client.get("/api/v1/dlq/messages", params={"state": "exploded"}, headers=tech)
    assert bad_state.status_code == 422
    aware = client.get(
        "/api/v1/dlq/messages",
        params={"since": "2026-01-01T00:00:00+07:00", "state": "blocked"},
        headers=tech,
    )
    assert aware.status_code == 200
    assert aware.json() == {"total": 0, "items": []}


CCCD = "001099012345"
PHONE = "0912345678"
PAYLOAD = {
    "MaHoSo": "H42.01-260101-0009",
    "ChuHoSo": {"HoTen": "Nguyễn Văn An", "SoGiayTo": CCCD, "DienThoai": PHONE},
    "TrangThai": 2,
    "GhiChu": f"Liên hệ {PHONE}",
    "MaCoQuan": "H42.01",
}


def test_technicians_see_payloads_masked(db: Database, client: httpx.Client) -> None:
    tech = token(db, "tech-mask", "technician")
    seq = put(db, "portal", "H42.01-260101-0009", PAYLOAD)
    kill(db, seq)
    shown = client.get(f"/api/v1/dlq/messages/{seq}", headers=tech)
    assert shown.status_code == 200
    assert CCCD not in shown.text
    assert PHONE not in shown.text
    assert shown.json()["payload"]["ChuHoSo"] == {
        "HoTen": "Nguyễn Văn An",
        "SoGiayTo": "*********345",
        "DienThoai": "091*****78",
    }
    listed = client.get("/api/v1/dlq/messages", headers=tech)
    assert CCCD not in listed.text
    refused = client.get(f"/api/v1/dlq/messages/{seq}", params={"reveal": "pii"}, headers=tech)
    assert refused.status_code == 403
    assert [e.action for e in audit(db)].count("pii.reveal") == 0


def test_an_admin_may_reveal_a_payload_and_it_is_audited(db: Database, client: httpx.Client) -> None:
    admin = token(db, "admin-reveal", "admin")
    seq = put(db, "portal", "H42.01-260101-0009", PAYLOAD)
    kill(db, seq)
    shown = client.get(f"/api/v1/dlq/messages/{seq}", params={"reveal": "pii"}, headers=admin)
    assert shown.json()["payload"] == PAYLOAD
    entry = audit(db)[-1]
    assert (entry.actor, entry.action, entry.target) == ("admin-reveal", "pii.reveal", str(seq))
    assert entry.details["kind"] == "dlq_message"


def test_editing_a_masked_payload_keeps_the_personal_data(db: Database, client: httpx.Client) -> None:
    """The technician edits the masked copy (fixes the agency code) and sends it back whole: the
    stored payload keeps the real ID and phone numbers, not the masks."""
    tech = token(db, "tech-edit", "technician")
    seq = put(db, "portal", "H42.01-260101-0009", PAYLOAD)
    kill(db, seq)
    masked = client.get(f"/api/v1/dlq/messages/{seq}", headers=tech).json()["payload"]
    masked["MaCoQuan"] = "H42.02"
    edited = client.post(
        f"/api/v1/dlq/messages/{seq}/edit",
        json={"payload": masked, "reason": "agency code", "retry": False},
        headers=tech,
    )
    assert edited.status_code == 200, edited.text
    stored = service.get_message(db, seq)
    assert stored.payload == {**PAYLOAD, "MaCoQuan": "H42.02"}
    assert stored.revisions[0].payload == PAYLOAD

    # A masked value changed in part would store the mask: refused, nothing stored.
    again = client.get(f"/api/v1/dlq/messages/{seq}", headers=tech).json()["payload"]
    again["GhiChu"] = again["GhiChu"] + " (gấp)"
    refused = client.post(
        f"/api/v1/dlq/messages/{seq}/edit", json={"payload": again, "retry": False}, headers=tech
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["details"]["fields"] == ["$.GhiChu"]
    assert service.get_message(db, seq).payload == {**PAYLOAD, "MaCoQuan": "H42.02"}

    # A value typed in full replaces the stored one (a wrong phone number fixed by hand).
    again["GhiChu"] = PAYLOAD["GhiChu"]
    again["ChuHoSo"]["DienThoai"] = "0987654321"
    assert (
        client.post(
            f"/api/v1/dlq/messages/{seq}/edit", json={"payload": again, "retry": False}, headers=tech
        ).status_code
        == 200
    )
    assert service.get_message(db, seq).payload["ChuHoSo"] == {
        **PAYLOAD["ChuHoSo"],
        "DienThoai": "0987654321",
    }
