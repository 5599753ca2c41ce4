"""Machine-readable verification report (stable JSON field names).

The human-readable Vietnamese/English rendering in :mod:`signing.report` is generated from this
model only, so the JSON and the text can never disagree. Field names are part of the API contract:
add fields, never rename them (bump :data:`REPORT_SCHEMA_VERSION` if a meaning changes).

The model carries at least the seven fields Circular 15/2025/TT-BKHCN §2.3.4 requires of
signature-verification software: issuing CA, signer, certificate-managing unit, signing time or
time-stamp, integrity, validity at signing time and certificate validity period.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "VN_TZ",
    "CertificateInfo",
    "CheckOutcome",
    "CheckResult",
    "DocumentTimestampReport",
    "ModificationReport",
    "PadesLevel",
    "PolicyInfo",
    "Reason",
    "RevocationEvidence",
    "RevocationReport",
    "RevocationSource",
    "Severity",
    "SignatureFormat",
    "SignatureReport",
    "SigningTimeSource",
    "TimestampInfo",
    "Verdict",
    "VerificationReport",
    "to_vn_time",
]

REPORT_SCHEMA_VERSION: Literal["1.0"] = "1.0"

#: Vietnam time; every datetime in a report is rendered in this zone (+07:00 on the wire).
VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def to_vn_time(value: datetime) -> datetime:
    """Convert an aware datetime to Asia/Ho_Chi_Minh; naive values are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo("UTC"))
    return value.astimezone(VN_TZ)


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def _vn_dt(value: datetime) -> datetime:
    return to_vn_time(value)


