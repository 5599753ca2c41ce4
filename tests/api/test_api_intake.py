"""Intake routes over a real server: lifecycle, idempotency, results, files, code allocation."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import timedelta

from hub.db.models import OutboxMessage, StoredFile
from signing.samples import sample_pdf
from tests.api.livehub import LiveHub, dossier_json, status_json
from tests.rowcounts import row_counts
from tests.sample_dossier import T0

CODE = "000.00.18.H42-251125-0001"
BASE = f"/api/v1/dossiers/{CODE}"


def create(hub: LiveHub, **extra: object) -> None:
    with hub.client("source") as client:
        response = client.post("/api/v1/dossiers", json={"dossier": dossier_json(**extra), "version": 1})
    assert response.status_code == 201, response.text


def outbox_count(hub: LiveHub) -> int:
    [messages] = row_counts(hub.db, OutboxMessage)
    return messages


def test_create_then_repeat_is_a_duplicate(hub: LiveHub) -> None:
    with hub.client("source") as client:
        body = {"dossier": dossier_json(), "version": 1}
        first = client.post("/api/v1/dossiers", json=body)
        again = client.post("/api/v1/dossiers", json=body)
    assert first.status_code == 201
    assert first.json()["created"] is True
    assert len(first.json()["message_ids"]) == 2
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert outbox_count(hub) == 2


def test_idempotency_key_replays_and_conflicts(hub: LiveHub) -> None:
    create(hub)
    change = status_json(4, T0 + timedelta(hours=1))
    with hub.client("source", headers={"Idempotency-Key": "req-42"}) as client:
        first = client.post(f"{BASE}/status", json=change)
        again = client.post(f"{BASE}/status", json=change)
        other = client.post(f"{BASE}/status", json=status_json(5, T0 + timedelta(hours=2)))
    assert first.status_code == 200
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["message_ids"] == first.json()["message_ids"]
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "conflict"
    assert outbox_count(hub) == 2 + 4  # create (2 endpoints) + one status change (sync + progress each)


def test_full_lifecycle_with_supplement_redating(hub: LiveHub) -> None:
    create(hub)
    new_due = T0 + timedelta(days=9)
    steps = [
        status_json(4, T0 + timedelta(hours=1), department="Phòng Trồng trọt"),
        status_json(
            5, T0 + timedelta(days=1), reason="Thiếu bản sao giấy phép", new_due_at=new_due.isoformat()
        ),
        status_json(4, T0 + timedelta(days=2)),
        status_json(9, T0 + timedelta(days=3)),
        status_json(10, T0 + timedelta(days=4)),
    ]
    with hub.client("source") as client:
        for change in steps:
            response = client.post(f"{BASE}/status", json=change)
            assert response.status_code == 200, response.text
        dossier = client.get(BASE).json()
        deliveries = client.get(f"{BASE}/deliveries").json()
    assert dossier["status"] == 10
    assert dossier["due_at"] == new_due.isoformat()
    assert dossier["supplements"][0]["new_due_at"] == new_due.isoformat()
    assert len(dossier["steps"]) == 5
    assert {d["endpoint"] for d in deliveries} == {"dvcqg", "lgsp"}
    assert all(d["state"] == "pending" for d in deliveries)


def test_invalid_transition_is_409_with_vietnamese_message(hub: LiveHub) -> None:
    create(hub)
    with hub.client("source") as client:
        response = client.post(f"{BASE}/status", json=status_json(10, T0 + timedelta(hours=1)))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "invalid_transition"
    assert "không thể chuyển trạng thái" in error["message_vi"]
    assert error["details"] == {"from": 2, "to": 10}
    assert outbox_count(hub) == 2


def test_text_is_stored_nfc(hub: LiveHub) -> None:
    nfd = unicodedata.normalize("NFD", "Nguyễn Thị Hường")
    create(hub, owner={"name": nfd, "id_number": "001099012345"})
    with hub.client("source") as client:
        name = client.get(BASE).json()["owner"]["name"]
    assert name == unicodedata.normalize("NFC", "Nguyễn Thị Hường")


def test_steps_route(hub: LiveHub) -> None:
    create(hub)
    step = {
        "handler": "Lê Văn Cường",
        "at": (T0 + timedelta(hours=3)).isoformat(),
        "content": "Thẩm định hồ sơ",
        "status": 2,
    }
    with hub.client("source") as client:
        first = client.post(f"{BASE}/steps", json={"step": step})
        again = client.post(f"{BASE}/steps", json={"step": step})
    assert first.status_code == 200
    assert again.json()["duplicate"] is True


def test_result_upload_is_served_with_sha256_etag(hub: LiveHub) -> None:
    create(hub)
    content = sample_pdf("GIAY CHUNG NHAN")
    with hub.client("source") as client:
        response = client.post(
            f"{BASE}/results/upload",
            files={"file": ("giấy chứng nhận.pdf", content, "application/pdf")},
            data={"name": "Giấy chứng nhận ATTP", "result_code": "GCN-01"},
        )
        assert response.status_code == 201, response.text
        stored = response.json()
        dossier = client.get(BASE).json()
    digest = hashlib.sha256(content).hexdigest()
    assert stored["sha256"] == digest
    assert stored["download_url"].startswith(f"{hub.settings.api.public_base_url}/files/")
    result = dossier["results"][0]
    assert result["download_url"] == stored["download_url"]
    assert result["sha256"] == digest
    assert result["signed"] is False  # unsigned: the hub's verifier decides (test_result_papers.py)
    with hub.client() as anonymous:
        download = anonymous.get(stored["download_url"])
        assert download.status_code == 200
        assert download.content == content
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["etag"] == f'"{digest}"'
        assert "filename*=UTF-8''gi%E1%BA%A5y" in download.headers["content-disposition"]
        cached = anonymous.get(stored["download_url"], headers={"If-None-Match": f'"{digest}"'})
        assert cached.status_code == 304
        assert anonymous.get("/files/" + "A" * 32).status_code == 404
        assert anonymous.get("/files/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_result_attach_by_url(hub: LiveHub) -> None:
    create(hub)
    result = {"result": {"id": "KQ1", "name": "Quyết định", "download_url": "https://example.org/kq1.pdf"}}
    with hub.client("source") as client:
        assert client.post(f"{BASE}/results", json=result).status_code == 200
        assert client.get(BASE).json()["results"][0]["id"] == "KQ1"


def test_upload_to_unknown_dossier_stores_nothing(hub: LiveHub) -> None:
    with hub.client("source") as client:
        response = client.post(
            "/api/v1/dossiers/000.00.18.H42-251125-0999/results/upload",
            files={"file": ("a.pdf", b"%PDF-1.7", "application/pdf")},
            data={"name": "KQ"},
        )
    assert response.status_code == 404
    assert row_counts(hub.db, StoredFile) == (0,)


def test_oversized_upload_is_413_and_nothing_is_stored(hub: LiveHub) -> None:
    create(hub)
    big = b"0" * (hub.settings.api.max_body_bytes + 1)
    with hub.client("source") as client:
        response = client.post(
            f"{BASE}/results/upload",
            files={"file": ("big.pdf", big, "application/pdf")},
            data={"name": "KQ"},
        )
    assert response.status_code == 413
    assert row_counts(hub.db, StoredFile) == (0,)
    files_dir = hub.settings.data_dir / "files"
    assert not files_dir.exists() or not any(p.is_file() for p in files_dir.rglob("*"))


def test_code_allocation_is_sequential(hub: LiveHub) -> None:
    with hub.client("source") as client:
        codes = [
            client.post("/api/v1/dossier-codes", json={"agency_code": "000.00.18.H42", "day": "2026-02-05"})
            for _ in range(3)
        ]
        bad = client.post("/api/v1/dossier-codes", json={"agency_code": "H4X", "day": "2026-02-05"})
    assert [r.json()["code"] for r in codes] == [f"000.00.18.H42-260205-000{i}" for i in (1, 2, 3)]
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["errors"][0]["loc"] == "body.agency_code"


def test_unknown_dossier_is_404(hub: LiveHub) -> None:
    with hub.client("source") as client:
        response = client.get("/api/v1/dossiers/000.00.18.H42-251125-0999")
    assert response.status_code == 404
    assert response.json()["error"]["message_vi"].startswith("không tìm thấy hồ sơ")


def test_openapi_lists_the_routes(hub: LiveHub) -> None:
    with hub.client() as client:
        spec = client.get("/api/v1/openapi.json").json()
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["status"] == "ready"
    for path in [
        "/api/v1/dossiers",
        "/api/v1/dossiers/{code}/status",
        "/api/v1/lookup/{code}",
        "/files/{file_id}",
    ]:
        assert path in spec["paths"]


def test_repeated_upload_keeps_one_file(hub: LiveHub) -> None:
    create(hub)
    upload = {"file": ("kq.pdf", sample_pdf("KQ"), "application/pdf")}
    with hub.client("source", headers={"Idempotency-Key": "upload-1"}) as client:
        first = client.post(f"{BASE}/results/upload", files=upload, data={"name": "Kết quả"})
        again = client.post(f"{BASE}/results/upload", files=upload, data={"name": "Kết quả"})
    assert first.status_code == again.status_code == 201
    assert again.json()["file_id"] == first.json()["file_id"]
    assert again.json()["result"]["duplicate"] is True
    assert row_counts(hub.db, StoredFile) == (1,)
    files = [p for p in (hub.settings.data_dir / "files").rglob("*") if p.is_file()]
    assert len(files) == 1
