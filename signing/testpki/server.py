# mypy: disable-error-code="no-untyped-call"
"""Real loopback HTTP services for the test PKI: OCSP (RFC 6960), CRLs (RFC 5280), an
RFC 3161 time-stamping authority and a certificate repository (AIA caIssuers).

Runs a :class:`http.server.ThreadingHTTPServer` on a free port in a daemon thread. Tests can
inject TSA latency (the Government TSA answers in 2 s – 2 min, docs/signing.md §6.3) and take the
revocation services down to exercise the "warn"/"refuse" policy of Circular 15/2025 Annex II.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from signing.testpki.build import TestPki, build_test_pki

__all__ = ["PkiServiceState", "RunningPki", "serve_test_pki"]


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _load_key(path: Path) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TypeError(f"unsupported key type in {path}")
    return key


@dataclass
class PkiServiceState:
    """Mutable knobs shared with the request handler threads."""

    tsa_delay: float = 0.0
    revocation_available: bool = True
    ocsp_available: bool = True
    tsa_available: bool = True
    #: Answer the next N TSA requests with HTTP 503 (then recover) — exercises client retries.
    tsa_fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    counters: dict[str, int] = field(default_factory=lambda: {"ocsp": 0, "crl": 0, "tsa": 0, "certs": 0})

    def bump(self, what: str) -> None:
        with self.lock:
            self.counters[what] = self.counters.get(what, 0) + 1


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


class _Authority:
    """In-memory view of the PKI the handlers answer for."""

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


def _handler_class(authority: _Authority, state: PkiServiceState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return  # keep test output quiet

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if length > 1_000_000:
                raise ValueError("request too large")
            return self.rfile.read(length)

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path.startswith("/crl/") and path.endswith(".crl"):
                state.bump("crl")
                if not state.revocation_available:
                    self._send(503, b"revocation service down", "text/plain")
                    return
                der = authority.crl(path[len("/crl/") : -len(".crl")])
                if der is None:
                    self._send(404, b"no such CRL", "text/plain")
                else:
                    self._send(200, der, "application/pkix-crl")
            elif path.startswith("/certs/") and path.endswith(".crt"):
                state.bump("certs")
                der = authority.cert_der(path[len("/certs/") : -len(".crt")])
                if der is None:
                    self._send(404, b"no such certificate", "text/plain")
                else:
                    self._send(200, der, "application/pkix-cert")
            elif path.startswith("/ocsp/"):
                state.bump("ocsp")
                if not (state.revocation_available and state.ocsp_available):
                    self._send(503, b"revocation service down", "text/plain")
                    return
                raw = base64.b64decode(urllib.parse.unquote(path[len("/ocsp/") :]))
                self._send(200, authority.ocsp_response(raw), "application/ocsp-response")
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            try:
                body = self._body()
            except ValueError:
                self._send(413, b"too large", "text/plain")
                return
            if path == "/ocsp":
                state.bump("ocsp")
                if not (state.revocation_available and state.ocsp_available):
                    self._send(503, b"revocation service down", "text/plain")
                    return
                self._send(200, authority.ocsp_response(body), "application/ocsp-response")
            elif path == "/tsa":
                state.bump("tsa")
                if state.tsa_delay > 0:
                    time.sleep(state.tsa_delay)
                with state.lock:
                    fail_once = state.tsa_fail_next > 0
                    if fail_once:
                        state.tsa_fail_next -= 1
                if fail_once or not state.tsa_available:
                    self._send(503, b"TSA down", "text/plain")
                    return
                try:
                    resp = authority.tsa_response(body)
                except (ValueError, KeyError, TypeError):
                    self._send(400, b"bad time-stamp request", "text/plain")
                    return
                self._send(200, resp, "application/timestamp-reply")
            else:
                self._send(404, b"not found", "text/plain")

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


@dataclass
class RunningPki:
    """A test PKI whose OCSP, CRL, TSA and certificate services answer on loopback."""

    pki: TestPki
    base_url: str
    state: PkiServiceState

    @property
    def ocsp_url(self) -> str:
        return self.pki.ocsp_url

    @property
    def crl_url(self) -> str:
        return self.pki.crl_url

    @property
    def tsa_url(self) -> str:
        return self.pki.tsa_url

    def set_tsa_delay(self, seconds: float) -> None:
        """Make every TSA answer wait ``seconds`` (simulates the slow Government TSA)."""
        self.state.tsa_delay = seconds

    def fail_next_tsa_requests(self, count: int) -> None:
        """The next ``count`` TSA requests get HTTP 503, later ones succeed."""
        with self.state.lock:
            self.state.tsa_fail_next = count

    def set_tsa_available(self, available: bool) -> None:
        self.state.tsa_available = available

    def set_ocsp_available(self, available: bool) -> None:
        """Take only the OCSP responder down (CRLs still served)."""
        self.state.ocsp_available = available

    def set_revocation_available(self, available: bool) -> None:
        """Take OCSP and CRL endpoints down (HTTP 503) or bring them back."""
        self.state.revocation_available = available

    @property
    def counters(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.counters)


@contextmanager
def serve_test_pki(directory: Path, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningPki]:
    """Start the loopback PKI services, build the PKI bound to their URL, and yield it.

    The server listens on ``port`` (default 0: a free port) in a daemon thread and is shut
    down on exit. The PKI in ``directory`` is (re)generated for that URL.
    """
    state = PkiServiceState()
    holder: dict[str, _Authority] = {}

    class _Lazy(BaseHTTPRequestHandler):
        pass

    server = _Server((host, port), _Lazy)
    port = server.server_address[1]
    base_url = f"http://{host}:{port}"
    pki = build_test_pki(directory, base_url=base_url)
    holder["a"] = _Authority(pki)
    server.RequestHandlerClass = _handler_class(holder["a"], state)
    thread = threading.Thread(target=server.serve_forever, name="test-pki-http", daemon=True)
    thread.start()
    try:
        yield RunningPki(pki=pki, base_url=base_url, state=state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
