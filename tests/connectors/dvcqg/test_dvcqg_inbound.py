"""Inbound pushes from the national portal through the real API (uvicorn on loopback) into the
real intake service, on SQLite and PostgreSQL; hostile input leaves nothing behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors.dvcqg.inbound import handle_push
from connectors.dvcqg.mapping import dossier_to_wire
from connectors.dvcqg.options import DvcqgOptions
from hub import runtime
from hub.api.errors import http_status_for
from hub.api.routes.dvcqg_inbound import PUSH_PATH
from hub.auth.keys import ApiKeyService
from hub.config import load_settings
from hub.db.models import DossierRow, OutboxMessage
from hub.db.session import Database
from schemas.dossier import Channel, Dossier
from schemas.errors import ConflictError, EndpointBusyError
from schemas.status import DossierStatus
from tests.connectors.dvcqg.dvcqg_samples import dossier_code, full_dossier
from tests.rowcounts import row_counts

CODE = dossier_code(5)


def push_record(code: str = CODE, **changes: Any) -> dict[str, Any]:
    dossier = full_dossier(code, channel=Channel.ONLINE, status=DossierStatus.SUBMITTED, **changes)
    wire = dossier_to_wire(dossier, national_procedure_code="1.003901", options=DvcqgOptions(madonvi="x"))
    return wire.wire()


class Api:
    def __init__(self, base: str, db: Database, app: Any, portal: str, officer: str) -> None:
        self.base, self.db, self.app = base, db, app
        self.portal, self.officer = portal, officer

    def post(
        self, body: bytes | dict[str, Any] | list[Any], *, token: str | None = "portal", **headers: str
    ) -> httpx.Response:
        if not isinstance(body, bytes):
            body = json.dumps(body, ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json")
        if token is not None:
            headers["Authorization"] = f"Bearer {self.portal if token == 'portal' else self.officer}"
        return httpx.post(self.base + PUSH_PATH, content=body, headers=headers, timeout=10)

    def counts(self) -> tuple[int, int]:
        dossiers, messages = row_counts(self.db, DossierRow, OutboxMessage)
        return dossiers, messages


@pytest.fixture
def api(db: Database, database_url: str, tmp_path: Path) -> Iterator[Api]:
    """The hub's API as ``hub serve --no-worker`` runs it (through the runtime)."""
    settings = load_settings(
        database_url=database_url,
        data_dir=tmp_path,
        endpoints={"lgsp": {"kind": "webhook", "url": "http://127.0.0.1:9/lgsp"}},
        routing=[{"kinds": ["dossier.sync"], "endpoints": ["lgsp"], "origins": ["dvcqg"]}],
    )
    with runtime.run_in_thread(settings, worker=False, host="127.0.0.1", port=0, access_log=False) as hub:
        keys = ApiKeyService(hub.db)
        portal = keys.create("dvcqg-portal", "portal", actor="test").token
        officer = keys.create("officer-1", "officer", actor="test").token
        yield Api(hub.base_url or "", db, hub.app, portal, officer)


def test_push_is_stored_once_with_origin_dvcqg(api: Api) -> None:
    response = api.post(push_record())
    assert response.status_code == 200
    assert response.json() == {"error_code": 0, "message": f"{CODE}| accepted"}
    stored = api.app.state.services.intake.get_dossier(CODE)
    assert isinstance(stored, Dossier)
    assert stored.status is DossierStatus.SUBMITTED
    assert stored.channel is Channel.ONLINE
    assert stored.agency_code == "000.00.18.H42"
    assert stored.procedure_code == "1.003901"
    assert stored.owner.name == "Nguyễn Thị Hoà"
    with api.db.sessions() as s:
        row = s.scalars(select(DossierRow)).one()
        assert row.origin == "dvcqg"
    assert api.counts() == (1, 1)  # routed once (to the LGSP endpoint)


def test_repeated_push_is_a_duplicate_and_changes_nothing(api: Api) -> None:
    assert api.post(push_record()).json()["error_code"] == 0
    again = api.post(push_record())
    assert again.status_code == 200
    assert again.json() == {"error_code": 1, "message": f"{CODE}| duplicate MaHoSo, already received"}
    changed = api.post(push_record(summary="Nội dung khác"), **{"Idempotency-Key": "other-key"})
    assert changed.json()["error_code"] == 1
    assert api.app.state.services.intake.get_dossier(CODE).summary != "Nội dung khác"
    assert api.counts() == (1, 1)


