"""Build a throwaway PKI shaped like the Government specialised PKI (docs/signing.md §6.1).

Root "RootCA chuyên dùng Chính phủ G2 (TEST)" → issuing CA "CA phục vụ các cơ quan Nhà nước G2
(TEST)" → agency, officer (RSA and ECDSA P-256), revoked, expired and wrong-key-usage certificates,
plus an OCSP responder and an RFC 3161 TSA certificate. A second, unrelated root issues one
"untrusted" certificate. Keys are generated at run time into a directory of the caller's choice;
nothing private is ever shipped in the repository.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from signing.settings import RevocationFetchSettings

__all__ = ["LEAF_NAMES", "TEST_P12_PASSWORD", "TestPki", "build_test_pki", "issue_extra_leaf"]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: Names of the end-entity certificates the PKI issues (each gets ``<name>_p12/_cert/_key``).
LEAF_NAMES = (
    "agency",
    "officer",
    "officer_ecdsa",
    "revoked",
    "expired",
    "wrong_usage",
    "untrusted",
)

_PROVINCE = "Ninh Bình"
_AGENCY = "Sở Nông nghiệp và Môi trường tỉnh Ninh Bình"
_PARENT = "Ủy ban nhân dân tỉnh Ninh Bình"
_BCY = "Ban Cơ yếu Chính phủ (TEST)"
#: Password of the generated PKCS#12 bundles (test material only).
TEST_P12_PASSWORD = "test-pki-123"


@dataclass(frozen=True)
class TestPki:
    """Paths of every certificate, key and PKCS#12 bundle of the test PKI.

    Keys are unencrypted PKCS#8 PEM; PKCS#12 bundles hold key + certificate + chain and are
    protected by :attr:`p12_password`.
    """

    __test__ = False  # not a pytest test class

    directory: Path
    base_url: str
    p12_password: str
    root_cert: Path
    root_key: Path
    issuing_ca_cert: Path
    issuing_ca_key: Path
    ocsp_cert: Path
    ocsp_key: Path
    tsa_cert: Path
    tsa_key: Path
    untrusted_root_cert: Path
    untrusted_root_key: Path
    agency_cert: Path
    agency_key: Path
    agency_p12: Path
    officer_cert: Path
    officer_key: Path
    officer_p12: Path
    officer_ecdsa_cert: Path
    officer_ecdsa_key: Path
    officer_ecdsa_p12: Path
    revoked_cert: Path
    revoked_key: Path
    revoked_p12: Path
    expired_cert: Path
    expired_key: Path
    expired_p12: Path
    wrong_usage_cert: Path
    wrong_usage_key: Path
    wrong_usage_p12: Path
    untrusted_cert: Path
    untrusted_key: Path
    untrusted_p12: Path
    #: JSON file: ``{"<serial>": {"revoked_at": iso, "reason": "key_compromise"}}`` (issuing CA).
    revocations: Path

    @property
    def ocsp_url(self) -> str:
        return f"{self.base_url}/ocsp"

    @property
    def tsa_url(self) -> str:
        return f"{self.base_url}/tsa"

    @property
    def crl_url(self) -> str:
        """CRL of the issuing CA (end-entity certificates)."""
        return f"{self.base_url}/crl/issuing.crl"

    @property
    def service_host(self) -> str:
        """``host:port`` of the PKI's services, the allowlist entry that lets the hub fetch
        from them (tests and the demo add it; the defaults never do, docs/signing.md §12)."""
        return urlsplit(self.base_url).netloc

    def fetch_settings(self) -> RevocationFetchSettings:
        """Revocation-fetch settings allowing exactly this PKI's services."""
        return RevocationFetchSettings(allowed_hosts=[self.service_host])

    @property
    def trusted_anchor_files(self) -> tuple[Path, ...]:
        """Files a :class:`signing.trust.TrustStore` should load to trust this PKI."""
        return (self.root_cert,)

    @property
    def intermediate_files(self) -> tuple[Path, ...]:
        return (self.issuing_ca_cert,)

    @classmethod
    def load(cls, directory: Path) -> TestPki:
        """Re-open a PKI previously written by :func:`build_test_pki`."""
        meta = json.loads((directory / "pki.json").read_text(encoding="utf-8"))
        return _paths(directory, meta["base_url"], meta["p12_password"])


