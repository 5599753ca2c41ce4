"""Result papers over a real hub: uploads are judged by content and by the hub's verifier, the
two result signatures belong to their holders and are audited, and a hostile PDF is a clear 4xx
with nothing stored (docs/signing.md §10.5, §10.6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.db.models import AuditEntry, StoredFile
from hub.simulators.pki import RunningPki
from signing.samples import sample_pdf
from tests.api.livehub import LiveHub, live_hub
from tests.rowcounts import row_counts
from tests.sample_dossier import CODE, make_dossier
from tests.services.results_support import environ, signing_settings


def pdf_from_objects(objects: list[bytes]) -> bytes:
    """A well-formed classic-xref PDF made of ``objects`` (object 1 is the catalog)."""
    out = b"%PDF-1.7\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


#: Two page-tree nodes that are each other's only kid (ISO 32000-1 §7.7.3.2 forbids it).
CYCLIC_PAGE_TREE = pdf_from_objects(
    [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Pages /Kids [2 0 R] /Parent 2 0 R /Count 1 >>",
    ]
)


@pytest.fixture
def hub(
    database_url: str,
    pki: RunningPki,
    images: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[LiveHub]:
    for name, value in environ(pki).items():
        monkeypatch.setenv(name, value)
    signing = signing_settings(pki, images, tmp_path).signing.model_dump(mode="json")
    api = {"max_body_bytes": 2 * 1024 * 1024}
    with live_hub(database_url, tmp_path / "data", signing=signing, api=api) as running:
        with running.client("source") as source:
            created = source.post(
                "/api/v1/dossiers", json={"dossier": make_dossier().model_dump(mode="json")}
            )
            assert created.status_code in (200, 201), created.text
        yield running


def stored_files(hub: LiveHub) -> int:
    [files] = row_counts(hub.db, StoredFile)
    return files


def upload(hub: LiveHub, data: bytes, media_type: str = "application/pdf", **form: str) -> dict[str, object]:
    with hub.client("source", timeout=60) as source:
        response = source.post(
            f"/api/v1/dossiers/{CODE}/results/upload",
            files={"file": ("kq.pdf", data, media_type)},
            data={"name": "Giấy chứng nhận", **form},
        )
    return {"status": response.status_code, "body": response.json()}


def results(hub: LiveHub) -> list[dict[str, object]]:
    with hub.client("source") as source:
        found: list[dict[str, object]] = source.get(f"/api/v1/dossiers/{CODE}").json()["results"]
    return found


def officer_signed(hub: LiveHub) -> bytes:
    """A draft stored for the dossier and signed by the officer through the API."""
    draft = hub.app.state.services.files.save(
        sample_pdf("GCN"), filename="gcn.pdf", media_type="application/pdf", dossier_code=CODE
    )
    with hub.client("officer", timeout=60) as officer:
        approved = officer.post(f"/api/v1/dossiers/{CODE}/results/sign", json={"file_id": draft.id})
    assert approved.status_code == 201, approved.text
    _info, path = hub.app.state.services.files.get(approved.json()["file_id"])
    return path.read_bytes()


def test_upload_refuses_content_that_is_not_a_result_paper(hub: LiveHub) -> None:
    before = stored_files(hub)
    not_pdf = upload(hub, b"MZ\x90\x00 an executable, declared as a PDF")
    broken = upload(hub, b"%PDF-1.7\n not a pdf at all \n%%EOF\n")
    cyclic = upload(hub, CYCLIC_PAGE_TREE)
    png_as_pdf = upload(hub, b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    assert (not_pdf["status"], broken["status"], cyclic["status"], png_as_pdf["status"]) == (
        415,
        422,
        422,
        415,
    )
    assert broken["body"]["error"]["code"] == "invalid_pdf"  # type: ignore[index]
    assert stored_files(hub) == before
    assert results(hub) == []


def test_a_declared_signature_is_believed_only_when_the_verifier_confirms_it(hub: LiveHub) -> None:
    before = stored_files(hub)
    claimed = upload(hub, sample_pdf("unsigned"), signed="true")
    assert claimed["status"] == 422
    assert claimed["body"]["error"]["details"]["reason"] == "signature_not_verified"  # type: ignore[index]
    assert stored_files(hub) == before

    plain = upload(hub, sample_pdf("unsigned"))
    assert plain["status"] == 201
    signed = officer_signed(hub)
    undeclared = upload(hub, signed)  # really signed: marked so without the client's word
    assert undeclared["status"] == 201, undeclared["body"]
    by_sha = {r["sha256"]: r["signed"] for r in results(hub)}
    assert by_sha[plain["body"]["sha256"]] is False  # type: ignore[index]
    assert by_sha[undeclared["body"]["sha256"]] is True  # type: ignore[index]


def test_cyclic_page_tree_on_results_sign_is_422_and_stores_nothing(hub: LiveHub) -> None:
    draft = hub.app.state.services.files.save(
        CYCLIC_PAGE_TREE, filename="gcn.pdf", media_type="application/pdf", dossier_code=CODE
    )
    before = stored_files(hub)
    with hub.client("officer", timeout=60) as officer:
        response = officer.post(f"/api/v1/dossiers/{CODE}/results/sign", json={"file_id": draft.id})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_pdf"
    assert stored_files(hub) == before
    assert results(hub) == []


def test_the_seal_is_the_clerks_after_the_officer_and_both_are_audited(hub: LiveHub) -> None:
    files = hub.app.state.services.files
    draft = files.save(sample_pdf("GCN"), filename="gcn.pdf", media_type="application/pdf", dossier_code=CODE)
    seal = {"file_id": draft.id, "name": "Giấy chứng nhận"}
    with hub.client("clerk", timeout=60) as clerk:
        unsigned = clerk.post(f"/api/v1/dossiers/{CODE}/results/seal", json=seal)
        assert (
            clerk.post(f"/api/v1/dossiers/{CODE}/results/sign", json={"file_id": draft.id}).status_code == 403
        )
    assert unsigned.status_code == 422, unsigned.text  # Decree 30: the officer signs first
    assert unsigned.json()["error"]["details"]["reason"] == "seal_requires_officer_signature"
    with hub.client("officer", timeout=60) as officer:
        approved = officer.post(f"/api/v1/dossiers/{CODE}/results/sign", json={"file_id": draft.id})
        assert approved.status_code == 201
        seal["file_id"] = approved.json()["file_id"]
        assert officer.post(f"/api/v1/dossiers/{CODE}/results/seal", json=seal).status_code == 403
    with hub.client("clerk", timeout=60) as clerk:
        sealed = clerk.post(f"/api/v1/dossiers/{CODE}/results/issue", json=seal)
    assert sealed.status_code == 201, sealed.text
    assert [r["signed"] for r in results(hub)] == [True]

    with hub.db.sessions() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.actor, AuditEntry.details)
            .where(AuditEntry.action.startswith("signing."))
            .order_by(AuditEntry.id)
        ).all()
    assert [(a, who, d["key_id"], d["dossier_code"], d["outcome"]) for a, who, d in rows] == [
        ("signing.results.seal", "test-clerk", "so-nnmt", CODE, "refused"),
        ("signing.results.sign", "test-officer", "lanh-ntl", CODE, "signed"),
        ("signing.results.issue", "test-clerk", "so-nnmt", CODE, "numbered"),
        ("signing.results.issue", "test-clerk", "so-nnmt", CODE, "signed"),
    ]
    assert rows[3][2]["output_sha256"] == sealed.json()["sha256"]
    assert rows[3][2]["document_number"] == sealed.json()["document_number"]["symbol"] == "01/GCN-SNNMT"
