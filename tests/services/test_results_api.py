"""``POST /api/v1/dossiers/{code}/results/sign`` over a real uvicorn server."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from hub.simulators.pki import RunningPki
from signing.samples import sample_pdf
from tests.api.livehub import live_hub
from tests.sample_dossier import CODE, make_dossier
from tests.services.results_support import environ, signing_settings


@pytest.fixture
def signing_env(pki: RunningPki, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environ(pki).items():
        monkeypatch.setenv(name, value)


def test_officer_signs_a_stored_draft_and_portals_can_fetch_it(
    database_url: str, pki: RunningPki, images: dict[str, Path], tmp_path: Path, signing_env: None
) -> None:
    signing = signing_settings(pki, images, tmp_path).signing.model_dump(mode="json")
    api = {"max_body_bytes": 2 * 1024 * 1024}  # a signed B-LTA paper carries certificates, OCSP, CRLs
    with live_hub(database_url, tmp_path / "data", signing=signing, api=api) as hub:
        with hub.client("source") as source:
            created = source.post(
                "/api/v1/dossiers", json={"dossier": make_dossier().model_dump(mode="json")}
            )
            assert created.status_code in (200, 201), created.text
            draft = source.post(
                f"/api/v1/dossiers/{CODE}/results/upload",
                files={"file": ("gcn.pdf", sample_pdf("GIAY CHUNG NHAN 7/GCN"), "application/pdf")},
                data={"name": "Giấy chứng nhận (dự thảo)"},
            )
            assert draft.status_code == 201, draft.text
        body = {"file_id": draft.json()["file_id"]}
        with hub.client("source") as source:
            assert source.post(f"/api/v1/dossiers/{CODE}/results/sign", json=body).status_code == 403
        with hub.client("officer") as officer:
            approved = officer.post(f"/api/v1/dossiers/{CODE}/results/sign", json=body)
            assert approved.status_code == 201, approved.text
        assert approved.json()["signature"]["role"] == "personal"
        assert approved.json()["next_step"] == "seal"
        seal = {"file_id": approved.json()["file_id"], "name": "Giấy chứng nhận an toàn thực phẩm"}
        with hub.client("officer") as officer:  # the officer does not hold the seal
            assert officer.post(f"/api/v1/dossiers/{CODE}/results/seal", json=seal).status_code == 403
            assert officer.post(f"/api/v1/dossiers/{CODE}/results/issue", json=seal).status_code == 403
        with hub.client("clerk") as clerk:
            early = clerk.post(f"/api/v1/dossiers/{CODE}/results/seal", json=seal)
            assert early.status_code == 422  # Decree 30: numbered and dated before the seal
            assert early.json()["error"]["details"]["reason"] == "document_number_missing"
            bad_type = clerk.post(
                f"/api/v1/dossiers/{CODE}/results/issue", json={**seal, "document_type": "g/c"}
            )
            assert bad_type.status_code == 422
            signed = clerk.post(
                f"/api/v1/dossiers/{CODE}/results/issue", json={**seal, "document_type": "QĐ"}
            )
            assert signed.status_code == 201, signed.text
            again = clerk.post(f"/api/v1/dossiers/{CODE}/results/issue", json=seal)
            assert again.status_code == 409
        answer = signed.json()
        assert [s["role"] for s in answer["signatures"]] == ["agency"]
        assert answer["document_number"]["symbol"] == "01/QĐ-SNNMT"
        assert answer["document_number"]["date_line"].startswith("Ninh Bình, ngày ")
        pdf = httpx.get(answer["download_url"], timeout=10)
        assert pdf.status_code == 200
        assert hashlib.sha256(pdf.content).hexdigest() == answer["sha256"]
        with hub.client("source") as source:
            stored = source.get(f"/api/v1/dossiers/{CODE}").json()
        assert any(r["signed"] and r["sha256"] == answer["sha256"] for r in stored["results"])


def test_without_configured_keys_the_route_answers_503(database_url: str, tmp_path: Path) -> None:
    with live_hub(database_url, tmp_path / "data") as hub, hub.client("officer") as officer:
        response = officer.post(f"/api/v1/dossiers/{CODE}/results/sign", json={"file_id": "x"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_configured"
