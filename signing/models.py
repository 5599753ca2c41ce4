"""Pydantic models of the signing service: options, certificate check results, outcomes."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from signing.appearance import Box

__all__ = [
    "BatchItemResult",
    "BatchResult",
    "CertificateCheck",
    "RevocationPolicy",
    "SignOptions",
    "SignResult",
    "SignRole",
    "SignatureLevel",
    "SigningWarning",
]


class SignatureLevel(StrEnum):
    """PAdES baseline levels (ETSI EN 319 142-1)."""

    B_B = "B-B"
    B_T = "B-T"  # + RFC 3161 signature time-stamp (Decree 68/2024 Art. 29 k4)
    B_LT = "B-LT"  # + validation data in the DSS
    B_LTA = "B-LTA"  # + document time-stamp


class SignRole(StrEnum):
    """Which Decree 30/2020 signature this is (Appendix I; VGCA Sign verbs, docs/signing.md §6.5)."""

    PERSONAL = "personal"  # competent person ("approved"), box 7c: blue signature image
    AGENCY = "agency"  # agency seal ("issued"), box 8: red seal over the left third
    COPY = "copy"  # electronic copy (SAO Y / SAO LỤC / TRÍCH SAO), box 14: text only
    ATTACHMENT = "attachment"  # separate-file attachment/appendix: text only, top right
    INVISIBLE = "invisible"


class RevocationPolicy(StrEnum):
    """What to do when neither OCSP nor a current CRL can be consulted (Circular 15/2025 Annex II)."""

    WARN = "warn"
    REFUSE = "refuse"


class SigningWarning(BaseModel):
    code: str
    message: str
    message_vi: str


class CertificateCheck(BaseModel):
    """Outcome of the pre-signing certificate check (Circular 15/2025 §2.2, Decree 68/2024 Art. 31).

    ``ocsp_responses`` / ``crls`` hold the DER (base64) of the status evidence consulted at signing
    time, which the Circular requires the signing software to store.
    """

    model_config = ConfigDict(frozen=True)

    subject: str
    issuer: str
    serial_hex: str
    not_before: datetime
    not_after: datetime
    key_usage: list[str]
    checked_at: datetime
    chain: list[str] = Field(description="Subjects from the trust anchor down to the signer")
    revocation_status: Literal["good", "unknown"]
    revocation_source: Literal["ocsp", "crl", "none"]
    ocsp_responses: list[str] = Field(default_factory=list)
    crls: list[str] = Field(default_factory=list)
    warnings: list[SigningWarning] = Field(default_factory=list)


class SignOptions(BaseModel):
    """Per-signature options. ``role`` picks the Decree 30 appearance."""

    level: SignatureLevel = SignatureLevel.B_T
    role: SignRole = SignRole.INVISIBLE
    field_name: str | None = None
    certify: bool = Field(
        default=False,
        description="First signature as a DocMDP P=2 certification (form fill and signing still allowed)",
    )
    #: Empty signature fields to create together with this signature (before a certification
    #: locks the document), e.g. the agency seal field when the competent person certifies.
    #: ``None`` = automatic: a certifying personal signature reserves the agency field.
    reserve_fields: list[SignRole] | None = None
    #: FieldMDP lock (ISO 32000-1 §13.8.2.4) carried by this signature: every form field is
    #: locked except these and the fields reserved with it; ``None`` = no lock. The competent
    #: person leaves the number and date places open (Decree 30/2020 Art. 15; signing.issuance).
    open_fields: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=16
    )
    reason: str | None = None
    location: str | None = None
    prefer_pss: bool = False
    digest_algorithm: Literal["sha256", "sha384", "sha512"] = "sha256"
    #: Text parameters for text stamps (copy form, document number, agency name…).
    copy_form: Literal["SAO Y", "SAO LỤC", "TRÍCH SAO"] = "SAO Y"
    document_number: str | None = Field(default=None, max_length=80)
    agency_name: str | None = Field(default=None, max_length=200)
    template: str = Field(default="default", max_length=64)
    #: Explicit box of the personal signature image (pt, origin bottom-left, page -1 = last);
    #: the agency seal follows it. ``None``: found between the signer's title and name, else
    #: the template's box (docs/signing.md §5.5).
    position: Box | None = None

    @field_validator("copy_form", "document_number", "agency_name", "reason", "location", mode="before")
    @classmethod
    def _nfc(cls, value: object) -> object:
        """Vietnamese text is stored and drawn in Unicode NFC (TCVN 6909:2001)."""
        if isinstance(value, str):
            value = unicodedata.normalize("NFC", value).strip()
            if any(unicodedata.category(ch) == "Cc" for ch in value):
                raise ValueError("control characters are not allowed")
        return value

    @model_validator(mode="after")
    def _role_needs(self) -> SignOptions:
        """Decree 30/2020 Appendix I: copies show the copying agency; attachments their number."""
        if self.role is SignRole.COPY and not self.agency_name:
            raise ValueError("an electronic copy (SAO Y/SAO LỤC/TRÍCH SAO) needs agency_name")
        if self.role is SignRole.ATTACHMENT and not self.document_number:
            raise ValueError("a separate-file attachment needs document_number")
        if self.field_name is not None and not (
            0 < len(self.field_name) <= 64 and self.field_name.isprintable()
        ):
            raise ValueError("field_name must be 1-64 printable characters")
        return self


class SignResult(BaseModel):
    output_path: Path | None = None
    size: int
    field_name: str
    level: SignatureLevel
    signed_at: datetime
    certificate: CertificateCheck | None
    warnings: list[SigningWarning] = Field(default_factory=list)


class BatchItemResult(BaseModel):
    input_path: Path
    output_path: Path | None = None
    ok: bool
    error_code: str | None = None
    error: str | None = None
    error_vi: str | None = None
    field_name: str | None = None


ItemT = TypeVar("ItemT", bound=BaseModel)


class SignedBatch(BaseModel, Generic[ItemT]):
    """Documents signed with one key whose certificate was checked once: each one's outcome,
    the check and its warnings, the time the batch took."""

    items: list[ItemT]
    certificate: CertificateCheck | None
    warnings: list[SigningWarning] = Field(default_factory=list)
    elapsed_seconds: float


class BatchResult(SignedBatch[BatchItemResult]):
    """A batch of files signed into an output directory (:meth:`SigningService.sign_batch`)."""

    @property
    def succeeded(self) -> int:
        return sum(1 for i in self.items if i.ok)

    @property
    def failed(self) -> int:
        return sum(1 for i in self.items if not i.ok)
