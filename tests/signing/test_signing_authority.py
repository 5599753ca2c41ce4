"""Signing authority (docs/signing.md §10.5): each server-held key names its purpose and who may
use it, the seal is the clerk's and follows a valid officer signature (Decree 30/2020 Art. 5,
13(7), 17, 32(2), 33(2)), and every signing attempt on every API path is audited.

A live hub on loopback with the real test PKI (``signing_hub``: ``officer-key`` is personal for
``test-officer``, ``agency-hsm`` is the seal for ``test-clerk``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import select

from hub.auth.keys import ApiKeyService
from hub.db.models import AuditEntry
from signing.samples import sample_pdf
from signing.testpki import TestPki
from tests.api.livehub import LiveHub

DOCUMENTS = "/api/v1/signing/documents"


@dataclass(frozen=True)
class Row:
    action: str
    actor: str
    target: str
    details: dict[str, Any]


def signing_audit(hub: LiveHub) -> list[Row]:
    with hub.db.sessions() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.actor, AuditEntry.target, AuditEntry.details)
            .where(AuditEntry.action.startswith("signing."))
            .order_by(AuditEntry.id)
        ).all()
    return [Row(*row) for row in rows]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign(client: httpx.Client, data: bytes, key_id: str, **options: Any) -> httpx.Response:
    return client.post(
        DOCUMENTS,
        files={"file": ("qd.pdf", data, "application/pdf")},
        data={"key_id": key_id, "options": json.dumps(options)},
    )


def signatures(data: bytes) -> int:
    return len(PdfFileReader(io.BytesIO(data)).embedded_signatures)


def test_the_agency_seal_is_refused_to_an_officer_and_the_refusal_is_audited(signing_hub: LiveHub) -> None:
    pdf = sample_pdf("QD 1")
    with signing_hub.client("officer", timeout=60) as officer:
        as_seal = sign(officer, pdf, "agency-hsm", role="agency", level="B-T")
        invisible = sign(officer, pdf, "agency-hsm", level="B-B")
    for response in (as_seal, invisible):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
        assert b"%PDF" not in response.content
    rows = signing_audit(signing_hub)
    assert [(r.action, r.actor, r.target) for r in rows] == [
        ("signing.documents", "test-officer", f"sha256:{sha(pdf)}")
    ] * 2
    assert {(r.details["key_id"], r.details["purpose"], r.details["outcome"]) for r in rows} == {
        ("agency-hsm", "seal", "refused")
    }
    assert rows[0].details["error_code"] == "forbidden"


def test_a_key_is_denied_to_everyone_it_does_not_name(signing_hub: LiveHub) -> None:
    other = ApiKeyService(signing_hub.db).create("other-officer", "officer", actor="tests").token
    pdf = sample_pdf("QD 2")
    with httpx.Client(
        base_url=signing_hub.base_url, headers={"Authorization": f"Bearer {other}"}, timeout=60
    ) as unlisted:
        assert sign(unlisted, pdf, "officer-key", level="B-B").status_code == 403
    with signing_hub.client("admin") as admin:  # admins manage keys; they do not sign
        assert sign(admin, pdf, "officer-key", level="B-B").status_code == 403
    with signing_hub.client("clerk") as clerk:  # the clerk holds the seal, not the officer's key
        assert sign(clerk, pdf, "officer-key", level="B-B").status_code == 403
    with signing_hub.client("officer") as officer:
        assert sign(officer, pdf, "nope", level="B-B").status_code == 403  # unknown: not disclosed
        # the officer's own key signs personally, never as the agency
        assert sign(officer, pdf, "officer-key", role="agency", level="B-B").status_code == 403
    outcomes = [(r.actor, r.details["key_id"], r.details["outcome"]) for r in signing_audit(signing_hub)]
    assert outcomes == [
        ("other-officer", "officer-key", "refused"),
        ("test-admin", "officer-key", "refused"),
        ("test-clerk", "officer-key", "refused"),
        ("test-officer", "nope", "refused"),
        ("test-officer", "officer-key", "refused"),
    ]


def test_the_clerk_seals_only_after_a_valid_officer_signature(signing_hub: LiveHub) -> None:
    draft = sample_pdf("QD 3")
    with signing_hub.client("clerk", timeout=60) as clerk:
        early = sign(clerk, draft, "agency-hsm", role="agency", level="B-T")
    assert early.status_code == 422, early.text
    assert early.json()["error"]["details"]["reason"] == "seal_requires_officer_signature"

    with signing_hub.client("officer", timeout=60) as officer:
        approved = sign(officer, draft, "officer-key", role="personal", certify=True, level="B-T")
    assert approved.status_code == 200, approved.text
    with signing_hub.client("clerk", timeout=60) as clerk:
        sealed = sign(clerk, approved.content, "agency-hsm", role="agency", level="B-T")
    assert sealed.status_code == 200, sealed.text
    assert signatures(sealed.content) == 2

    rows = signing_audit(signing_hub)
    assert [(r.actor, r.details["purpose"], r.details["outcome"]) for r in rows] == [
        ("test-clerk", "seal", "refused"),
        ("test-officer", "personal", "signed"),
        ("test-clerk", "seal", "signed"),
    ]
    assert rows[1].target == f"sha256:{sha(draft)}"
    assert rows[1].details["output_sha256"] == sha(approved.content)
    assert rows[2].target == f"sha256:{sha(approved.content)}"
    assert rows[2].details["output_sha256"] == sha(sealed.content)


def test_a_failed_signature_is_audited_too(signing_hub: LiveHub) -> None:
    broken = b"%PDF-1.7\n not really a pdf \n%%EOF\n"
    with signing_hub.client("officer") as officer:
        response = sign(officer, broken, "officer-key", level="B-B")
    assert response.status_code == 422
    [row] = signing_audit(signing_hub)
    assert (row.actor, row.target, row.details["outcome"], row.details["error_code"]) == (
        "test-officer",
        f"sha256:{sha(broken)}",
        "failed",
        "invalid_pdf",
    )


def test_batch_signing_checks_the_key_and_audits_each_file(signing_hub: LiveHub) -> None:
    store = signing_hub.app.state.services.files
    saved = [
        store.save(
            sample_pdf(f"QD {i}"), filename=f"qd{i}.pdf", media_type="application/pdf", dossier_code=None
        )
        for i in range(2)
    ]
    ids = [s.id for s in saved]
    with signing_hub.client("officer", timeout=60) as officer:
        refused = officer.post("/api/v1/signing/batch", json={"file_ids": ids, "key_id": "agency-hsm"})
        done = officer.post(
            "/api/v1/signing/batch",
            json={"file_ids": ids, "key_id": "officer-key", "options": {"level": "B-B"}},
        )
    assert refused.status_code == 403
    assert done.status_code == 200, done.text
    assert [i["ok"] for i in done.json()["items"]] == [True, True]
    rows = signing_audit(signing_hub)
    assert [(r.action, r.details["file_id"], r.target, r.details["outcome"]) for r in rows] == [
        ("signing.batch", s.id, f"sha256:{s.sha256}", outcome)
        for outcome in ("refused", "signed")
        for s in saved
    ]


def test_external_signing_is_bound_to_its_preparer_and_audited(
    signing_hub: LiveHub, test_pki: TestPki
) -> None:
    key = serialization.load_pem_private_key(test_pki.officer_key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    pdf = sample_pdf("QD ngoai")
    files = [
        ("file", ("qd.pdf", pdf, "application/pdf")),
        ("certificate", ("officer.pem", test_pki.officer_cert.read_bytes(), "application/x-pem-file")),
        ("chain", ("ca.pem", test_pki.issuing_ca_cert.read_bytes(), "application/x-pem-file")),
    ]
    with signing_hub.client("officer", timeout=60) as officer:
        seal = officer.post(
            "/api/v1/signing/external/prepare", files=files, data={"options": json.dumps({"role": "agency"})}
        )
        prepared = officer.post(
            "/api/v1/signing/external/prepare",
            files=files,
            data={"options": json.dumps({"level": "B-B", "role": "personal"})},
        )
    assert seal.status_code == 403  # an agency signature is the clerk's
    assert prepared.status_code == 200, prepared.text
    request = prepared.json()
    signature = key.sign(
        base64.b64decode(request["digest_to_sign_b64"]), padding.PKCS1v15(), Prehashed(hashes.SHA256())
    )
    body = {"signature_b64": base64.b64encode(signature).decode()}
    path = f"/api/v1/signing/external/{request['request_id']}/complete"
    with signing_hub.client("clerk") as clerk:
        assert clerk.post(path, json=body).status_code == 403
    with signing_hub.client("officer", timeout=60) as officer:
        done = officer.post(path, json=body)
    assert done.status_code == 200, done.text

    rows = signing_audit(signing_hub)
    assert [(r.action, r.actor, r.details["outcome"]) for r in rows] == [
        ("signing.external.prepare", "test-officer", "refused"),
        ("signing.external.prepare", "test-officer", "prepared"),
        ("signing.external.complete", "test-clerk", "refused"),
        ("signing.external.complete", "test-officer", "signed"),
    ]
    assert rows[1].target == f"sha256:{sha(pdf)}"
    assert rows[1].details["request_id"] == request["request_id"]
    assert rows[3].target == f"sha256:{sha(done.content)}"
    assert rows[3].details["key_id"] == rows[1].details["key_id"]
