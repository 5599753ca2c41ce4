"""LGSP wire records as pydantic models (the shapes of ``schemas/wsdl/lgsp-motcua.xsd``).

Field names are the wire names (PascalCase), so one model serves SOAP (handed to zeep as a
dict) and REST (JSON body) alike. Repeated members are flat lists (docs/portal.md §4.2).
These models, never zeep objects, are what crosses the connector seam.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

#: ``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`` (UTC, milliseconds), docs/portal.md §4.2.
LgspDateTime = Annotated[
    str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$")
]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MAttachment(WireModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, ser_json_bytes="base64", val_json_bytes="base64"
    )

    AttachmentId: str
    AttachmentName: str
    IsDeleted: bool = False
    Base64: bytes | None = None
    """Inline content (§4.2). Left empty when the hub only has a download URL (``Url``)."""
    Url: str | None = None
    IsVerified: bool = False
    ComponentCode: str | None = None


class MDocFee(WireModel):
    FeeName: str
    FeeType: int = 4
    """Always 4 in the OpenCPS LGSP feed (§4.2)."""
    Price: int = Field(ge=0)


class MDocPaper(WireModel):
    PaperName: str
    Amount: int = Field(default=1, ge=0)
    PaperType: str | None = None


class MSupplementary(WireModel):
    SupplementaryId: str
    SendUser: str
    SendComment: str
    SendDate: LgspDateTime
    ReceivedUser: str | None = None
    ReceivedComment: str | None = None
    ReceivedDate: LgspDateTime | None = None
    IsReceived: bool = False
    Papers: list[MDocPaper] = Field(default_factory=list)
    Fees: list[MDocFee] = Field(default_factory=list)
    OldDateAppointed: LgspDateTime | None = None
    NewDateAppointed: LgspDateTime | None = None


class MSyncDocument(WireModel):
    """``MSyncDocument`` (§4.2) plus the hub's national-field extension (§3.3, §9)."""

    DocCode: str
    DocTypeCode: str
    DocTypeName: str | None = None
    CitizenName: str
    CitizenInfo: str | None = None
    ApplicantsId: str | None = None
    ApplicantsType: int = Field(ge=1, le=4)
    Address: str | None = None
    Email: str | None = None
    Phone: str | None = None
    Compendium: str | None = None
    DateReceived: LgspDateTime
    DateAppointed: LgspDateTime | None = None
    IsSuccess: bool = False
    SuccessDate: LgspDateTime | None = None
    ApproverName: str | None = None
    ApproverPosition: str | None = None
    SuccessNote: str | None = None
    IsReturned: bool = False
    ReturnedDate: LgspDateTime | None = None
    ReturnNote: str | None = None
    ReturnedType: int = Field(default=0, ge=0, le=1)
    FinishedDate: LgspDateTime | None = None
    Status: int = Field(ge=1, le=2)
    ProcessingOrganName: str | None = None
    HasSupplementary: bool = False
    RequireSupplementaryDate: LgspDateTime | None = None
    Note: str | None = None
    Attachments: list[MAttachment] = Field(default_factory=list)
    DocFees: list[MDocFee] = Field(default_factory=list)
    DocPapers: list[MDocPaper] = Field(default_factory=list)
    Supplementaries: list[MSupplementary] = Field(default_factory=list)
    OrganInchargeIdLevel1: str | None = None
    OrganInchargeName: str | None = None
    NationalStatus: int | None = Field(default=None, ge=1, le=10)
    Channel: int | None = None
    ReceivingAgencyCode: str | None = None
    FieldCode: str | None = None
    FieldName: str | None = None
    ReceiptNumber: str | None = None
    SubmittedDate: LgspDateTime | None = None
    RefusedDate: LgspDateTime | None = None
    PaidOnline: bool | None = None


class MDocumentTraces(WireModel):
    """One processing step (``MDocumentTraces``, §4.2; DVCQG ``CapNhatTienDoHoSoMC``, §3.4)."""

    DocumentId: str | None = None
    DocCode: str
    UserName: str
    UserPosition: str | None = None
    DateCreated: LgspDateTime
    Comment: str
    Status: int = Field(ge=1, le=10)
    OrganizationInchargeIdLevel1: str | None = None
    OrganizationInchargeName: str | None = None
    StartDate: LgspDateTime | None = None
    DeadlineDate: LgspDateTime | None = None


class UpdateDocumentTracesRequest(WireModel):
    """Body of ``UpdateDocumentTraces`` (SOAP wrapper element and REST JSON alike)."""

    Traces: list[MDocumentTraces] = Field(min_length=1)


class MResult(WireModel):
    """``MResult{Status, Message}`` (§4.2); ``DocumentId`` is optional (hub extension)."""

    model_config = ConfigDict(extra="ignore")

    Status: int
    Message: str = ""
    DocumentId: str | None = None


class LookupResult(WireModel):
    """``GetDocument`` answer: the result and, when found, the record."""

    Result: MResult
    Document: MSyncDocument | None = None
