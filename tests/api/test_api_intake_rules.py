"""Intake refuses bad data at the door (issue 9): ASCII-only codes and numbers, bounded fields,
lists and dates, no control characters; the procedure cannot be bypassed through upserts;
source keys write only their agencies; deep JSON is a 400; idempotency keys are the caller's
own and a concurrent repeat gets the first answer; a losing upload leaves no file behind."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.api.app import CORE_ROUTE_MODULES
from hub.api.routes.dvcqg_inbound import PUSH_PATH
from hub.auth.keys import ApiKeyService
from hub.db.models import DossierRow, OutboxMessage, StoredFile
from signing.samples import sample_pdf
from tests.api.livehub import ROLES, LiveHub, dossier_json, live_hub, status_json
from tests.rowcounts import row_counts
from tests.sample_dossier import T0

CODE = "000.00.18.H42-251125-0001"
BASE = f"/api/v1/dossiers/{CODE}"
CREATE = "/api/v1/dossiers"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def counts(hub: LiveHub) -> tuple[int, int]:
    dossiers, messages = row_counts(hub.db, DossierRow, OutboxMessage)
    return dossiers, messages


def create(client: httpx.Client, **extra: Any) -> httpx.Response:
    return client.post(CREATE, json={"dossier": dossier_json(**extra), "version": 1})


# --- ASCII digits -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"code": CODE.translate(FULL_WIDTH)},
        {"agency_code": "000.00.18.H42".translate(FULL_WIDTH)},
        {"procedure_code": "1.003901.H42".translate(FULL_WIDTH)},
        {"owner": {"name": "Nguyễn Văn An", "id_number": "001099012345".translate(FULL_WIDTH)}},
        {"owner": {"name": "A", "identities": [{"kind": 1, "number": "00109901234５"}]}},
        {"owner": {"name": "A", "identities": [{"kind": 2, "number": "٠٠١٠٩٩٠١٢"}]}},  # Arabic-Indic
    ],
    ids=["dossier-code", "agency-code", "procedure-code", "id-number", "cccd", "cmnd"],
)
def test_non_ascii_digits_are_refused(hub: LiveHub, change: dict[str, Any]) -> None:
    with hub.client("source") as client:
        response = create(client, **change)
    assert response.status_code == 422, response.text
    assert counts(hub) == (0, 0)


def test_full_width_agency_code_gets_no_counter_of_its_own(hub: LiveHub) -> None:
    with hub.client("source") as client:
        wide = client.post("/api/v1/dossier-codes", json={"agency_code": "０００.００.１８.H42"})
        ascii_ = client.post(
            "/api/v1/dossier-codes", json={"agency_code": "000.00.18.H42", "day": "2025-11-25"}
        )
    assert wide.status_code == 422, wide.text
    assert ascii_.json()["code"] == "000.00.18.H42-251125-0001"


# --- bounds and control characters --------------------------------------------------------------


def _step(i: int) -> dict[str, Any]:
    return {"handler": "A", "at": (T0 + timedelta(minutes=i)).isoformat(), "content": "x", "status": 2}


@pytest.mark.parametrize(
    "change",
    [
        {"received_at": "0001-01-01T08:00:00+07:00", "due_at": None},
        {"due_at": "9999-12-31T08:00:00+07:00"},
        {"owner": {"name": "Nguyễn\x00Văn An"}},
        {"owner": {"name": "Nguyễn\x1bVăn An"}},
        {"summary": "Đề nghị\x07cấp giấy"},
        {"receipt_number": "BN\x0b01"},
        {"summary": "x" * 2001},
        {"receipt_number": "9" * 101},
        {"steps": [_step(i) for i in range(501)]},
        {"documents": [{"id": f"{i}", "name": "n"} for i in range(201)]},
    ],
    ids=[
        "year-1",
        "year-9999",
        "nul",
        "escape",
        "bell-in-text",
        "vt-in-token",
        "long-summary",
        "long-token",
        "too-many-steps",
        "too-many-documents",
    ],
)
def test_out_of_bounds_and_control_characters_are_refused_at_intake(
    hub: LiveHub, change: dict[str, Any]
) -> None:
    with hub.client("source") as client:
        response = create(client, **change)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"
    assert counts(hub) == (0, 0)


def test_multiline_text_and_the_bounds_themselves_are_accepted(hub: LiveHub) -> None:
    with hub.client("source") as client:
        response = create(
            client, summary="Dòng 1\nDòng 2\tcột" + "x" * 1980, steps=[_step(i) for i in range(500)]
        )
    assert response.status_code == 201, response.text


def test_status_change_at_year_9999_is_refused(hub: LiveHub) -> None:
    with hub.client("source") as client:
        assert create(client).status_code == 201
        response = client.post(f"{BASE}/status", json=status_json(4, T0.replace(year=9999)))
    assert response.status_code == 422


# --- the procedure cannot be bypassed -----------------------------------------------------------


@pytest.mark.parametrize("status", [3, 4, 5, 6, 7, 8, 9])
def test_a_new_dossier_starts_where_the_procedure_starts(hub: LiveHub, status: int) -> None:
    with hub.client("source") as client:
        response = create(client, status=status)
        returned = create(client, status=10, returned_at=(T0 + timedelta(days=1)).isoformat())
        online = create(client, code="000.00.18.H42-251125-0002", status=1, channel=2)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "invalid_transition"
    assert returned.status_code == 409
    assert online.status_code == 201
    assert counts(hub)[0] == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("due_at", (T0 + timedelta(days=30)).isoformat()),
        ("due_at", None),
        ("received_at", (T0 - timedelta(days=1)).isoformat()),
    ],
)
def test_upsert_cannot_move_dates(hub: LiveHub, field: str, value: str | None) -> None:
    with hub.client("source") as client:
        assert create(client).status_code == 201
        before = counts(hub)
        moved = client.post(CREATE, json={"dossier": dossier_json(**{field: value}), "version": 2})
        stored = client.get(BASE).json()
    assert moved.status_code == 409, moved.text
    error = moved.json()["error"]
    assert error["details"]["use"] == f"POST /api/v1/dossiers/{CODE}/due-date"
    assert stored["due_at"] == dossier_json()["due_at"]
    assert stored["received_at"] == dossier_json()["received_at"]
    assert counts(hub) == before


def test_redating_route_records_old_and_new_dates(hub: LiveHub) -> None:
    new_due = T0 + timedelta(days=12)
    change = {
        "new_due_at": new_due.isoformat(),
        "at": (T0 + timedelta(days=6)).isoformat(),
        "handler": "Trần Thị Bình",
        "reason": "Xin lỗi: hồ sơ quá hạn do chờ ý kiến liên ngành (Mẫu 04)",
    }
    with hub.client("source") as client:
        assert create(client).status_code == 201
        assert client.post(f"{BASE}/status", json=status_json(4, T0 + timedelta(hours=1))).status_code == 200
        moved = client.post(f"{BASE}/due-date", json=change)
        again = client.post(f"{BASE}/due-date", json=change)
        no_reason = client.post(f"{BASE}/due-date", json={**change, "reason": ""})
        dossier = client.get(BASE).json()
    assert moved.status_code == 200, moved.text
    assert again.json()["duplicate"] is True
    assert no_reason.status_code == 422
    assert dossier["due_at"] == new_due.isoformat()
    [record] = dossier["supplements"]
    assert record["old_due_at"] == dossier_json()["due_at"]
    assert record["new_due_at"] == new_due.isoformat()
    assert dossier["steps"][-1]["content"] == change["reason"]
    assert dossier["steps"][-1]["status"] == 4
    assert ("dossier.redate", "test-source") in hub.audit_trail(CODE)


def test_history_is_append_only(hub: LiveHub) -> None:
    with hub.client("source") as client:
        assert create(client).status_code == 201
        for status in (4, 5):
            change = status_json(status, T0 + timedelta(hours=status), new_due_at=None)
            assert client.post(f"{BASE}/status", json=change).status_code == 200
        with hub.client("admin") as admin:  # the stored dossier in clear (GET masks by default)
            held = admin.get(BASE, params={"reveal": "pii"}).json()
        wiped = client.post(
            CREATE,
            json={"dossier": {**held, "steps": [], "supplements": [], "note": "ghi chú"}, "version": 2},
        )
        rewritten = client.post(
            CREATE,
            json={
                "dossier": {
                    **held,
                    "supplements": [
                        {
                            "id": "x",
                            "requested_by": "A",
                            "content": "c",
                            "requested_at": T0.isoformat(),
                            "new_due_at": (T0 + timedelta(days=40)).isoformat(),
                        }
                    ],
                },
                "version": 3,
            },
        )
        after = client.get(BASE).json()
    assert wiped.status_code == 200, wiped.text
    assert after["note"] == "ghi chú"
    assert after["steps"] == held["steps"]
    assert len(after["steps"]) == 2
    assert rewritten.status_code == 409


# --- agency scope of source keys ----------------------------------------------------------------


def test_source_keys_write_only_their_agencies(hub: LiveHub) -> None:
    keys = ApiKeyService(hub.db)
    unscoped = keys.create("unscoped", "source", actor="tests").token
    other = keys.create("h43-only", "source", actor="tests", agency_codes=["000.00.18.H43"]).token
    with hub.client(headers={"Authorization": f"Bearer {unscoped}"}) as client:
        refused = create(client)
    with hub.client("source") as client:
        foreign = create(client, code="000.00.18.H43-251125-0001", agency_code="000.00.18.H43")
        foreign_code = client.post("/api/v1/dossier-codes", json={"agency_code": "000.00.18.H43"})
        assert create(client).status_code == 201
    with hub.client(headers={"Authorization": f"Bearer {other}"}) as client:
        moved = client.post(f"{BASE}/status", json=status_json(4, T0 + timedelta(hours=1)))
        overwrite = client.post(CREATE, json={"dossier": dossier_json(note="x"), "version": 9})
    assert refused.status_code == 403, refused.text
    assert "not scoped" in refused.json()["error"]["message"]
    assert foreign.status_code == 403
    assert foreign_code.status_code == 403
    assert moved.status_code == 403
    assert overwrite.status_code == 403
    assert counts(hub) == (1, 2)


def test_admin_creates_scoped_keys_over_http_and_codes_are_validated(hub: LiveHub) -> None:
    with hub.client("admin") as admin:
        bad = admin.post("/api/v1/keys", json={"name": "k1", "role": "source", "agency_codes": ["H42;drop"]})
        good = admin.post(
            "/api/v1/keys", json={"name": "k2", "role": "source", "agency_codes": ["000.00.18.H42"]}
        )
    assert bad.status_code == 422
    assert good.status_code == 201
    with hub.client(headers={"Authorization": f"Bearer {good.json()['token']}"}) as client:
        assert create(client).status_code == 201


# --- deep JSON ----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", [PUSH_PATH, "/api/v1/sms/inbound"])
def test_deeply_nested_json_is_a_400(database_url: str, tmp_path: Path, route: str) -> None:
    body = b'{"a": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    modules = (*CORE_ROUTE_MODULES, "hub.api.routes.dvcqg_inbound")
    with (
        live_hub(database_url, tmp_path, route_modules=modules) as hub,
        hub.client("portal", headers={"Content-Type": "application/json"}) as client,
    ):
        response = client.post(route, content=body)
        assert response.status_code == 400, response.text[:300]
        assert counts(hub) == (0, 0)


# --- idempotency --------------------------------------------------------------------------------


def test_idempotency_keys_belong_to_their_caller(hub: LiveHub) -> None:
    keys = ApiKeyService(hub.db)
    second, third = (
        keys.create(name, "source", actor="tests", agency_codes=["000.00.18.H42"]).token
        for name in ("second-source", "third-source")
    )
    key = {"Idempotency-Key": "shared-key-1"}
    with hub.client("source", headers=key) as client:
        first = create(client)
    with hub.client(headers={"Authorization": f"Bearer {second}", **key}) as client:
        other_body = create(client, code="000.00.18.H42-251125-0002")
    with hub.client(headers={"Authorization": f"Bearer {third}", **key}) as client:
        same_body = create(client)
    assert first.status_code == 201
    # not a conflict that tells the key exists: a new request of the second caller
    assert other_body.status_code == 201, other_body.text
    # not the first caller's answer: its own (the dossier exists, unchanged), no message ids
    assert same_body.status_code == 200, same_body.text
    assert same_body.json()["duplicate"] is True
    assert same_body.json()["message_ids"] == []


def send_together(hub: LiveHub, body: dict[str, Any], key: str, n: int = 6) -> list[httpx.Response]:
    """``n`` clients post ``body`` under ``key`` at the same moment."""
    answers: list[httpx.Response] = []
    gate = threading.Barrier(n)

    def send() -> None:
        with hub.client("source", headers={"Idempotency-Key": key}) as client:
            gate.wait()
            answers.append(client.post(CREATE, json=body))

    threads = [threading.Thread(target=send) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_concurrent_repeats_of_one_key_get_the_first_answer(hub: LiveHub) -> None:
    for round_ in range(6):
        code = f"000.00.18.H42-251125-{round_ + 1:04d}"
        answers = send_together(hub, {"dossier": dossier_json(code=code), "version": 1}, f"k-{code}")
        assert sorted(a.status_code for a in answers) == [200] * 5 + [201], [a.text for a in answers]
        assert len({tuple(a.json()["message_ids"]) for a in answers}) == 1
    assert counts(hub) == (6, 12)


def test_upload_losing_on_its_key_leaves_no_file(hub: LiveHub) -> None:
    key = {"Idempotency-Key": "upload-1"}

    def upload(client: httpx.Client, content: bytes) -> httpx.Response:
        files = {"file": ("kq.pdf", content, "application/pdf")}
        return client.post(f"{BASE}/results/upload", files=files, data={"name": "Giấy phép"})

    with hub.client("source") as client:
        assert create(client).status_code == 201
    with hub.client("source", headers=key) as client:
        paper = sample_pdf("first")
        first = upload(client, paper)
        repeat = upload(client, paper)
        other = upload(client, sample_pdf("other"))
    assert first.status_code == 201, first.text
    assert repeat.status_code == 201
    assert repeat.json()["file_id"] == first.json()["file_id"]
    assert repeat.json()["result"]["duplicate"] is True
    assert other.status_code == 409
    assert row_counts(hub.db, StoredFile) == (1,)
    stored = [p for p in (hub.settings.data_dir).rglob("*") if p.is_file() and "files" in p.parts]
    assert len(stored) == 1, stored


def test_json_depth_parser_is_shared() -> None:
    from schemas.errors import MalformedJsonError
    from schemas.jsonbody import parse_json_body

    with pytest.raises(MalformedJsonError):
        parse_json_body(b"[" * 50_000 + b"]" * 50_000)
    assert parse_json_body(json.dumps({"a": [1]}).encode()) == {"a": [1]}
    assert ROLES  # the fixture keys exist for every role
