"""Trust store shared by pre-signing checks and verification.

Circular 15/2025/TT-BKHCN §2.2/§2.3 require the certificate path to link to a recognised root
(NEAC national root for public CAs; the Ban Cơ yếu Chính phủ root G2 for *chữ ký số chuyên dùng
công vụ*, Decree 68/2024) and the software to support installing and updating those
certificates. The defaults are the production anchors shipped in ``signing/anchors/`` whose
SHA-256 fingerprints are pinned below and checked on every load.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager

from schemas.errors import ConfigurationError
from signing.revocation_fetch import PolicyFetcherBackend
from signing.settings import RevocationFetchSettings, SigningSettings, read_file

__all__ = [
    "DEFAULT_ANCHOR_PINS",
    "TrustStore",
    "TrustedCertificate",
    "default_anchor_dir",
    "load_certificates",
    "sha256_fingerprint",
]

#: Pinned SHA-256 fingerprints of the shipped production anchors (signing/anchors/README.md).
DEFAULT_ANCHOR_PINS: Mapping[str, str] = {
    "rootcag2.pem": "f04ba4b459a7c9a1b971ad9b1cb833e695a80c79aea63b174b66a70edfe2fdb8",
    "cpcag2.pem": "d8cab7a4aef92e6bb2509d7c61cee7b44f3731b2d21074963530277b366fae4b",
    "vnrca256.pem": "bac8bf609ab420a8ee1780d74f4de5c7f7184959d2a7375b0a75e4c29f0908e7",
}

_CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")


def default_anchor_dir() -> Path:
    """Directory of the production anchors shipped as package data."""
    return Path(__file__).resolve().parent / "anchors"


def sha256_fingerprint(cert: asn1_x509.Certificate) -> str:
    return hashlib.sha256(cert.dump()).hexdigest()


def load_certificates(path: Path) -> list[asn1_x509.Certificate]:
    """Load every certificate in a PEM (possibly several blocks) or DER file."""
    data = read_file(path, f"certificate file {path}", f"tệp chứng thư số {path}")
    try:
        if pem.detect(data):
            return [
                asn1_x509.Certificate.load(der)
                for kind, _hdr, der in pem.unarmor(data, multiple=True)
                if kind == "CERTIFICATE"
            ]
        cert = asn1_x509.Certificate.load(data)
        _ = cert.subject  # force parsing
        return [cert]
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"{path} is not a valid PEM/DER certificate: {exc}",
            message_vi=f"Tệp {path} không phải chứng thư số PEM/DER hợp lệ: {exc}",
        ) from exc


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in _CERT_SUFFIXES))
        else:
            out.append(p)
    return out


@dataclass(frozen=True)
class TrustedCertificate:
    """A certificate held by the store, with where it came from."""

    certificate: asn1_x509.Certificate
    source: Path
    sha256: str

    @property
    def subject(self) -> str:
        return str(self.certificate.subject.human_friendly)


class TrustStore:
    """Trust anchors (and helper intermediates) loaded from PEM/DER files or directories.

    * Self-signed certificates become trust anchors.
    * CA certificates that are not self-signed (e.g. "CA phục vụ các cơ quan Nhà nước G2") are
      kept as intermediates for path building, unless ``intermediates_as_anchors`` is set.
    * ``pins`` maps a file name (or ``*`` for any) to its required SHA-256 fingerprint;
      a mismatch raises :class:`schemas.errors.ConfigurationError` at load time.

    :meth:`refresh` re-reads the files (e.g. after an operator installs an updated CTL export).

    ``fetch_settings`` bound every online OCSP/CRL/certificate fetch made through
    :meth:`validation_context` (allowlist, deadline, size; docs/signing.md §12).
    """

    def __init__(
        self,
        anchor_paths: Sequence[Path] | None = None,
        *,
        intermediate_paths: Sequence[Path] = (),
        pins: Mapping[str, str] | None = None,
        intermediates_as_anchors: bool = False,
        fetch_settings: RevocationFetchSettings | None = None,
    ) -> None:
        if anchor_paths is None:
            anchor_paths = [default_anchor_dir()]
            if pins is None:
                pins = DEFAULT_ANCHOR_PINS
        self._anchor_paths = [Path(p) for p in anchor_paths]
        self._intermediate_paths = [Path(p) for p in intermediate_paths]
        self._pins = {k: v.lower().replace(":", "") for k, v in (pins or {}).items()}
        self._intermediates_as_anchors = intermediates_as_anchors
        self.fetch_settings = fetch_settings or RevocationFetchSettings()
        self._lock = threading.Lock()
        self._anchors: tuple[TrustedCertificate, ...] = ()
        self._intermediates: tuple[TrustedCertificate, ...] = ()
        self.refresh()

    @classmethod
    def default(cls) -> TrustStore:
        """The production Vietnamese anchors (Root G2, its issuing CA, NEAC national root)."""
        return cls()

    @classmethod
    def from_settings(cls, settings: SigningSettings) -> TrustStore:
        """``[signing]``: the configured anchor files, else the pinned government anchors; the
        ``[signing.revocation_fetch]`` limits either way."""
        anchors = list(settings.trust_anchor_paths)
        if anchors:
            return cls(anchors, pins={}, fetch_settings=settings.revocation_fetch)
        return cls(fetch_settings=settings.revocation_fetch)

    @classmethod
    def from_test_pki(cls, pki: Any) -> TrustStore:
        """Trust the throwaway PKI of :mod:`signing.testpki` (root as anchor, issuing CA as helper),
        and allow fetching from its services (``pki.fetch_settings``)."""
        return cls(
            list(pki.trusted_anchor_files),
            intermediate_paths=list(pki.intermediate_files),
            pins={},
            fetch_settings=pki.fetch_settings(),
        )

    def refresh(self) -> None:
        """Re-read every configured file; raises ConfigurationError and keeps the old set on error."""
        anchors: list[TrustedCertificate] = []
        intermediates: list[TrustedCertificate] = []
        for path in _files(self._anchor_paths):
            for cert in load_certificates(path):
                tc = TrustedCertificate(cert, path, sha256_fingerprint(cert))
                self._check_pin(tc)
                if cert.self_signed in ("maybe", "yes") or self._intermediates_as_anchors:
                    anchors.append(tc)
                else:
                    intermediates.append(tc)
        for path in _files(self._intermediate_paths):
            for cert in load_certificates(path):
                intermediates.append(TrustedCertificate(cert, path, sha256_fingerprint(cert)))
        if not anchors:
            raise ConfigurationError(
                "trust store has no anchors: " + ", ".join(map(str, self._anchor_paths)),
                message_vi="Kho chứng thư tin cậy không có chứng thư gốc nào.",
            )
        with self._lock:
            self._anchors = tuple(anchors)
            self._intermediates = tuple(intermediates)

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (batch workers): the lock is recreated, certificates are kept."""
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _check_pin(self, tc: TrustedCertificate) -> None:
        expected = self._pins.get(tc.source.name) or self._pins.get("*")
        if expected and expected != tc.sha256:
            raise ConfigurationError(
                f"trust anchor {tc.source} has SHA-256 {tc.sha256}, expected {expected}",
                message_vi=(
                    f"Chứng thư gốc {tc.source} có dấu vân tay SHA-256 {tc.sha256}, "
                    f"không khớp giá trị đã ghim {expected}"
                ),
            )

    # -- accessors ------------------------------------------------------------------------

    @property
    def anchors(self) -> tuple[TrustedCertificate, ...]:
        with self._lock:
            return self._anchors

    @property
    def intermediates(self) -> tuple[TrustedCertificate, ...]:
        with self._lock:
            return self._intermediates

    @property
    def anchor_certificates(self) -> list[asn1_x509.Certificate]:
        return [a.certificate for a in self.anchors]

    @property
    def intermediate_certificates(self) -> list[asn1_x509.Certificate]:
        return [a.certificate for a in self.intermediates]

    def is_anchor(self, cert: asn1_x509.Certificate) -> bool:
        fp = sha256_fingerprint(cert)
        return any(a.sha256 == fp for a in self.anchors)

    # -- pyhanko-certvalidator glue ----------------------------------------------------------

    def trust_manager(self) -> SimpleTrustManager:
        return SimpleTrustManager.build(trust_roots=self.anchor_certificates)

    def cert_validation_policy(
        self, revinfo_policy: CertRevTrustPolicy | None = None
    ) -> CertValidationPolicySpec:
        """Stateless policy spec for pyHanko's AdES validation (``ades_lta_validation``)."""
        if revinfo_policy is None:
            revinfo_policy = CertRevTrustPolicy(RevocationCheckingPolicy.from_legacy("soft-fail"))
        return CertValidationPolicySpec(trust_manager=self.trust_manager(), revinfo_policy=revinfo_policy)

    def validation_context(
        self,
        *,
        allow_fetching: bool = True,
        revocation_mode: str = "soft-fail",
        moment: datetime | None = None,
        other_certs: Iterable[asn1_x509.Certificate] = (),
        fetch_timeout: float | None = None,
        **kwargs: Any,
    ) -> ValidationContext:
        """A fresh (stateful) ``ValidationContext`` trusting exactly this store's anchors.

        ``revocation_mode``: ``soft-fail`` / ``hard-fail`` / ``require`` (pyhanko-certvalidator).
        Online fetches go through :meth:`fetcher_backend` only (``fetch_timeout`` overrides the
        configured deadline); another ``fetcher_backend`` is refused.
        """
        other = list(other_certs)
        if allow_fetching:
            given = kwargs.get("fetcher_backend")
            if given is None:
                kwargs["fetcher_backend"] = self.fetcher_backend(other, timeout=fetch_timeout)
            elif not isinstance(given, PolicyFetcherBackend):
                raise TypeError("fetches must go through signing.revocation_fetch.PolicyFetcherBackend")
        return ValidationContext(
            trust_roots=self.anchor_certificates,
            other_certs=[*self.intermediate_certificates, *other],
            allow_fetching=allow_fetching,
            revocation_mode=revocation_mode,
            moment=moment,
            **kwargs,
        )

    def fetcher_backend(
        self, known: Iterable[asn1_x509.Certificate] = (), *, timeout: float | None = None
    ) -> PolicyFetcherBackend:
        """The fetch policy (docs/signing.md §12) over this store's anchors and intermediates."""
        settings = self.fetch_settings
        if timeout is not None:
            settings = settings.model_copy(update={"timeout_seconds": timeout})
        return PolicyFetcherBackend(
            settings, self.anchor_certificates, [*self.intermediate_certificates, *known]
        )
