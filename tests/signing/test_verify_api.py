"""``POST /api/v1/verification`` over real HTTP (uvicorn on loopback) and the ``hub verify`` CLI."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from hub.api.errors import install_error_handlers
from hub.api.routes.verification import require_verifier, router
from hub.auth.keys import Principal
from hub.commands.verify import app as cli_app
from hub.db.models import ApiRole
from hub.simulators.pki import RunningPki
from signing.trust import TrustStore
from signing.verification import VerificationPolicy
from tests.signing.verify_helpers import append_content_change, make_pdf, overwrite_signed_bytes, sign

LIMIT = 200_000


@pytest.fixture(scope="module")
def signed_pdf(running_pki: RunningPki) -> bytes:
    return sign(make_pdf(), running_pki, running_pki.pki.officer_p12, timestamp=True)


def _build_app(policy: VerificationPolicy, *, authenticated: bool) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    app.state.verification_policy = policy

    install_error_handlers(app)

    if authenticated:
        app.dependency_overrides[require_verifier] = lambda: Principal(name="van-thu", role=ApiRole.OFFICER)
    return app


class _Server:
    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def base_url(running_pki: RunningPki) -> Iterator[str]:
    policy = VerificationPolicy.from_trust_store(
        TrustStore.from_test_pki(running_pki.pki), max_pdf_bytes=LIMIT
    )
    with _Server(_build_app(policy, authenticated=True)) as url:
        yield url


URL = "/api/v1/verification"


def test_multipart_upload_returns_json_report(base_url: str, signed_pdf: bytes) -> None:
    r = httpx.post(
        base_url + URL, files={"file": ("Quyết định.pdf", signed_pdf, "application/pdf")}, timeout=60
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verdict"] == "valid"
    assert body["verdict_vi"] == "hợp lệ"
    assert body["signatures"][0]["pades_level"] == "B-T"
    assert body["signatures"][0]["signer_name"] == "Nguyễn Thị Lấp Lánh"
    assert body["file_name"] == "Quyết định.pdf"


@pytest.mark.parametrize(
    ("lang", "title", "verdict"),
    [
        ("vi", "KẾT QUẢ KIỂM TRA CHỮ KÝ SỐ", "Kết luận: HỢP LỆ"),
        ("en", "DIGITAL SIGNATURE VERIFICATION REPORT", "Verdict: VALID"),
    ],
)
def test_raw_pdf_body_and_text_report(
    base_url: str, signed_pdf: bytes, lang: str, title: str, verdict: str
) -> None:
    r = httpx.post(
        base_url + URL,
        params={"format": "text", "lang": lang},
        content=signed_pdf,
        headers={"content-type": "application/pdf"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert title in r.text
    assert verdict in r.text


def test_tampered_upload_is_reported_invalid_not_an_error(base_url: str, running_pki: RunningPki) -> None:
    pdf = overwrite_signed_bytes(sign(make_pdf(), running_pki, running_pki.pki.officer_p12, pades=False))
    r = httpx.post(base_url + URL, files={"file": ("x.pdf", pdf, "application/pdf")}, timeout=60)
    assert r.status_code == 200
    assert r.json()["verdict"] == "invalid"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"\x89PNG\r\n\x1a\n not a pdf", "not_pdf"),
        (make_pdf(), "unsigned_pdf"),
        (b"%PDF-1.7\n" + b"\x00junk" * 100, "invalid_pdf"),
    ],
    ids=["png", "unsigned", "broken"],
)
def test_bad_uploads_get_clear_4xx(base_url: str, content: bytes, code: str) -> None:
    r = httpx.post(base_url + URL, files={"file": ("x.pdf", content, "application/pdf")}, timeout=60)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"]["code"] == code
    assert body["error"]["message_vi"]


def test_oversized_upload_is_413(base_url: str) -> None:
    big = b"%PDF-1.7\n" + b"0" * (LIMIT + 10)
    multipart = httpx.post(base_url + URL, files={"file": ("big.pdf", big, "application/pdf")}, timeout=60)
    assert multipart.status_code == 413
    assert multipart.json()["error"]["code"] == "payload_too_large"
    raw = httpx.post(base_url + URL, content=big, headers={"content-type": "application/pdf"}, timeout=60)
    assert raw.status_code == 413


def test_chunked_oversized_body_is_413(base_url: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"%PDF-1.7\n"
        for _ in range(LIMIT // 10_000 + 2):
            yield b"0" * 10_000

    r = httpx.post(base_url + URL, content=chunks(), headers={"content-type": "application/pdf"}, timeout=60)
    assert r.status_code == 413


def test_missing_file_field_and_wrong_content_type(base_url: str, signed_pdf: bytes) -> None:
    r = httpx.post(
        base_url + URL, data={"note": "no file"}, files={"other": ("a.pdf", signed_pdf)}, timeout=60
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_input"
    r = httpx.post(base_url + URL, content=b"{}", headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 422


def test_requires_credentials(running_pki: RunningPki, signed_pdf: bytes) -> None:
    policy = VerificationPolicy.from_trust_store(TrustStore.from_test_pki(running_pki.pki))
    with _Server(_build_app(policy, authenticated=False)) as url:
        r = httpx.post(url + URL, content=signed_pdf, headers={"content-type": "application/pdf"}, timeout=60)
    assert r.status_code == 401


# --- CLI -------------------------------------------------------------------------------------


def test_cli_valid_json_and_text(running_pki: RunningPki, signed_pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "qd.pdf"
    path.write_bytes(signed_pdf)
    anchor = str(running_pki.pki.root_cert)
    runner = CliRunner()
    result = runner.invoke(cli_app, [str(path), "--trust-anchor", anchor, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["verdict"] == "valid"
    text = runner.invoke(cli_app, [str(path), "-t", anchor])
    assert text.exit_code == 0
    assert "Kết luận: HỢP LỆ" in text.stdout


def test_cli_invalid_and_bad_input_exit_codes(
    running_pki: RunningPki, signed_pdf: bytes, tmp_path: Path
) -> None:
    anchor = str(running_pki.pki.root_cert)
    runner = CliRunner()
    tampered = tmp_path / "bad.pdf"
    tampered.write_bytes(overwrite_signed_bytes(signed_pdf))
    result = runner.invoke(cli_app, [str(tampered), "-t", anchor, "--lang", "en"])
    assert result.exit_code == 1
    assert "Verdict: NOT VALID" in result.stdout
    notpdf = tmp_path / "x.pdf"
    notpdf.write_bytes(b"hello")
    result = runner.invoke(cli_app, [str(notpdf), "-t", anchor])
    assert result.exit_code == 4
    assert "not_pdf" in result.stderr
    missing = runner.invoke(cli_app, [str(tmp_path / "nope.pdf"), "-t", anchor])
    assert missing.exit_code == 4
    # production anchors: the test PKI is not trusted -> invalid
    prod = runner.invoke(cli_app, [str(tmp_path / "bad.pdf"), "--offline"])
    assert prod.exit_code == 1


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"hello, not a PDF", "not_pdf"), (None, "invalid_pdf")],
    ids=["not-pdf", "truncated"],
)
def test_cli_json_format_prints_a_json_error_for_unreadable_input(
    running_pki: RunningPki, signed_pdf: bytes, tmp_path: Path, content: bytes | None, code: str
) -> None:
    path = tmp_path / "in.pdf"
    path.write_bytes(content if content is not None else signed_pdf[: len(signed_pdf) // 3])
    result = CliRunner().invoke(cli_app, [str(path), "-t", str(running_pki.pki.root_cert), "-f", "json"])
    assert result.exit_code == 4
    body = json.loads(result.stdout)
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["message_vi"]
    assert isinstance(body["error"]["details"], dict)
    missing = CliRunner().invoke(cli_app, [str(tmp_path / "nope.pdf"), "-f", "json"])
    assert missing.exit_code == 4
    assert json.loads(missing.stdout)["error"]["code"] == "file_not_found"


def test_api_report_of_a_changed_document_is_consistent_and_plain(
    base_url: str, running_pki: RunningPki
) -> None:
    """A change after signing: TOTAL-FAILED (not the process's TOTAL-PASSED), no library reprs."""
    pdf = append_content_change(sign(make_pdf(), running_pki, running_pki.pki.officer_p12))
    r = httpx.post(base_url + URL, files={"file": ("x.pdf", pdf, "application/pdf")}, timeout=60)
    assert r.status_code == 200
    sig = r.json()["signatures"][0]
    assert (sig["verdict"], sig["ades_indication"], sig["ades_subindication"]) == (
        "invalid",
        "TOTAL-FAILED",
        "FORMAT_FAILURE",
    )
    text = httpx.post(
        base_url + URL,
        params={"format": "text", "lang": "en"},
        content=pdf,
        headers={"content-type": "application/pdf"},
        timeout=60,
    ).text
    for body in (r.text, text):
        for bad in ("Reference(", "idnum=", "<pyhanko"):
            assert bad not in body


def test_schema_endpoint(base_url: str) -> None:
    r = httpx.get(base_url + URL + "/schema", timeout=30)
    assert r.status_code == 200
    schema = r.json()
    assert {"verdict", "signatures", "schema_version"} <= set(schema["properties"])