#: Text normalised to Unicode NFC (TCVN 6909:2001 / Circular 15/2025 §3.2).
NfcStr = Annotated[str, AfterValidator(_nfc)]
#: Aware datetime, normalised to Asia/Ho_Chi_Minh.
VnDatetime = Annotated[datetime, AfterValidator(_vn_dt)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class Verdict(StrEnum):
    """Overall verdict, in the terms Circular 15/2025 §2.3.4 asks for ("hợp lệ hay không hợp lệ")."""

    VALID = "valid"
    INVALID = "invalid"
    INDETERMINATE = "indeterminate"

    @property
    def vi(self) -> str:
        return _VERDICT_VI[self]


_VERDICT_VI = {
    Verdict.VALID: "hợp lệ",
    Verdict.INVALID: "không hợp lệ",
    Verdict.INDETERMINATE: "không xác định",
}


class CheckOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    UNKNOWN = "unknown"


class SignatureFormat(StrEnum):
    """PDF signature encoding (ISO 32000 /SubFilter)."""

    PADES = "PAdES"  # ETSI.CAdES.detached
    PKCS7 = "PKCS#7"  # adbe.pkcs7.detached / adbe.pkcs7.sha1 (what VGCA-style tools emit)
    OTHER = "other"


class PadesLevel(StrEnum):
    """Baseline level reached (ETSI EN 319 142-1 §6); ``NONE`` for non-PAdES signatures."""

    NONE = "none"
    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"


class SigningTimeSource(StrEnum):
    TIMESTAMP = "timestamp"  # RFC 3161 signature time-stamp (trusted time)
    CLAIMED = "claimed"  # signingTime attribute or /M, as claimed by the signer
    NONE = "none"


class RevocationSource(StrEnum):
    EMBEDDED = "embedded"  # DSS or adbe-revocationInfoArchival in the document
    FETCHED = "fetched"  # OCSP/CRL fetched online during verification
    MIXED = "mixed"
    NONE = "none"


#: How grave a finding is (:class:`Reason`, the catalogue in :mod:`signing.verification.reasons`).
Severity = Literal["error", "indeterminate", "warning", "info"]


class Reason(_Model):
    """One finding, bilingual. ``code`` is stable and machine-readable."""

    code: str
    severity: Severity
    message: NfcStr
    message_vi: NfcStr


class CheckResult(_Model):
    outcome: CheckOutcome
    detail: NfcStr | None = None
    detail_vi: NfcStr | None = None

    @classmethod
    def passed(cls, detail: str, detail_vi: str) -> CheckResult:
        return cls(outcome=CheckOutcome.PASSED, detail=detail, detail_vi=detail_vi)

    @classmethod
    def failed(cls, detail: str, detail_vi: str) -> CheckResult:
        return cls(outcome=CheckOutcome.FAILED, detail=detail, detail_vi=detail_vi)

    @classmethod
    def unknown(cls, detail: str | None = None, detail_vi: str | None = None) -> CheckResult:
        """Not decidable (with why, when there is something to say)."""
        return cls(outcome=CheckOutcome.UNKNOWN, detail=detail, detail_vi=detail_vi)


class CertificateInfo(_Model):
    """What a person needs to identify a certificate (RFC 5280 fields, decoded)."""

    subject_dn: NfcStr
    common_name: NfcStr | None = None
    organization: NfcStr | None = None
    organizational_unit: NfcStr | None = None
    locality: NfcStr | None = None
    email: str | None = None
    issuer_dn: NfcStr
    issuer_common_name: NfcStr | None = None
    serial_number_hex: str
    sha256_fingerprint: str
    not_before: VnDatetime
    not_after: VnDatetime
    public_key_algorithm: str
    public_key_bits: int | None = None


class TimestampInfo(_Model):
    """An RFC 3161 time-stamp token (signature time-stamp or document time-stamp)."""

    time: VnDatetime
    tsa_name: NfcStr | None = None
    intact: bool
    trusted: bool
    outcome: CheckOutcome


class RevocationEvidence(_Model):
    """One OCSP response or CRL consulted for the signer's certificate (kept for the record)."""

    kind: Literal["ocsp", "crl"]
    source: RevocationSource
    #: OCSP producedAt / CRL thisUpdate.
    issued_at: VnDatetime
    next_update: VnDatetime | None = None
    #: OCSP certStatus (good / revoked / unknown) or, for a CRL, whether it lists the certificate.
    status: str
    authority: NfcStr | None = None
    sha256: str


class RevocationReport(_Model):
    """Revocation status at signing time (Decree 68/2024 Art. 31 k2; Circular 15/2025 Annex II)."""

    outcome: CheckOutcome
    revoked: bool = False
    revoked_at: VnDatetime | None = None
    revocation_reason: str | None = None
    source: RevocationSource = RevocationSource.NONE
    ocsp_responses: int = 0
    crls: int = 0
    evidence: list[RevocationEvidence] = Field(default_factory=list)
    #: Why the status was not obtained when ``outcome`` is unknown (docs/signing.md §12.4):
    #: untrusted_chain, scheme_not_allowed, host_not_allowed, response_too_large, timeout,
    #: fetch_failed, no_revocation_urls, offline, not_attempted.
    not_checked_reason: str | None = None


class ModificationReport(_Model):
    """Incremental updates after this signature (pyHanko difference analysis)."""

    coverage: Literal["entire_file", "entire_revision", "contiguous_block", "unclear"]
    #: pyHanko ModificationLevel name: none, lta_updates, form_filling, annotations, other.
    modification_level: str | None
    #: Changes permitted by the DocMDP/FieldMDP policy in force (None = not analysed).
    permitted: bool | None
    tampered: bool
    later_revisions: int
    detail: NfcStr | None = None
    #: Form fields other than signatures whose values later revisions filled (a permitted
    #: change under DocMDP P=2 unless a FieldMDP lock covers them), e.g. the number and date
    #: places written after the competent person's signature (Decree 30/2020 Art. 15).
    filled_fields: list[NfcStr] = Field(default_factory=list)


class SignatureReport(_Model):
    index: int = Field(description="1-based order of the signature in the document")
    field_name: NfcStr
    is_certification: bool = Field(description="DocMDP certification (author) signature")
    docmdp_permission: int | None = Field(default=None, description="DocMDP P value (1, 2 or 3)")
    sub_filter: str
    signature_format: SignatureFormat
    pades_level: PadesLevel
    digest_algorithm: str
    signature_algorithm: str
    # --- Circular 15/2025 §2.3.4 fields -------------------------------------------------
    issuing_ca: NfcStr = Field(description="§2.3.4(1) tổ chức cung cấp dịch vụ chứng thực (issuer)")
    signer_name: NfcStr = Field(description="§2.3.4(2) người ký / chủ thể ký")
    managing_unit: NfcStr | None = Field(
        default=None, description="§2.3.4(3) đơn vị quản lý (subject O / OU)"
    )
    signing_time: VnDatetime | None = Field(default=None, description="§2.3.4(4) thời gian ký")
    signing_time_source: SigningTimeSource
    integrity: CheckResult = Field(description="§2.3.4(5) tính toàn vẹn")
    valid_at_signing_time: CheckResult = Field(description="§2.3.4(6) hiệu lực tại thời điểm ký")
    certificate_valid_from: VnDatetime = Field(description="§2.3.4(7) thời hạn hiệu lực (from)")
    certificate_valid_to: VnDatetime = Field(description="§2.3.4(7) thời hạn hiệu lực (to)")
    # --- details --------------------------------------------------------------------------
    claimed_signing_time: VnDatetime | None = None
    signer_certificate: CertificateInfo
    certificate_chain: list[CertificateInfo]
    trust_anchor: NfcStr | None = None
    chain: CheckResult
    revocation: RevocationReport
    signature_timestamp: TimestampInfo | None = None
    has_signature_timestamp: bool = False
    #: Revocation data embedded for this signature (DSS after it or adbe-revocationInfoArchival).
    long_term_validation_data: bool = False
    modifications: ModificationReport
    #: ETSI EN 319 102-1 §5.1.3 main indication, derived from ``verdict`` (never TOTAL-PASSED
    #: for an invalid signature); the sub-indication names the decisive finding
    #: (signing.verification.indication, docs/signing.md §10.1).
    ades_indication: Literal["TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE"]
    ades_subindication: str | None = None
    verdict: Verdict
    verdict_vi: NfcStr
    reasons: list[Reason]


class DocumentTimestampReport(_Model):
    index: int
    field_name: NfcStr
    timestamp: TimestampInfo
    modifications: ModificationReport
    verdict: Verdict
    verdict_vi: NfcStr
    reasons: list[Reason]


class PolicyInfo(_Model):
    trust_anchors: list[NfcStr]
    revocation_mode: Literal["require", "soft"]
    online_fetching: bool


class VerificationReport(_Model):
    """Top-level verification report of one PDF."""

    schema_version: Literal["1.0"] = REPORT_SCHEMA_VERSION
    file_name: NfcStr | None = None
    file_sha256: str
    file_size: int
    verified_at: VnDatetime
    verdict: Verdict
    verdict_vi: NfcStr
    reasons: list[Reason]
    signature_count: int
    document_timestamp_count: int
    signatures: list[SignatureReport]
    document_timestamps: list[DocumentTimestampReport]
    policy: PolicyInfo