def _paths(d: Path, base_url: str, password: str) -> TestPki:
    kw: dict[str, Path] = {}
    for name in ("root", "issuing_ca", "ocsp", "tsa", "untrusted_root", *LEAF_NAMES):
        kw[f"{name}_cert"] = d / f"{name}.crt.pem"
        kw[f"{name}_key"] = d / f"{name}.key.pem"
        if name in LEAF_NAMES:
            kw[f"{name}_p12"] = d / f"{name}.p12"
    return TestPki(
        directory=d, base_url=base_url, p12_password=password, revocations=d / "revocations.json", **kw
    )


def _name(**attrs: str) -> x509.Name:
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "L": NameOID.LOCALITY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "T": NameOID.TITLE,
        "CN": NameOID.COMMON_NAME,
        "E": NameOID.EMAIL_ADDRESS,
    }
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attrs.items()])


def _rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@dataclass
class _Issued:
    cert: x509.Certificate
    key: PrivateKey


def _issue(
    *,
    subject: x509.Name,
    key: PrivateKey,
    issuer: _Issued | None,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    ca: bool = False,
    key_usage: set[str],
    eku: list[x509.ObjectIdentifier] | None = None,
    eku_critical: bool = False,
    ocsp_url: str | None = None,
    crl_url: str | None = None,
    ca_issuers_url: str | None = None,
    ocsp_nocheck: bool = False,
    email: str | None = None,
) -> _Issued:
    issuer_name = issuer.cert.subject if issuer else subject
    signing_key = issuer.key if issuer else key
    ku_flags = {
        flag: flag in key_usage
        for flag in (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
        )
    }
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(encipher_only=False, decipher_only=False, **ku_flags), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=eku_critical)
    access = [
        x509.AccessDescription(method, x509.UniformResourceIdentifier(url))
        for method, url in (
            (AuthorityInformationAccessOID.OCSP, ocsp_url),
            (AuthorityInformationAccessOID.CA_ISSUERS, ca_issuers_url),
        )
        if url
    ]
    if access:
        b = b.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if crl_url:
        b = b.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(crl_url)],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
    if ocsp_nocheck:
        b = b.add_extension(x509.OCSPNoCheck(), critical=False)
    if email:
        b = b.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
    cert = b.sign(signing_key, hashes.SHA256())
    return _Issued(cert=cert, key=key)


