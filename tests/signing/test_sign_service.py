"""PAdES signing: levels, algorithms, multiple signatures, pre-signing refusals, bad input.

Every produced file is checked three ways: pyHanko's validator (integrity + trust to the test
root), poppler's ``pdfsig`` and ``qpdf --check``.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext

from hub.api.errors import http_status_for
from hub.simulators.pki import RunningPki
from schemas.errors import (
    CertificateRejectedError,
    InvalidPdfError,
    RevocationUnavailableError,
    SigningError,
    TimestampUnavailableError,
    TokenPinError,
)
from signing.keys import Pkcs12KeySource
from signing.models import RevocationPolicy, SignatureLevel, SignOptions, SignResult, SignRole
from signing.samples import sample_pdf, write_sample_pdfs
from signing.signer_service import SigningConfig, SigningService
from signing.trust import TrustStore

Check = Callable[[Path], subprocess.CompletedProcess[str]]
KeyFactory = Callable[..., Pkcs12KeySource]
Sign = Callable[..., tuple[bytes, SignResult]]


def _validate_all(data: bytes, trust_store: TrustStore, **vc_kwargs: object) -> list[object]:
    reader = PdfFileReader(io.BytesIO(data))

    async def go() -> list[object]:
        out = []
        for sig in reader.embedded_regular_signatures:
            vc = trust_store.validation_context(allow_fetching=False, **vc_kwargs)  # type: ignore[arg-type]
            out.append(await async_validate_pdf_signature(sig, signer_validation_context=vc))
        return out

    return asyncio.run(go())


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("level", list(SignatureLevel))
def test_each_pades_level_is_valid(
    level: SignatureLevel,
    sign: Sign,
    trust_store: TrustStore,
    tmp_path: Path,
    pdfsig: Callable[[Path], str],
    qpdf_check: Check,
) -> None:
    signed, result = sign(SignOptions(level=level))
    assert result.level is level
    assert result.certificate is not None
    assert result.certificate.revocation_status == "good"
    assert result.certificate.revocation_source == "ocsp"
    assert result.certificate.ocsp_responses  # evidence kept (Circular 15/2025 §2.2)
    assert result.signed_at.utcoffset() == timedelta(hours=7)

    (status,) = _validate_all(signed, trust_store)
    assert status.bottom_line, status.pretty_print_details()  # type: ignore[attr-defined]
    assert status.trusted  # type: ignore[attr-defined]
    assert (status.timestamp_validity is not None) == (level is not SignatureLevel.B_B)  # type: ignore[attr-defined]

    path = _write(tmp_path, f"{level}.pdf", signed)
    report = pdfsig(path)
    assert "Nguyễn Thị Lấp Lánh" in report
    assert "Signature is Valid" in report
    assert "ETSI.CAdES.detached" in report
    assert qpdf_check(path).returncode == 0

    reader = PdfFileReader(io.BytesIO(signed))
    has_dss = "/DSS" in reader.root
    assert has_dss == (level in (SignatureLevel.B_LT, SignatureLevel.B_LTA))
    sig_types = [s.sig_object_type for s in reader.embedded_signatures]
    if level is SignatureLevel.B_LTA:
        assert sig_types == ["/Sig", "/DocTimeStamp"]
    else:
        assert sig_types == ["/Sig"]


def test_b_lt_validation_data_suffices_offline(
    sign: Sign, trust_store: TrustStore, pki_services: RunningPki
) -> None:
    """B-LT embeds OCSP/CRL in the DSS: validation works with the revocation services down."""
    signed, _ = sign(SignOptions(level=SignatureLevel.B_LT))
    pki_services.set_revocation_available(False)
    reader = PdfFileReader(io.BytesIO(signed))
    dss = DocumentSecurityStore.read_dss(reader)
    assert dss.ocsps or dss.crls
    vc: ValidationContext = dss.as_validation_context(
        {
            "trust_roots": trust_store.anchor_certificates,
            "allow_fetching": False,
            "revocation_mode": "hard-fail",
        }
    )
    status = asyncio.run(
        async_validate_pdf_signature(reader.embedded_signatures[0], signer_validation_context=vc)
    )
    assert status.bottom_line, status.pretty_print_details()
    assert status.revocation_details is None  # no revocation problem


@pytest.mark.parametrize(
    ("key", "pss", "mechanism"),
    [
        ("officer_ecdsa", False, "sha256_ecdsa"),
        ("officer", True, "rsassa_pss"),
        ("officer", False, "sha256_rsa"),
        ("agency", False, "sha256_rsa"),  # RSA-3072, like current VGCA tokens
    ],
)
def test_algorithms(
    key: str,
    pss: bool,
    mechanism: str,
    sign: Sign,
    trust_store: TrustStore,
    tmp_path: Path,
    pdfsig: Callable[[Path], str],
) -> None:
    signed, _ = sign(SignOptions(level=SignatureLevel.B_B), key, prefer_pss=pss)
    (status,) = _validate_all(signed, trust_store)
    assert status.bottom_line  # type: ignore[attr-defined]
    reader = PdfFileReader(io.BytesIO(signed))
    algo = reader.embedded_signatures[0].signer_info["signature_algorithm"]
    assert algo["algorithm"].native == mechanism
    assert "Signature is Valid" in pdfsig(_write(tmp_path, "a.pdf", signed))


def test_officer_then_agency_both_valid(
    sign: Sign, trust_store: TrustStore, tmp_path: Path, pdfsig: Callable[[Path], str], qpdf_check: Check
) -> None:
    """Decree 30 order: competent person (certification, DocMDP P=2) → agency seal, incremental."""
    first, r1 = sign(SignOptions(level=SignatureLevel.B_T, role=SignRole.PERSONAL, certify=True))
    second, r2 = sign(SignOptions(level=SignatureLevel.B_LT, role=SignRole.AGENCY), "agency", pdf=first)
    assert second.startswith(first)  # incremental update: earlier bytes untouched
    assert (r1.field_name, r2.field_name) == ("Sig_personal", "Sig_agency")
    statuses = _validate_all(second, trust_store)
    assert len(statuses) == 2
    for st in statuses:
        assert st.bottom_line, st.pretty_print_details()  # type: ignore[attr-defined]
    assert statuses[0].docmdp_ok  # type: ignore[attr-defined]
    reader = PdfFileReader(io.BytesIO(second))
    cert_sig = reader.embedded_signatures[0]
    assert cert_sig.docmdp_level is not None
    assert cert_sig.docmdp_level.value == 2

    path = _write(tmp_path, "two.pdf", second)
    report = pdfsig(path)
    assert report.count("Signature is Valid") == 2
    assert "Sở Nông nghiệp và Môi trường tỉnh Ninh Bình" in report
    assert qpdf_check(path).returncode == 0


def test_duplicate_field_name_is_refused(sign: Sign) -> None:
    opts = SignOptions(level=SignatureLevel.B_B, field_name="ChuKy")
    once, _ = sign(opts)
    with pytest.raises(SigningError, match="already exists"):
        sign(opts, pdf=once)


# --- pre-signing refusals (Circular 15/2025 §2.2, Annex II) -----------------------------------


@pytest.mark.parametrize(
    ("key", "reason", "vi"),
    [
        ("expired", "expired", "hết hạn"),
        ("revoked", "revoked", "thu hồi"),
        ("wrong_usage", "key_usage", "không được phép dùng để ký"),
        ("untrusted", "untrusted", "không liên kết tới chứng thư gốc tin cậy"),
    ],
)
def test_refused_certificates_write_nothing(
    key: str,
    reason: str,
    vi: str,
    signing_service: SigningService,
    p12_key: KeyFactory,
    tmp_path: Path,
) -> None:
    src = _write(tmp_path, "in.pdf", sample_pdf())
    target = tmp_path / "out" / "signed.pdf"
    with pytest.raises(CertificateRejectedError) as exc:
        signing_service.sign_file(src, target, p12_key(key), SignOptions(level=SignatureLevel.B_B))
    assert exc.value.details["reason"] == reason
    assert vi in exc.value.message_vi
    assert http_status_for(exc.value) == 422
    assert not target.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_revocation_unavailable_warns_by_default(sign: Sign, pki_services: RunningPki) -> None:
    pki_services.set_revocation_available(False)
    signed, result = sign(SignOptions(level=SignatureLevel.B_B))
    assert signed.startswith(b"%PDF")
    assert result.certificate is not None
    assert result.certificate.revocation_status == "unknown"
    assert [w.code for w in result.warnings] == ["revocation_unchecked"]
    assert "không kiểm tra được trạng thái thu hồi" in result.warnings[0].message_vi


def test_revocation_unavailable_refused_by_policy(
    signing_config: SigningConfig, p12_key: KeyFactory, tmp_path: Path, pki_services: RunningPki
) -> None:
    pki_services.set_revocation_available(False)
    signing_config.revocation_policy = RevocationPolicy.REFUSE
    service = SigningService(signing_config)
    src = _write(tmp_path, "in.pdf", sample_pdf())
    with pytest.raises(RevocationUnavailableError) as exc:
        service.sign_file(src, tmp_path / "o.pdf", p12_key("officer"), SignOptions(level=SignatureLevel.B_B))
    assert "Không kiểm tra được" in exc.value.message_vi
    assert not (tmp_path / "o.pdf").exists()


def test_wrong_p12_password(signing_service: SigningService, p12_key: KeyFactory, pdf_bytes: bytes) -> None:
    key = p12_key("officer", password="sai-mat-khau")
    with pytest.raises(TokenPinError) as exc:
        asyncio.run(signing_service.sign_bytes(pdf_bytes, key, SignOptions(level=SignatureLevel.B_B)))
    assert "sai-mat-khau" not in repr(key)
    assert "sai-mat-khau" not in str(exc.value.to_dict())


# --- bad input -------------------------------------------------------------------------------


def _encrypted_pdf(tmp_path: Path) -> bytes:
    src = _write(tmp_path, "plain.pdf", sample_pdf())
    out = tmp_path / "enc.pdf"
    subprocess.run(["qpdf", "--encrypt", "user", "owner", "256", "--", str(src), str(out)], check=True)
    return out.read_bytes()


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated", "no_pages_tree", "encrypted"])
def test_bad_pdfs_are_refused(
    kind: str, signing_service: SigningService, p12_key: KeyFactory, tmp_path: Path
) -> None:
    good = sample_pdf()
    data = {
        "garbage": b"this is not a pdf at all",
        "empty": b"",
        "truncated": good[: len(good) // 3],
        "no_pages_tree": b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
        "encrypted": _encrypted_pdf(tmp_path) if kind == "encrypted" else b"",
    }[kind]
    src = _write(tmp_path, "bad.pdf", data)
    target = tmp_path / "signed.pdf"
    with pytest.raises(InvalidPdfError) as exc:
        signing_service.sign_file(src, target, p12_key("officer"), SignOptions(level=SignatureLevel.B_B))
    assert exc.value.message_vi
    if kind == "encrypted":
        assert "mã hóa" in exc.value.message_vi
    assert not target.exists()


def test_timestamp_level_without_tsa(trust_store: TrustStore, p12_key: KeyFactory, pdf_bytes: bytes) -> None:
    service = SigningService(SigningConfig(trust_store=trust_store, tsa=None))
    with pytest.raises(SigningError, match="time-stamping authority"):
        asyncio.run(service.sign_bytes(pdf_bytes, p12_key("officer"), SignOptions(level=SignatureLevel.B_T)))


def test_tsa_down_is_retryable_and_writes_nothing(
    signing_service: SigningService, p12_key: KeyFactory, tmp_path: Path, pki_services: RunningPki
) -> None:
    pki_services.set_tsa_available(False)
    src = _write(tmp_path, "in.pdf", sample_pdf())
    target = tmp_path / "signed.pdf"
    with pytest.raises(TimestampUnavailableError) as exc:
        signing_service.sign_file(src, target, p12_key("officer"), SignOptions(level=SignatureLevel.B_T))
    assert exc.value.retryable
    assert not target.exists()
    assert list(tmp_path.iterdir()) == [src]


def test_crl_fallback_when_ocsp_is_down(sign: Sign, pki_services: RunningPki) -> None:
    """Circular 15/2025 Annex II: OCSP, else the latest CRL."""
    pki_services.set_ocsp_available(False)
    _, result = sign(SignOptions(level=SignatureLevel.B_B))
    assert result.certificate is not None
    assert result.certificate.revocation_status == "good"
    assert result.certificate.revocation_source == "crl"
    assert result.certificate.crls
    assert not result.warnings
    with pytest.raises(CertificateRejectedError) as exc:
        sign(SignOptions(level=SignatureLevel.B_B), "revoked")
    assert exc.value.details["reason"] == "revoked"


def test_not_yet_valid_at_signing_time(test_pki: object, trust_store: TrustStore) -> None:
    from datetime import datetime

    from schemas.timefmt import VN_TZ
    from signing.precheck import acheck_signing_certificate
    from signing.trust import load_certificates

    cert = load_certificates(test_pki.officer_cert)[0]  # type: ignore[attr-defined]
    with pytest.raises(CertificateRejectedError) as exc:
        asyncio.run(
            acheck_signing_certificate(cert, trust_store=trust_store, at=datetime(2020, 1, 1, tzinfo=VN_TZ))
        )
    assert exc.value.details["reason"] == "not_yet_valid"
    assert "chưa có hiệu lực" in exc.value.message_vi


def test_sign_options_validation() -> None:
    import unicodedata

    from pydantic import ValidationError

    nfd = unicodedata.normalize("NFD", "Sở Nông nghiệp và Môi trường")
    opts = SignOptions(role=SignRole.COPY, agency_name=nfd)
    assert opts.agency_name == unicodedata.normalize("NFC", nfd)
    with pytest.raises(ValidationError):
        SignOptions(role=SignRole.COPY)
    with pytest.raises(ValidationError):
        SignOptions(role=SignRole.ATTACHMENT, agency_name="x")
    with pytest.raises(ValidationError):
        SignOptions(agency_name="a\x00b")
    with pytest.raises(ValidationError):
        SignOptions(field_name="x" * 65)


def test_weak_rsa_key_is_refused(test_pki: object, trust_store: TrustStore) -> None:
    from datetime import UTC, datetime

    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from signing.precheck import acheck_signing_certificate

    ca_cert = x509.load_pem_x509_certificate(test_pki.issuing_ca_cert.read_bytes())  # type: ignore[attr-defined]
    ca_key = serialization.load_pem_private_key(test_pki.issuing_ca_key.read_bytes(), password=None)  # type: ignore[attr-defined]
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Khóa yếu")]))
        .issuer_name(ca_cert.subject)
        .public_key(weak.public_key())
        .serial_number(0x9999)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    weak_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    with pytest.raises(CertificateRejectedError) as exc:
        asyncio.run(acheck_signing_certificate(weak_cert, trust_store=trust_store))
    assert exc.value.details["reason"] == "weak_key"
    assert "2048" in exc.value.message_vi


def test_tsa_transient_failure_is_retried(
    sign: Sign, pki_services: RunningPki, trust_store: TrustStore
) -> None:
    pki_services.fail_next_tsa_requests(1)  # the fixture allows 2 attempts
    before = pki_services.counters["tsa"]
    signed, _ = sign(SignOptions(level=SignatureLevel.B_T))
    assert pki_services.counters["tsa"] - before == 2
    (status,) = _validate_all(signed, trust_store)
    assert status.timestamp_validity is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize("digest", ["sha256", "sha384", "sha512"])
def test_digest_algorithms_and_repeated_signing(
    digest: str,
    signing_service: SigningService,
    p12_key: KeyFactory,
    trust_store: TrustStore,
    tmp_path: Path,
    pdfsig: Callable[[Path], str],
) -> None:
    """The loaded-key signer caches attribute templates per digest: every document still gets
    its own message digest (several documents in one batch, each valid)."""
    inputs = write_sample_pdfs(tmp_path / "in", 3)
    result = signing_service.sign_batch(
        inputs,
        tmp_path / "out",
        p12_key("officer"),
        SignOptions(level=SignatureLevel.B_T, digest_algorithm=digest),
    )
    assert result.failed == 0
    for item in result.items:
        assert item.output_path is not None
        data = item.output_path.read_bytes()
        (status,) = _validate_all(data, trust_store)
        assert status.bottom_line  # type: ignore[attr-defined]
        assert status.md_algorithm == digest  # type: ignore[attr-defined]
        assert "Signature is Valid" in pdfsig(item.output_path)
