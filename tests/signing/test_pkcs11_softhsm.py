"""PKCS#11 key source against a real SoftHSM2 token (temp SOFTHSM2_CONF, keys + certificates
imported from the test PKI)."""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from typer.testing import CliRunner, Result

from hub.api.errors import http_status_for
from hub.commands.sign import app as sign_app
from hub.simulators.pki import RunningPki
from schemas.errors import SigningError, TokenPinError
from signing.keys import Pkcs11KeySource, Secret
from signing.models import SignatureLevel, SignOptions, SignRole
from signing.samples import sample_pdf, write_sample_pdfs
from signing.signer_service import SigningService
from signing.testpki import TestPki
from signing.trust import TrustStore
from tests.signing.softhsm_support import MODULE, SoftHsm

TOKEN = "hub-test-token"
PIN = "246810"


@pytest.fixture(scope="session")
def softhsm_token(softhsm: SoftHsm, test_pki: TestPki) -> Path:
    """A SoftHSM2 token holding the officer (RSA), officer_ecdsa keys and the CA chain; the
    session's ``SOFTHSM2_CONF``."""
    softhsm.token(
        TOKEN,
        PIN,
        keys=[(test_pki.officer_key, "officer", "01"), (test_pki.officer_ecdsa_key, "officer_ecdsa", "02")],
        certificates=[
            (test_pki.officer_cert, "officer", b"\x01"),
            (test_pki.officer_ecdsa_cert, "officer_ecdsa", b"\x02"),
            (test_pki.issuing_ca_cert, "issuing", b"\x10"),
            (test_pki.root_cert, "root", b"\x11"),
        ],
    )
    return softhsm.conf


def _source(label: str = "officer", pin: str = PIN, **kw: object) -> Pkcs11KeySource:
    return Pkcs11KeySource(
        module_path=MODULE,
        pin=Secret(pin),
        token_label=TOKEN,
        key_label=label,
        cert_label=label,
        **kw,  # type: ignore[arg-type]
    )


def _valid(data: bytes, trust_store: TrustStore) -> bool:
    reader = PdfFileReader(io.BytesIO(data))
    st = asyncio.run(
        async_validate_pdf_signature(
            reader.embedded_signatures[0],
            signer_validation_context=trust_store.validation_context(allow_fetching=False),
        )
    )
    return bool(st.bottom_line)


@pytest.mark.parametrize(("label", "raw"), [("officer", False), ("officer_ecdsa", True)])
def test_sign_with_token(
    label: str,
    raw: bool,
    softhsm_token: Path,
    signing_service: SigningService,
    trust_store: TrustStore,
    tmp_path: Path,
    pdfsig: Callable[[Path], str],
) -> None:
    src = tmp_path / "in.pdf"
    src.write_bytes(sample_pdf())
    out = tmp_path / "out.pdf"
    result = signing_service.sign_file(
        src,
        out,
        _source(label, use_raw_mechanism=raw),
        SignOptions(level=SignatureLevel.B_T, role=SignRole.PERSONAL),
    )
    assert result.certificate is not None
    assert result.certificate.revocation_status == "good"
    data = out.read_bytes()
    assert _valid(data, trust_store)
    assert "Signature is Valid" in pdfsig(out)


def test_wrong_pin(softhsm_token: Path, signing_service: SigningService, tmp_path: Path) -> None:
    src = tmp_path / "in.pdf"
    src.write_bytes(sample_pdf())
    source = _source(pin="000000")
    with pytest.raises(TokenPinError) as exc:
        signing_service.sign_file(src, tmp_path / "out.pdf", source, SignOptions(level=SignatureLevel.B_B))
    assert http_status_for(exc.value) == 401
    assert "PIN" in exc.value.message_vi
    assert "000000" not in repr(source)
    assert "000000" not in str(exc.value.to_dict())
    assert not (tmp_path / "out.pdf").exists()