def _write(d: Path, name: str, item: _Issued, chain: list[x509.Certificate], password: str | None) -> None:
    (d / f"{name}.crt.pem").write_bytes(item.cert.public_bytes(serialization.Encoding.PEM))
    key_path = d / f"{name}.key.pem"
    key_path.write_bytes(
        item.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    if password is not None:
        p12 = pkcs12.serialize_key_and_certificates(
            name.encode(),
            item.key,
            item.cert,
            chain,
            serialization.BestAvailableEncryption(password.encode()),
        )
        p12_path = d / f"{name}.p12"
        p12_path.write_bytes(p12)
        p12_path.chmod(0o600)


def build_test_pki(directory: Path, *, base_url: str, p12_password: str = TEST_P12_PASSWORD) -> TestPki:
    """Generate the whole test PKI into ``directory`` with service URLs under ``base_url``.

    ``base_url`` is where ``hub.simulators.pki.serve_test_pki`` (or any compatible server)
    answers ``/ocsp``, ``/crl/{root,issuing,untrusted}.crl``, ``/certs/*.crt`` and ``/tsa``.
    """
    base_url = base_url.rstrip("/")
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    day = timedelta(days=1)
    year = timedelta(days=365)

    def ca(
        subject: x509.Name,
        serial: int,
        *,
        issuer: _Issued | None,
        years: int,
        crl_url: str | None = None,
        ca_issuers_url: str | None = None,
    ) -> _Issued:
        return _issue(
            subject=subject,
            key=_rsa(),
            issuer=issuer,
            serial=serial,
            not_before=now - 3 * year,
            not_after=now + years * year,
            ca=True,
            key_usage={"key_cert_sign", "crl_sign"},
            crl_url=crl_url,
            ca_issuers_url=ca_issuers_url,
        )

    root = ca(_name(C="VN", O=_BCY, CN="RootCA chuyên dùng Chính phủ G2 (TEST)"), 0x10, issuer=None, years=20)
    issuing = ca(
        _name(C="VN", O=_BCY, CN="CA phục vụ các cơ quan Nhà nước G2 (TEST)"),
        0x20,
        issuer=root,
        years=19,
        crl_url=f"{base_url}/crl/root.crl",
        ca_issuers_url=f"{base_url}/certs/root.crt",
    )
    untrusted_o = "Tổ chức không được tin cậy (TEST)"
    untrusted_root = ca(
        _name(C="VN", O=untrusted_o, CN="Untrusted Root CA (TEST)"), 0x30, issuer=None, years=10
    )

    def leaf(
        subject: x509.Name,
        serial: int,
        *,
        key: PrivateKey | None = None,
        not_before: datetime = now - 30 * day,
        not_after: datetime = now + 2 * year,
        key_usage: set[str] | None = None,
        issuer: _Issued = issuing,
        ocsp: str | None = f"{base_url}/ocsp",
        crl: str | None = f"{base_url}/crl/issuing.crl",
        ca_issuers: str | None = f"{base_url}/certs/issuing.crt",
        eku: list[x509.ObjectIdentifier] | None = None,
        eku_critical: bool = False,
        ocsp_nocheck: bool = False,
        email: str | None = None,
    ) -> _Issued:
        return _issue(
            subject=subject,
            key=key or _rsa(),
            issuer=issuer,
            serial=serial,
            not_before=not_before,
            not_after=not_after,
            key_usage=key_usage if key_usage is not None else {"digital_signature", "content_commitment"},
            eku=eku,
            eku_critical=eku_critical,
            ocsp_url=ocsp,
            crl_url=crl,
            ca_issuers_url=ca_issuers,
            ocsp_nocheck=ocsp_nocheck,
            email=email,
        )

    officer_dn = dict(C="VN", ST=_PROVINCE, O=_AGENCY, OU="Văn phòng Sở", T="Phó Giám đốc")
    leaves: dict[str, _Issued] = {
        "agency": leaf(
            _name(C="VN", ST=_PROVINCE, L=_PROVINCE, O=_PARENT, CN=_AGENCY), 0x1001, key=_rsa(3072)
        ),
        "officer": leaf(
            _name(**officer_dn, CN="Nguyễn Thị Lấp Lánh"), 0x1002, email="lanhntl@ninhbinh.gov.vn"
        ),
        "officer_ecdsa": leaf(
            _name(**officer_dn, CN="Trần Văn Đức"), 0x1003, key=ec.generate_private_key(ec.SECP256R1())
        ),
        "revoked": leaf(_name(**officer_dn, CN="Lê Văn Thu Hồi"), 0x1004),
        "expired": leaf(
            _name(**officer_dn, CN="Phạm Thị Hết Hạn"),
            0x1005,
            not_before=now - 2 * year,
            not_after=now - 35 * day,
        ),
        "wrong_usage": leaf(
            _name(**officer_dn, CN="Hoàng Văn Mã Hóa"), 0x1006, key_usage={"key_encipherment"}
        ),
    }
    untrusted = leaf(
        _name(C="VN", O=untrusted_o, CN="Vũ Thị Giả Mạo"),
        0x3001,
        issuer=untrusted_root,
        ocsp=None,
        crl=f"{base_url}/crl/untrusted.crl",
        ca_issuers=None,
    )
    ocsp = leaf(
        _name(C="VN", O=_BCY, CN="OCSP G2 (TEST)"),
        0x2001,
        key_usage={"digital_signature"},
        ocsp=None,
        crl=None,
        ca_issuers=None,
        eku=[ExtendedKeyUsageOID.OCSP_SIGNING],
        ocsp_nocheck=True,
    )
    tsa = leaf(
        _name(C="VN", O=_BCY, CN="TSA G2 (TEST)"),
        0x2002,
        not_before=now - 3 * year,
        not_after=now + 10 * year,
        ocsp=None,
        eku=[ExtendedKeyUsageOID.TIME_STAMPING],
        eku_critical=True,
    )

    chain = [issuing.cert, root.cert]
    _write(directory, "root", root, [], None)
    _write(directory, "issuing_ca", issuing, [], None)
    _write(directory, "untrusted_root", untrusted_root, [], None)
    _write(directory, "ocsp", ocsp, chain, None)
    _write(directory, "tsa", tsa, chain, None)
    for name, item in leaves.items():
        _write(directory, name, item, chain, p12_password)
    _write(directory, "untrusted", untrusted, [untrusted_root.cert], p12_password)

    revoked_at = now - day
    (directory / "revocations.json").write_text(
        json.dumps(
            {
                str(leaves["revoked"].cert.serial_number): {
                    "revoked_at": revoked_at.isoformat(),
                    "reason": "key_compromise",
                }
            }
        ),
        encoding="utf-8",
    )
    (directory / "pki.json").write_text(
        json.dumps({"base_url": base_url, "p12_password": p12_password, "created": now.isoformat()}),
        encoding="utf-8",
    )
    return _paths(directory, base_url, p12_password)


def issue_extra_leaf(
    pki: TestPki,
    name: str,
    *,
    issuer: Literal["issuing_ca", "untrusted_root", "forged_issuing_ca"],
    ocsp_url: str | None = None,
    crl_url: str | None = None,
    ca_issuers_url: str | None = None,
    serial: int,
) -> Path:
    """Issue one more signing certificate into ``pki.directory``; returns its PKCS#12 (leaf
    only, no chain, protected by ``pki.p12_password``) and writes ``<name>.crt.pem``.

    ``forged_issuing_ca`` names the trusted issuing CA as issuer but is signed by a fresh key:
    a certificate whose chain matches by name only (docs/signing.md §12.1).
    """
    now = datetime.now(UTC).replace(microsecond=0)
    if issuer == "forged_issuing_ca":
        real = x509.load_pem_x509_certificate(pki.issuing_ca_cert.read_bytes())
        fake_key = _rsa()
        fake = x509.CertificateBuilder().subject_name(real.subject).issuer_name(real.issuer)
        fake = fake.public_key(fake_key.public_key()).serial_number(serial + 1)
        fake = fake.not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
        parent = _Issued(fake.sign(fake_key, hashes.SHA256()), fake_key)
    else:
        cert_path = pki.issuing_ca_cert if issuer == "issuing_ca" else pki.untrusted_root_cert
        key_path = pki.issuing_ca_key if issuer == "issuing_ca" else pki.untrusted_root_key
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        parent = _Issued(x509.load_pem_x509_certificate(cert_path.read_bytes()), key)
    item = _issue(
        subject=_name(C="VN", O="Tổ chức thử nghiệm (TEST)", CN=f"Người ký {name} (TEST)"),
        key=_rsa(),
        issuer=parent,
        serial=serial,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=365),
        key_usage={"digital_signature", "content_commitment"},
        ocsp_url=ocsp_url,
        crl_url=crl_url,
        ca_issuers_url=ca_issuers_url,
    )
    _write(pki.directory, name, item, [], pki.p12_password)
    return pki.directory / f"{name}.p12"
