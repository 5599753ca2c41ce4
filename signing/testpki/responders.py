# mypy: disable-error-code="no-untyped-call"
"""The answers of the test PKI's services: OCSP (RFC 6960), CRLs (RFC 5280), an RFC 3161
time-stamping authority and a certificate repository (AIA caIssuers).

Protocol logic only, bytes in and bytes out: the HTTP front that serves them on loopback, with
the shared fault model (TSA latency — the Government TSA answers in 2 s – 2 min, docs/signing.md
§6.3 — and revocation outages for the "warn"/"refuse" policy of Circular 15/2025 Annex II),
is ``hub.simulators.pki`` (the hub may import signing; signing never imports the hub).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from signing.testpki.build import TestPki

__all__ = ["PkiResponder"]


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _load_key(path: Path) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TypeError(f"unsupported key type in {path}")
    return key


class _FastDummyTimeStamper(DummyTimeStamper):
    """pyHanko's test TSA, with the RSA key parsed once instead of per request."""

    def __init__(
        self,
        tsa_cert: asn1_x509.Certificate,
        tsa_key: asn1_keys.PrivateKeyInfo,
        certs_to_embed: list[asn1_x509.Certificate],
        key: rsa.RSAPrivateKey,
    ) -> None:
        super().__init__(tsa_cert, tsa_key, certs_to_embed=certs_to_embed)  # type: ignore[arg-type]
        self._key = key

    def _sign_tst_info(self, tst_info_data: bytes, md_algorithm: str, dt: datetime) -> tuple[bytes, object]:
        from asn1crypto import cms, core
        from pyhanko.sign import general
        from pyhanko.sign.general import simple_cms_attribute
        from pyhanko_certvalidator.util import get_pyca_cryptography_hash

        h = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
        h.update(tst_info_data)
        signed_attrs = cms.CMSAttributes(
            [
                simple_cms_attribute("content_type", "tst_info"),
                simple_cms_attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
                simple_cms_attribute("signing_certificate", general.as_signing_certificate(self.tsa_cert)),
                simple_cms_attribute("message_digest", h.finalize()),
            ]
        )
        signature = self._key.sign(
            signed_attrs.dump(), padding.PKCS1v15(), get_pyca_cryptography_hash(md_algorithm.upper())
        )
        return signature, signed_attrs


class PkiResponder:
    """What the PKI's OCSP responder, CRL distribution points, TSA and certificate repository answer."""

    def __init__(self, pki: TestPki) -> None:
        self.pki = pki
        self.root = _load_cert(pki.root_cert)
        self.root_key = _load_key(pki.root_key)
        self.issuing = _load_cert(pki.issuing_ca_cert)
        self.issuing_key = _load_key(pki.issuing_ca_key)
        self.untrusted_root = _load_cert(pki.untrusted_root_cert)
        self.untrusted_root_key = _load_key(pki.untrusted_root_key)
        self.ocsp_cert = _load_cert(pki.ocsp_cert)
        self.ocsp_key = _load_key(pki.ocsp_key)
        # Certificates the issuing CA has issued, by serial number.
        self.issued: dict[int, x509.Certificate] = {}
        for path in pki.directory.glob("*.crt.pem"):
            cert = _load_cert(path)
            if cert.issuer == self.issuing.subject and cert.subject != self.issuing.subject:
                self.issued[cert.serial_number] = cert
        raw = json.loads(pki.revocations.read_text(encoding="utf-8"))
        self.revoked: dict[int, datetime] = {
            int(serial): datetime.fromisoformat(entry["revoked_at"]) for serial, entry in raw.items()
        }
        tsa_cert = asn1_x509.Certificate.load(
            _load_cert(pki.tsa_cert).public_bytes(serialization.Encoding.DER)
        )
        tsa_key = asn1_keys.PrivateKeyInfo.load(
            _load_key(pki.tsa_key).private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        issuing_asn1 = asn1_x509.Certificate.load(self.issuing.public_bytes(serialization.Encoding.DER))
        tsa_pyca_key = _load_key(pki.tsa_key)
        assert isinstance(tsa_pyca_key, rsa.RSAPrivateKey)
        self.timestamper = _FastDummyTimeStamper(
            tsa_cert, tsa_key, certs_to_embed=[issuing_asn1], key=tsa_pyca_key
        )
        self._crl_cache: dict[str, tuple[float, bytes]] = {}
        self._crl_lock = threading.Lock()

    # -- CRL --------------------------------------------------------------------------

    def crl(self, which: str) -> bytes | None:
        with self._crl_lock:
            cached = self._crl_cache.get(which)
            if cached and time.monotonic() - cached[0] < 60:
                return cached[1]
            if which == "issuing":
                issuer, key, revoked = self.issuing, self.issuing_key, self.revoked
            elif which == "root":
                issuer, key, revoked = self.root, self.root_key, {}
            elif which == "untrusted":
                issuer, key, revoked = self.untrusted_root, self.untrusted_root_key, {}
            else:
                return None
            now = datetime.now(UTC)
            builder = (
                x509.CertificateRevocationListBuilder()
                .issuer_name(issuer.subject)
                .last_update(now - timedelta(minutes=5))
                .next_update(now + timedelta(days=1))
                .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
                )
            )
            for serial, when in revoked.items():
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(serial)
                    .revocation_date(when)
                    .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
                    .build()
                )
            der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
            self._crl_cache[which] = (time.monotonic(), der)
            return der

    # -- OCSP -------------------------------------------------------------------------

    def ocsp_response(self, der_request: bytes) -> bytes:
        try:
            req = ocsp.load_der_ocsp_request(der_request)
        except ValueError:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST
            ).public_bytes(serialization.Encoding.DER)
        cert = self.issued.get(req.serial_number)
        issuer_key_hash = _key_hash(self.issuing, req.hash_algorithm)
        if cert is None or req.issuer_key_hash != issuer_key_hash:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED
            ).public_bytes(serialization.Encoding.DER)
        now = datetime.now(UTC)
        revoked_at = self.revoked.get(req.serial_number)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert,
            issuer=self.issuing,
            algorithm=req.hash_algorithm,
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked_at else ocsp.OCSPCertStatus.GOOD,
            this_update=now - timedelta(seconds=30),
            next_update=now + timedelta(hours=12),
            revocation_time=revoked_at,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked_at else None,
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.ocsp_cert).certificates(
            [self.ocsp_cert]
        )
        for ext in req.extensions:
            if isinstance(ext.value, x509.OCSPNonce):
                builder = builder.add_extension(ext.value, critical=False)
        return builder.sign(self.ocsp_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    # -- TSA --------------------------------------------------------------------------

    def tsa_response(self, der_request: bytes) -> bytes:
        req = tsp.TimeStampReq.load(der_request)
        resp: tsp.TimeStampResp = self.timestamper.request_tsa_response(req)
        return bytes(resp.dump())

    def cert_der(self, which: str) -> bytes | None:
        cert = {"root": self.root, "issuing": self.issuing}.get(which)
        return cert.public_bytes(serialization.Encoding.DER) if cert else None


def _key_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw = asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents
    # BIT STRING contents start with the "unused bits" byte.
    h = hashes.Hash(algorithm)
    h.update(bytes(raw)[1:])
    return h.finalize()
