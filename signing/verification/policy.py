"""Verification policy: trust anchors, revocation strictness, online fetching, size limit.

Defaults follow the Vietnamese profile of docs/signing.md §10.2: trust the Ban Cơ yếu Chính phủ
root G2 (chữ ký số chuyên dùng công vụ, Decree 68/2024) and the NEAC national root (public CAs,
Circular 15/2025 §2.3 "đường dẫn tới chứng thư số gốc"); check revocation at signing time via
OCSP or CRL (Decree 68/2024 Art. 31 k2) and, when neither can be consulted, warn rather than
refuse (Circular 15/2025 Annex II: "phải hiển thị cảnh báo tương ứng"). Key Usage is optional
(Annex II), so either ``nonRepudiation`` or ``digitalSignature`` is accepted.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from asn1crypto import x509

from schemas.errors import ConfigurationError
from signing.settings import RevocationFetchSettings
from signing.trust import TrustStore

__all__ = ["DEFAULT_MAX_PDF_BYTES", "RevocationMode", "VerificationPolicy"]

#: Upper bound for a PDF accepted for verification (API uploads and CLI alike).
DEFAULT_MAX_PDF_BYTES = 50 * 1024 * 1024


class RevocationMode(enum.StrEnum):
    """How strictly revocation status at signing time is required."""

    #: OCSP or CRL must be found for every certificate in the path; otherwise "không xác định".
    REQUIRE = "require"
    #: Check when the certificate declares OCSP/CRL; if nothing can be consulted, warn only.
    SOFT = "soft"


@dataclass(frozen=True)
class VerificationPolicy:
    """Everything that changes a verdict, in one immutable object.

    ``trust_roots`` are trust anchors; ``intermediates`` are untrusted certificates offered for
    path building (e.g. issuing CAs a VGCA-style signer did not embed, docs/signing.md §7).
    """

    trust_roots: Sequence[x509.Certificate]
    intermediates: Sequence[x509.Certificate] = field(default_factory=tuple)
    revocation_mode: RevocationMode = RevocationMode.SOFT
    #: Fetch OCSP/CRL online at verification time, within ``fetch_settings``.
    allow_fetching: bool = True
    #: Run pyHanko's incremental-update difference analysis (needed to tell form filling from
    #: tampering after a signature).
    diff_analysis: bool = True
    max_pdf_bytes: int = DEFAULT_MAX_PDF_BYTES
    #: Validation time; ``None`` means now. Used to re-judge a document "as of" a date.
    validation_time: datetime | None = None
    #: Which hosts may be fetched from, deadline and size of each fetch; only for certificates
    #: that chain to ``trust_roots`` (docs/signing.md §12).
    fetch_settings: RevocationFetchSettings = field(default_factory=RevocationFetchSettings)

    def __post_init__(self) -> None:
        if not self.trust_roots:
            raise ConfigurationError(
                "Verification needs at least one trust anchor",
                message_vi="Cần ít nhất một chứng thư gốc tin cậy để kiểm tra chữ ký số",
            )
        if self.max_pdf_bytes <= 0:
            raise ConfigurationError("max_pdf_bytes must be positive")

    @classmethod
    def from_trust_store(cls, store: TrustStore, **options: Any) -> VerificationPolicy:
        """Anchors, helper intermediates and fetch settings of a :class:`signing.trust.TrustStore`."""
        options.setdefault("fetch_settings", store.fetch_settings)
        return cls(
            trust_roots=tuple(store.anchor_certificates),
            intermediates=tuple(store.intermediate_certificates),
            **options,
        )

    @classmethod
    def from_paths(
        cls, anchors: Sequence[Path], *, intermediates: Sequence[Path] = (), **options: Any
    ) -> VerificationPolicy:
        """Trust the certificates in ``anchors`` (files or directories, PEM or DER)."""
        store = TrustStore(
            list(anchors),
            intermediate_paths=list(intermediates),
            pins={},
            fetch_settings=options.pop("fetch_settings", None),
        )
        return cls.from_trust_store(store, **options)

    @classmethod
    def production(cls, **options: Any) -> VerificationPolicy:
        """Government anchors shipped in ``signing/anchors/`` (pinned; Root G2, CA G2, NEAC)."""
        return cls.from_trust_store(TrustStore(fetch_settings=options.pop("fetch_settings", None)), **options)

    def anchor_names(self) -> list[str]:
        return [str(cert.subject.human_friendly) for cert in self.trust_roots]
