"""External signing round trip: the hub prepares, the "officer's tool" (here: the officer's key
used outside the hub) signs, the hub completes. Mismatch, expiry, replay and storage variants."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature

from hub.api.errors import http_status_for
from schemas.errors import CertificateRejectedError, InvalidInputError
from signing.external import (
    ExternalSignatureMismatchError,
    ExternalSigningExpiredError,
    ExternalSigningRequest,
    ExternalSigningService,
)
from signing.models import SignatureLevel, SignOptions, SignRole
from signing.samples import sample_pdf
from signing.signer_service import SigningService
from signing.store import FileSystemPendingStore, InMemoryPendingStore, PendingStore
from signing.testpki import TestPki
from signing.trust import TrustStore
from tests.signing.pdfa_checks import check_pdfa_rules, check_pdfa_validator
from tests.signing.pdfa_samples import pdfa_sample


def _key(pki: TestPki, name: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(getattr(pki, f"{name}_key").read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return key


def _cert_der(pki: TestPki, name: str) -> bytes:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(getattr(pki, f"{name}_cert").read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


def _chain(pki: TestPki) -> list[bytes]:
    return [_cert_der(pki, "issuing_ca"), _cert_der(pki, "root")]


def _tool_sign(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, digest_b64: str, *, raw_ecdsa: bool = False
) -> bytes:
    """What a token tool does: sign the prehashed SHA-256 digest."""
    digest = base64.b64decode(digest_b64)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    der = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    if raw_ecdsa:
        r, s = decode_dss_signature(der)
        return r.to_bytes(32) + s.to_bytes(32)
    return der


@pytest.fixture(params=["memory", "filesystem"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> PendingStore:
    if request.param == "memory":
        return InMemoryPendingStore()
    return FileSystemPendingStore(tmp_path / "pending")


@pytest.fixture
def external(signing_service: SigningService, store: PendingStore) -> ExternalSigningService:
    return ExternalSigningService(signing_service, store)


def _prepare(
    service: ExternalSigningService,
    pki: TestPki,
    name: str = "officer",
    options: SignOptions | None = None,
    pdf: bytes | None = None,
) -> ExternalSigningRequest:
    """The hub's half: prepare a signature of ``pdf`` (the sample PDF) by ``name`` (B-B unless
    ``options``)."""
    options = options or SignOptions(level=SignatureLevel.B_B)
    document = sample_pdf() if pdf is None else pdf
    return asyncio.run(service.prepare(document, _cert_der(pki, name), options, chain_der=_chain(pki)))


def _tool_cms(pki: TestPki, req: ExternalSigningRequest, name: str) -> bytes:
    """What a tool returning a whole CMS sends: the prepared signed attributes, signed as ``name``."""
    from asn1crypto import cms
    from pyhanko.sign.signers import ExternalSigner
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    from signing.trust import load_certificates

    cert = load_certificates(getattr(pki, f"{name}_cert"))[0]
    sig = _tool_sign(_key(pki, name), req.digest_to_sign_b64)
    ext = ExternalSigner(cert, SimpleCertificateStore(), signature_value=sig)
    attrs = cms.CMSAttributes.load(base64.b64decode(req.data_to_sign_b64))
    ci = asyncio.run(ext.async_sign_prescribed_attributes("sha256", signed_attrs=attrs))
    return bytes(ci.dump())


def _valid(data: bytes, trust_store: TrustStore) -> bool:
    reader = PdfFileReader(io.BytesIO(data))
    st = asyncio.run(
        async_validate_pdf_signature(
            reader.embedded_regular_signatures[-1],
            signer_validation_context=trust_store.validation_context(allow_fetching=False),
        )
    )
    return bool(st.bottom_line)


@pytest.mark.parametrize(
    ("name", "level", "raw_ecdsa"),
    [
        ("officer", SignatureLevel.B_T, False),
        ("officer", SignatureLevel.B_B, False),
        ("officer", SignatureLevel.B_LT, False),
        ("officer", SignatureLevel.B_LTA, False),
        ("officer_ecdsa", SignatureLevel.B_T, True),
    ],
)
def test_round_trip(
    name: str,
    level: SignatureLevel,
    raw_ecdsa: bool,
    external: ExternalSigningService,
    test_pki: TestPki,
    trust_store: TrustStore,
    tmp_path: Path,
    pdfsig: Callable[[Path], str],
) -> None:
    req = _prepare(external, test_pki, name, SignOptions(level=level, role=SignRole.PERSONAL))
    assert req.certificate is not None
    assert req.certificate.revocation_status == "good"
    sig = _tool_sign(_key(test_pki, name), req.digest_to_sign_b64, raw_ecdsa=raw_ecdsa)
    signed, pending = asyncio.run(external.complete(req.request_id, signature=sig))
    assert pending.field_name == "Sig_personal"
    assert _valid(signed, trust_store)
    path = tmp_path / "ext.pdf"
    path.write_bytes(signed)
    assert "Signature is Valid" in pdfsig(path)
    reader = PdfFileReader(io.BytesIO(signed))
    unsigned = reader.embedded_signatures[0].signer_info["unsigned_attrs"]
    has_ts = unsigned.native is not None and any(
        a["type"].native == "signature_time_stamp_token" for a in unsigned
    )
    assert has_ts == (level is not SignatureLevel.B_B)
    assert ("/DSS" in reader.root) == (level in (SignatureLevel.B_LT, SignatureLevel.B_LTA))
    kinds = [s.sig_object_type for s in reader.embedded_signatures]
    assert kinds == (["/Sig", "/DocTimeStamp"] if level is SignatureLevel.B_LTA else ["/Sig"])
    # one-time use: a replay is refused
    with pytest.raises(ExternalSigningExpiredError):
        asyncio.run(external.complete(req.request_id, signature=sig))


@pytest.mark.parametrize("part", [1, 2])
def test_b_lta_external_signature_keeps_pdfa(
    external: ExternalSigningService, test_pki: TestPki, trust_store: TrustStore, part: int
) -> None:
    """The officer's token at B-LTA on a PDF/A input: the DSS is written without VRI and the
    time-stamping authority's data before the document time-stamp, so the time-stamp covers the
    whole file (ISO 19005-2 §6.4.3), as for server-held keys (signing.pdfa.pdfa_dss_settings)."""
    options = SignOptions(level=SignatureLevel.B_LTA, role=SignRole.INVISIBLE)
    req = _prepare(external, test_pki, options=options, pdf=pdfa_sample(part))
    signed, _ = asyncio.run(
        external.complete(
            req.request_id, signature=_tool_sign(_key(test_pki, "officer"), req.digest_to_sign_b64)
        )
    )
    assert _valid(signed, trust_store)
    dss = PdfFileReader(io.BytesIO(signed)).root["/DSS"]
    assert "/OCSPs" in dss or "/CRLs" in dss
    assert "/VRI" not in dss
    check_pdfa_rules(signed, part)
    check_pdfa_validator(signed, part, signatures=2)


def test_signature_from_other_key_is_refused(external: ExternalSigningService, test_pki: TestPki) -> None:
    req = _prepare(external, test_pki)
    wrong = _tool_sign(_key(test_pki, "agency"), req.digest_to_sign_b64)
    with pytest.raises(ExternalSignatureMismatchError) as exc:
        asyncio.run(external.complete(req.request_id, signature=wrong))
    assert "không khớp" in exc.value.message_vi
    # the request is still pending: the officer may retry with the right key
    good = _tool_sign(_key(test_pki, "officer"), req.digest_to_sign_b64)
    signed, _ = asyncio.run(external.complete(req.request_id, signature=good))
    assert signed.startswith(b"%PDF")


def test_signature_over_other_data_is_refused(external: ExternalSigningService, test_pki: TestPki) -> None:
    req = _prepare(external, test_pki)
    other = base64.b64encode(b"\x01" * 32).decode()
    with pytest.raises(ExternalSignatureMismatchError):
        asyncio.run(external.complete(req.request_id, signature=_tool_sign(_key(test_pki, "officer"), other)))
    with pytest.raises(ExternalSignatureMismatchError):
        asyncio.run(external.complete(req.request_id, signature=b"\x00" * 256))


def test_returned_cms_is_checked_and_embedded(
    external: ExternalSigningService, test_pki: TestPki, trust_store: TrustStore
) -> None:
    """A tool returning a whole CMS: accepted if it signs the prepared digest with the prepared cert."""
    req = _prepare(external, test_pki)
    cms_der = _tool_cms(test_pki, req, "officer")
    signed, _ = asyncio.run(external.complete(req.request_id, cms_der=cms_der))
    assert _valid(signed, trust_store)


def test_cms_from_wrong_certificate_is_refused(external: ExternalSigningService, test_pki: TestPki) -> None:
    req = _prepare(external, test_pki)
    cms_der = _tool_cms(test_pki, req, "agency")
    with pytest.raises(ExternalSignatureMismatchError, match="prepared certificate"):
        asyncio.run(external.complete(req.request_id, cms_der=cms_der))
    with pytest.raises(ExternalSignatureMismatchError, match="malformed"):
        asyncio.run(external.complete(req.request_id, cms_der=b"\x30\x03garbage"))


def test_expired_request(signing_service: SigningService, store: PendingStore, test_pki: TestPki) -> None:
    ext = ExternalSigningService(signing_service, store, ttl=timedelta(seconds=-1))
    req = _prepare(ext, test_pki)
    sig = _tool_sign(_key(test_pki, "officer"), req.digest_to_sign_b64)
    with pytest.raises(ExternalSigningExpiredError) as exc:
        asyncio.run(ext.complete(req.request_id, signature=sig))
    assert http_status_for(exc.value) == 410
    assert store.get(req.request_id) is None


def test_purge_expired(signing_service: SigningService, store: PendingStore, test_pki: TestPki) -> None:
    from schemas.timefmt import now_vn

    ext = ExternalSigningService(signing_service, store, ttl=timedelta(minutes=5))
    req = _prepare(ext, test_pki)
    assert store.purge_expired(now_vn()) == 0
    assert store.purge_expired(now_vn() + timedelta(minutes=6)) == 1
    assert store.get(req.request_id) is None


def test_prepare_refuses_bad_certificates(external: ExternalSigningService, test_pki: TestPki) -> None:
    with pytest.raises(CertificateRejectedError):
        _prepare(external, test_pki, "revoked")
    with pytest.raises(InvalidInputError):
        asyncio.run(external.prepare(sample_pdf(), b"not a cert", SignOptions(level=SignatureLevel.B_B)))


def test_bad_request_ids_and_arguments(external: ExternalSigningService) -> None:
    with pytest.raises(InvalidInputError):
        asyncio.run(external.complete("../../etc/passwd", signature=b"x"))
    with pytest.raises(InvalidInputError):
        asyncio.run(external.complete("A" * 32))
    with pytest.raises(ExternalSigningExpiredError):
        asyncio.run(external.complete("A" * 32, signature=b"x"))


def test_remote_key_source(
    signing_service: SigningService, test_pki: TestPki, trust_store: TrustStore
) -> None:
    """A synchronous remote signer (e.g. a signing server) behind the common KeySource API."""
    from signing.keys import RemoteKeySource
    from signing.trust import load_certificates

    officer = _key(test_pki, "officer")
    calls: list[str] = []

    async def remote(data: bytes, digest_algorithm: str) -> bytes:
        calls.append(digest_algorithm)
        assert isinstance(officer, rsa.RSAPrivateKey)
        return officer.sign(data, padding.PKCS1v15(), hashes.SHA256())

    source = RemoteKeySource(
        certificate=load_certificates(test_pki.officer_cert)[0],
        chain=tuple(load_certificates(test_pki.issuing_ca_cert)),
        sign=remote,
    )
    signed, result = asyncio.run(
        signing_service.sign_bytes(sample_pdf(), source, SignOptions(level=SignatureLevel.B_T))
    )
    assert calls == ["sha256"]  # exactly one remote call: no dry-run signature
    assert result.certificate is not None
    assert _valid(signed, trust_store)

    agency = _key(test_pki, "agency")

    async def wrong(data: bytes, digest_algorithm: str) -> bytes:
        assert isinstance(agency, rsa.RSAPrivateKey)
        return agency.sign(data, padding.PKCS1v15(), hashes.SHA256())

    from schemas.errors import SigningError

    bad = RemoteKeySource(certificate=source.certificate, chain=source.chain, sign=wrong)
    with pytest.raises(SigningError) as exc:
        asyncio.run(signing_service.sign_bytes(sample_pdf(), bad, SignOptions(level=SignatureLevel.B_B)))
    assert "không khớp" in exc.value.message_vi