def _hostile() -> list[tuple[str, bytes, dict[str, str], int]]:
    good = push_record()
    as_json = {"Content-Type": "application/json"}

    def dumps(doc: object) -> bytes:
        return json.dumps(doc, ensure_ascii=False).encode()

    return [
        ("malformed JSON", b'{"MaHoSo": "x", ', as_json, 400),
        ("not an object", dumps([good]), as_json, 400),
        ("duplicate keys", b'{"MaHoSo": "a", "MaHoSo": "b"}', as_json, 400),
        ("invalid UTF-8", b'{"MaHoSo": "\xff\xfe"}', as_json, 400),
        ("empty body", b"", as_json, 400),
        ("oversized", b'{"GhiChu": "' + b"a" * (1024 * 1024 + 10) + b'"}', as_json, 413),
        ("unknown field", dumps({**good, "TruongLa": "x"}), as_json, 422),
        ("invalid dossier code", dumps({**good, "MaHoSo": "HS-0001"}), as_json, 422),
        ("invalid procedure code", dumps({**good, "MaTTHC": "TTHC-1"}), as_json, 422),
        ("invalid status", dumps({**good, "TrangThaiHoSo": "12"}), as_json, 422),
        ("invalid date", dumps({**good, "NgayTiepNhan": "2025-06-12"}), as_json, 422),
        ("returned date without status 10", dumps({**good, "NgayTra": "20250620080000"}), as_json, 422),
        ("invalid email", dumps({**good, "Email": "không-phải-email"}), as_json, 422),
        ("wrong content type", dumps(good), {"Content-Type": "text/plain"}, 415),
        ("form content type", b"MaHoSo=x", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ("non-UTF-8 charset", dumps(good), {"Content-Type": "application/json; charset=latin-1"}, 415),
    ]


@pytest.mark.parametrize(("why", "body", "headers", "status"), _hostile(), ids=[h[0] for h in _hostile()])
def test_hostile_pushes_are_refused_and_nothing_is_stored(
    api: Api, why: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    response = api.post(body, **headers)
    assert response.status_code == status, why
    answer = response.json()
    assert answer["error_code"] == -1
    assert "|" in answer["message"]
    assert api.counts() == (0, 0)


def test_invalid_dossier_code_answer_names_the_code(api: Api) -> None:
    answer = api.post({**push_record(), "MaHoSo": "HS-0001"}).json()
    assert answer["message"].startswith("HS-0001| ")
    assert "invalid dossier code" in answer["message"]


def test_only_portal_callers_get_in(api: Api) -> None:
    assert api.post(push_record(), token=None).status_code == 401
    assert api.post(push_record(), token="officer").status_code == 403
    assert api.counts() == (0, 0)


def test_registered_acceptor_seam_is_used(api: Api) -> None:
    seen: list[tuple[str, str]] = []

    async def accept(dossier: Dossier, key: str) -> bool:
        seen.append((dossier.code, key))
        return True

    api.app.state.services.dvcqg_accept = accept
    response = api.post(push_record(), **{"X-Message-Id": "portal-msg-7"})
    assert response.json()["error_code"] == 0
    assert seen == [(CODE, "portal-msg-7")]
    assert api.counts() == (0, 0)  # the registered acceptor, not the intake, got it

    async def busy(dossier: Dossier, key: str) -> bool:
        raise EndpointBusyError("database busy", retry_after=5)

    api.app.state.services.dvcqg_accept = busy
    response = api.post(push_record())
    assert response.status_code == 503
    assert response.json()["error_code"] == -1


async def test_handle_push_with_a_sync_acceptor_that_conflicts() -> None:
    def accept(dossier: Dossier, key: str) -> bool:
        raise ConflictError("same key, different body")

    body = json.dumps(push_record()).encode()
    refusal, answer = await handle_push(body, "application/json", accept, idempotency_key="k")
    assert refusal is not None
    assert http_status_for(refusal) == 409
    assert answer.error_code == -1
    assert answer.message.startswith(f"{CODE}| ")


async def test_handle_push_default_key_is_the_dossier_code() -> None:
    keys: list[str] = []

    def accept(dossier: Dossier, key: str) -> bool:
        keys.append(key)
        return False

    refusal, answer = await handle_push(json.dumps(push_record()).encode(), "application/json", accept)
    assert (refusal, answer.error_code) == (None, 1)
    assert keys == [f"dvcqg-push:{CODE}"]