def test_unknown_token_and_module(softhsm_token: Path, tmp_path: Path) -> None:
    from schemas.errors import ConfigurationError

    with (
        pytest.raises(SigningError),
        Pkcs11KeySource(MODULE, Secret(PIN), token_label="no-such-token").open(),
    ):
        pass
    with (
        pytest.raises(ConfigurationError),
        Pkcs11KeySource(tmp_path / "nope.so", Secret(PIN), token_label=TOKEN).open(),
    ):
        pass


def test_session_closed_after_use(softhsm_token: Path) -> None:
    import pkcs11

    with _source().open() as signer:
        session = signer.pkcs11_session
        assert len(session.generate_random(64)) == 8
    with pytest.raises(pkcs11.PKCS11Error):
        session.generate_random(64)


def test_batch_with_token_in_worker_processes(
    softhsm_token: Path, signing_service: SigningService, tmp_path: Path
) -> None:
    inputs = write_sample_pdfs(tmp_path / "in", 4)
    result = signing_service.sign_batch(
        inputs, tmp_path / "out", _source(), SignOptions(level=SignatureLevel.B_B), workers=2
    )
    assert result.failed == 0, result.items


def test_pin_never_logged(
    softhsm_token: Path, signing_service: SigningService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    src = tmp_path / "in.pdf"
    src.write_bytes(sample_pdf())
    signing_service.sign_file(src, tmp_path / "ok.pdf", _source(), SignOptions(level=SignatureLevel.B_B))
    with pytest.raises(TokenPinError):
        signing_service.sign_file(
            src, tmp_path / "bad.pdf", _source(pin="97531"), SignOptions(level=SignatureLevel.B_B)
        )
    assert PIN not in caplog.text
    assert "97531" not in caplog.text
    assert "PKCS#11 session closed" in caplog.text


def _cli(
    softhsm_token: Path, tmp_path: Path, pki_services: RunningPki, test_pki: TestPki, *select: str
) -> Result:
    """``hub sign`` with the SoftHSM token, auditing into a migrated SQLite database."""
    src = tmp_path / "in"
    write_sample_pdfs(src, 1)
    return CliRunner().invoke(
        sign_app,
        [
            str(src),
            "--out",
            str(tmp_path / "out"),
            "--pkcs11-module",
            str(MODULE),
            "--token-label",
            TOKEN,
            *select,
            "-t",
            str(test_pki.root_cert),
            "--tsa-url",
            pki_services.tsa_url,
        ],
        env={"HUB_SIGN_SECRET": PIN, "SOFTHSM2_CONF": str(softhsm_token)},
    )


@pytest.fixture
def audit_db(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "hub.db"
    shutil.copy(sqlite_template, target)
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{target}")


@pytest.mark.usefixtures("audit_db")
def test_cli_label_not_on_token_names_what_is_there(
    softhsm_token: Path, tmp_path: Path, pki_services: RunningPki, test_pki: TestPki
) -> None:
    """The usual mismatch with real tokens: one bilingual line listing the token's labels and
    ids, exit 4, no traceback (docs/signing.md §6.4)."""
    result = _cli(softhsm_token, tmp_path, pki_services, test_pki, "--key-label", "chu-ky-so")
    assert result.exit_code == 4, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "'chu-ky-so'" in line
    assert "label='officer' id=01" in line
    assert "--key-id" in line
    assert "token có" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("audit_db")
def test_cli_selects_key_and_certificate_by_id(
    softhsm_token: Path, tmp_path: Path, pki_services: RunningPki, test_pki: TestPki, trust_store: TrustStore
) -> None:
    result = _cli(softhsm_token, tmp_path, pki_services, test_pki, "--key-id", "01", "--cert-id", "01")
    assert result.exit_code == 0, result.output
    (signed,) = (tmp_path / "out").iterdir()
    assert _valid(signed.read_bytes(), trust_store)
