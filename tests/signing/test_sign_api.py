"""The signing API on a real loopback hub (started by the runtime as ``hub serve`` does; real
database, real file store, real PKI)."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.samples import sample_pdf
from signing.testpki import TestPki
from tests.api.livehub import LiveHub
from tests.signing.decree30_docs import quyet_dinh, scan_like
from tests.signing.test_placement import _assert_between, _widgets


def _officer(hub: LiveHub) -> httpx.Client:
    return hub.client("officer", timeout=60)  # signing with a time-stamp may be slow on a busy machine


def _signatures(data: bytes) -> int:
    return len(PdfFileReader(io.BytesIO(data)).embedded_signatures)


def test_sign_upload(signing_hub: LiveHub) -> None:
    with _officer(signing_hub) as c:
        r = c.post(
            "/api/v1/signing/documents",
            files={"file": ("qd.pdf", sample_pdf(), "application/pdf")},
            data={"key_id": "officer-key", "options": json.dumps({"level": "B-T"})},
        )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-signing-level"] == "B-T"
    assert r.headers["x-signing-revocation"] == "good"
    assert r.headers["x-signing-time"].endswith("+07:00")
    assert _signatures(r.content) == 1


def test_auth_and_roles(signing_hub: LiveHub) -> None:
    files = {"file": ("qd.pdf", sample_pdf(), "application/pdf")}
    with signing_hub.client() as c:
        assert (
            c.post("/api/v1/signing/documents", files=files, data={"key_id": "officer-key"}).status_code
            == 401
        )
    with signing_hub.client("technician") as c:
        assert (
            c.post("/api/v1/signing/documents", files=files, data={"key_id": "officer-key"}).status_code
            == 403
        )


@pytest.mark.parametrize(
    ("files", "data", "status", "code"),
    [
        ({"file": ("x.pdf", b"not a pdf", "application/pdf")}, {"key_id": "officer-key"}, 422, "invalid_pdf"),
        ({"file": ("x.pdf", b"%PDF-1.7", "application/pdf")}, {"key_id": "nope"}, 403, "forbidden"),
        ({}, {"key_id": "officer-key"}, 422, "invalid_input"),
        (
            {"file": ("x.pdf", b"%PDF", "application/pdf")},
            {"key_id": "officer-key", "options": "{bad"},
            422,
            "invalid_input",
        ),
        (
            {"file": ("x.pdf", b"%PDF", "application/pdf")},
            {"key_id": "officer-key", "options": json.dumps({"level": "B-Z"})},
            422,
            "invalid_input",
        ),
    ],
)
def test_bad_requests(
    signing_hub: LiveHub, files: dict[str, object], data: dict[str, str], status: int, code: str
) -> None:
    with _officer(signing_hub) as c:
        r = c.post("/api/v1/signing/documents", files=files or {"other": ("a", b"x")}, data=data)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["message_vi"]


def test_oversized_upload(signing_hub: LiveHub) -> None:
    big = sample_pdf(padding_bytes=200 * 1024)
    with _officer(signing_hub) as c:
        r = c.post(
            "/api/v1/signing/documents",
            files={"file": ("big.pdf", big, "application/pdf")},
            data={"key_id": "officer-key"},
        )
    assert r.status_code == 413


def test_batch_of_stored_files(signing_hub: LiveHub) -> None:
    store = signing_hub.app.state.services.files
    ids = [
        store.save(sample_pdf(f"QD {i}"), filename=f"qd{i}.pdf", media_type="application/pdf").id
        for i in range(3)
    ]
    with _officer(signing_hub) as c:
        r = c.post(
            "/api/v1/signing/batch",
            json={"file_ids": ids, "key_id": "officer-key", "options": {"level": "B-B"}},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert [i["ok"] for i in body["items"]] == [True, True, True]
        assert body["certificate"]["revocation_status"] == "good"
        signed_id = body["items"][0]["signed_file_id"]
        got = c.get(f"/files/{signed_id}")
        assert got.status_code == 200
        assert _signatures(got.content) == 1
        r = c.post("/api/v1/signing/batch", json={"file_ids": ["f" * 32], "key_id": "officer-key"})
        assert r.status_code == 404


def test_external_flow_over_http(signing_hub: LiveHub, test_pki: TestPki) -> None:
    cert_pem = test_pki.officer_cert.read_bytes()
    key = serialization.load_pem_private_key(test_pki.officer_key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    with _officer(signing_hub) as c:
        r = c.post(
            "/api/v1/signing/external/prepare",
            files=[
                ("file", ("qd.pdf", sample_pdf(), "application/pdf")),
                ("certificate", ("officer.pem", cert_pem, "application/x-pem-file")),
                ("chain", ("ca.pem", test_pki.issuing_ca_cert.read_bytes(), "application/x-pem-file")),
            ],
            data={"options": json.dumps({"level": "B-T", "role": "invisible"})},
        )
        assert r.status_code == 200, r.text
        req = r.json()
        digest = base64.b64decode(req["digest_to_sign_b64"])
        sig = key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        bad = c.post(
            f"/api/v1/signing/external/{req['request_id']}/complete",
            json={"signature_b64": base64.b64encode(b"\x01" * 256).decode()},
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "signature_mismatch"
        done = c.post(
            f"/api/v1/signing/external/{req['request_id']}/complete",
            json={"signature_b64": base64.b64encode(sig).decode()},
        )
        assert done.status_code == 200, done.text
        assert _signatures(done.content) == 1
        again = c.post(
            f"/api/v1/signing/external/{req['request_id']}/complete",
            json={"signature_b64": base64.b64encode(sig).decode()},
        )
        assert again.status_code == 410
        junk = c.post(f"/api/v1/signing/external/{req['request_id']}/complete", json={"signature_b64": "***"})
        assert junk.status_code == 422


def test_sign_stored_document_by_id(signing_hub: LiveHub) -> None:
    store = signing_hub.app.state.services.files
    fid = store.save(sample_pdf("QD"), filename="qd.pdf", media_type="application/pdf").id
    with _officer(signing_hub) as c:
        r = c.post("/api/v1/signing/documents", data={"file_id": fid, "key_id": "officer-key"})
        assert r.status_code == 200, r.text
        assert _signatures(r.content) == 1
        missing = c.post("/api/v1/signing/documents", data={"file_id": "f" * 32, "key_id": "officer-key"})
        assert missing.status_code == 404


def test_signature_position_and_refusal(signing_hub: LiveHub) -> None:
    """Placement over the API (docs/signing.md §5.5): found on the page, explicit, or refused."""

    def post(pdf: bytes, options: dict[str, object]) -> tuple[int, bytes, dict[str, object]]:
        with signing_hub.client("officer", timeout=60) as c:
            r = c.post(
                "/api/v1/signing/documents",
                files={"file": ("qd.pdf", pdf, "application/pdf")},
                data={"key_id": "officer-key", "options": json.dumps(options)},
            )
        return r.status_code, r.content, (r.json() if r.status_code != 200 else {})

    base = {"level": "B-B", "role": "personal"}
    status, _, body = post(scan_like(), base)
    assert status == 422
    assert body["error"]["code"] == "signature_placement_not_found"  # type: ignore[index]
    position = {"page": 0, "x": 300, "y": 150, "width": 160, "height": 64}
    status, signed, _ = post(scan_like(), {**base, "position": position})
    assert status == 200
    assert _widgets(signed)["Sig_personal"] == (0, (300, 150, 460, 214))
    # a readable Quyết định needs neither
    doc = quyet_dinh("word")
    status, signed, _ = post(doc.pdf, base)
    assert status == 200
    _assert_between(_widgets(signed)["Sig_personal"][1], doc, "PHÓ GIÁM ĐỐC", "Nguyễn Văn An")
