"""The test PKI is real: certificates, OCSP, CRL and TSA answer over loopback HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp

from hub.simulators.pki import RunningPki
from signing.testpki import TestPki


def _cert(path: object) -> x509.Certificate:
    from pathlib import Path

    assert isinstance(path, Path)
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_hierarchy_mirrors_government_pki(test_pki: TestPki) -> None:
    root = _cert(test_pki.root_cert)
    issuing = _cert(test_pki.issuing_ca_cert)
    officer = _cert(test_pki.officer_cert)
    assert "RootCA chuyên dùng Chính phủ G2" in root.subject.rfc4514_string()
    assert issuing.issuer == root.subject
    assert "CA phục vụ các cơ quan Nhà nước G2" in issuing.subject.rfc4514_string()
    assert officer.issuer == issuing.subject
    cn = officer.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == "Nguyễn Thị Lấp Lánh"
    agency = _cert(test_pki.agency_cert)
    assert "Sở Nông nghiệp và Môi trường tỉnh Ninh Bình" in agency.subject.rfc4514_string()
    aia = officer.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert any(d.access_location.value == test_pki.ocsp_url for d in aia)
    crldp = officer.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert crldp[0].full_name is not None
    assert crldp[0].full_name[0].value == test_pki.crl_url
    assert test_pki.base_url.startswith("http://127.0.0.1:")


def test_special_certificates(test_pki: TestPki) -> None:
    from datetime import UTC, datetime

    expired = _cert(test_pki.expired_cert)
    assert expired.not_valid_after_utc < datetime.now(UTC)
    ku = _cert(test_pki.wrong_usage_cert).extensions.get_extension_for_class(x509.KeyUsage).value
    assert not ku.digital_signature
    assert not ku.content_commitment
    untrusted = _cert(test_pki.untrusted_cert)
    assert untrusted.issuer != _cert(test_pki.issuing_ca_cert).subject
    ecdsa = _cert(test_pki.officer_ecdsa_cert)
    from cryptography.hazmat.primitives.asymmetric import ec

    pub = ecdsa.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    assert pub.curve.name == "secp256r1"


def test_p12_bundles_open_with_password(test_pki: TestPki) -> None:
    key, cert, extra = pkcs12.load_key_and_certificates(
        test_pki.officer_p12.read_bytes(), test_pki.p12_password.encode()
    )
    assert key is not None
    assert cert is not None
    assert len(extra) == 2
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(test_pki.officer_p12.read_bytes(), b"wrong")


def _ocsp_status(running: RunningPki, name: str) -> ocsp.OCSPResponse:
    pki = running.pki
    cert = _cert(getattr(pki, f"{name}_cert"))
    issuer = _cert(pki.issuing_ca_cert)
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    http_req = urllib.request.Request(
        running.ocsp_url,
        data=req.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"},
    )
    with urllib.request.urlopen(http_req, timeout=10) as resp:
        return ocsp.load_der_ocsp_response(resp.read())


def test_ocsp_good_and_revoked(pki_services: RunningPki) -> None:
    good = _ocsp_status(pki_services, "officer")
    assert good.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert good.certificate_status == ocsp.OCSPCertStatus.GOOD
    revoked = _ocsp_status(pki_services, "revoked")
    assert revoked.certificate_status == ocsp.OCSPCertStatus.REVOKED
    # signature verifies under the responder certificate
    parsed = asn1_ocsp.OCSPResponse.load(revoked.public_bytes(serialization.Encoding.DER))
    assert parsed["response_status"].native == "successful"


def test_crl_lists_revoked_serial(pki_services: RunningPki, test_pki: TestPki) -> None:
    with urllib.request.urlopen(pki_services.crl_url, timeout=10) as resp:
        crl = asn1_crl.CertificateList.load(resp.read())
    serials = {e["user_certificate"].native for e in crl["tbs_cert_list"]["revoked_certificates"]}
    assert _cert(test_pki.revoked_cert).serial_number in serials
    assert _cert(test_pki.officer_cert).serial_number not in serials


def test_revocation_outage(pki_services: RunningPki) -> None:
    pki_services.set_revocation_available(False)
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(pki_services.crl_url, timeout=10)
    assert exc.value.code == 503


async def test_tsa_answers_rfc3161(pki_services: RunningPki) -> None:
    from pyhanko.sign.timestamps import HTTPTimeStamper

    stamper = HTTPTimeStamper(pki_services.tsa_url)
    token = await stamper.async_timestamp(b"\x00" * 32, "sha256")
    signed = token["content"]
    tst = tsp.TSTInfo.load(signed["encap_content_info"]["content"].parsed.dump())
    assert tst["message_imprint"]["hashed_message"].native == b"\x00" * 32
