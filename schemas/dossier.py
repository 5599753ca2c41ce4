"""Canonical one-stop dossier ("hồ sơ") and everything the portals exchange about it.

Field set: the union of the DVCQG ``DongBoHoSoMC`` / ``CapNhatTienDoHoSoMC`` records and the
LGSP ``MSyncDocument`` / ``MDocumentTraces`` types (docs/portal.md §3.3, §3.4, §4.2, §9).
Names are English; each field's docstring names its DVCQG counterpart.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import IntEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from schemas.codes import AgencyCode, DossierCode, ProcedureCode
from schemas.status import DossierStatus
from schemas.text import Token, VnName, VnText
from schemas.timefmt import HubTime

#: List bounds (docs/portal.md §3.10): far above any real dossier, low enough that one record
#: stays a small portal message. Steps are one per hand-over or status change.
MAX_DOCUMENTS = 200
MAX_FEES = 50
MAX_PAPERS = 100
MAX_SUPPLEMENTS = 50
MAX_RESULTS = 100
MAX_STEPS = 500
MAX_IDENTITIES = 5


class Channel(IntEnum):
    """``KenhThucHien`` (§3.6)."""

    IN_PERSON = 1
    ONLINE = 2
    POSTAL = 3


class OwnerType(IntEnum):
    """``LoaiDoiTuong`` (§3.6)."""

    CITIZEN = 1
    ENTERPRISE = 2
    STATE_AGENCY = 3
    ORGANISATION = 4


class ReturnMethod(IntEnum):
    """``HinhThuc`` / ``HinhThucTra``: 0 in person, 1 by post (§3.6)."""

    IN_PERSON = 0
    POSTAL = 1


class IdentityKind(IntEnum):
    """``DinhDanhCHS[].LoaiDinhDanh``: 1 = 12-digit CCCD, 2 = 9-digit CMND (§3.6)."""

    CCCD = 1
    CMND = 2


class FeeCollection(IntEnum):
    """``DanhSachLePhi[].HinhThucThu`` (secondary source, §3.6); 3 kept for unknown use."""

    AT_RECEIPT = 1
    AT_SUPPLEMENT = 2
    OTHER = 3
    AT_RETURN = 4


class FeeKind(IntEnum):
    """``DanhSachLePhi[].LoaiPhiLePhi`` (secondary source, §3.6)."""

    ORDINARY = 1
    APPRAISAL = 2
    RENEWAL = 3


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=False)


class Identity(Model):
    kind: IdentityKind
    number: Annotated[str, Field(pattern=r"^(?:[0-9]{9}|[0-9]{12})$")]

    @model_validator(mode="after")
    def _length_matches_kind(self) -> Self:
        expected = 12 if self.kind is IdentityKind.CCCD else 9
        if len(self.number) != expected:
            raise ValueError(f"{self.kind.name} numbers have {expected} digits")
        return self


class Owner(Model):
    """Dossier owner (``ChuHoSo``, ``LoaiDoiTuong``, ``SoGiayToChuHoSo``, ``DinhDanhCHS``)."""

    name: VnName
    type: OwnerType = OwnerType.CITIZEN
    id_number: Annotated[str | None, Field(pattern=r"^[0-9A-Za-z-]{1,20}$")] = None
    """``SoGiayToChuHoSo``: CCCD/CMND, passport or tax number: ASCII letters, digits, ``-``."""
    identities: list[Identity] = Field(default_factory=list, max_length=MAX_IDENTITIES)
    portal_account_id: Token | None = None
    """``MaDoiTuong``: the applicant's DVCQG account id (TechID), online dossiers only."""
    verified_with_vneid: bool = False
    """``TaiKhoanDuocXacThucVoiVNeID``."""


class Contact(Model):
    email: Annotated[str | None, Field(max_length=254, pattern=r"^[!-?A-~]+@[!-?A-~]+$")] = None
    phone: Annotated[str | None, Field(max_length=20, pattern=r"^\+?[0-9 .()-]{6,20}$")] = None
    fax: Token | None = None
    address: VnText | None = None
    other: VnText | None = None
    """``ThongTinKhac``."""


class SubmittedDocument(Model):
    """``TaiLieuNop[]`` element."""

    id: Annotated[Token, Field(min_length=1)]
    name: VnName
    component_code: Token | None = None
    """``MaThanhPhanHoSo``."""
    download_url: HttpUrl | None = None
    deleted: bool = False
    digitised: bool | None = None
    """``DuocSoHoa``."""
    reuse: int | None = Field(default=None, ge=0, le=2)
    """``DuocTaiSuDung`` (0/1/2, meanings unconfirmed)."""
    from_national_repository: bool = True
    """``DuocLayTuKhoDMQG`` (default "1")."""
    replaced_result_code: Token | None = None


class Fee(Model):
    """``DanhSachLePhi[]`` element."""

    name: VnName
    code: Token | None = None
    collection: FeeCollection = FeeCollection.AT_RECEIPT
    amount: Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=0)]
    kind: FeeKind = FeeKind.ORDINARY


class OtherPaper(Model):
    """``DanhSachTepDinhKemKhac[]`` element."""

    name: VnName
    quantity: int = Field(default=1, ge=0, le=10_000)
    kind: Token | None = None


class SupplementRequest(Model):
    """``DanhSachHoSoBoSung[]``: a supplement request (Mẫu 02) or a re-dating (Mẫu 04)."""

    id: Annotated[Token, Field(min_length=1)]
    requested_by: VnText
    content: VnText
    requested_at: HubTime
    received_by: VnText | None = None
    received_info: VnText | None = None
    received_at: HubTime | None = None
    fulfilled: bool = False
    papers: list[OtherPaper] = Field(default_factory=list, max_length=MAX_PAPERS)
    fees: list[Fee] = Field(default_factory=list, max_length=MAX_FEES)
    old_due_at: HubTime | None = None
    """``NgayHenTraTruoc``."""
    new_due_at: HubTime | None = None
    """``NgayHenTraMoi``."""


class ResultDocument(Model):
    """``DanhSachGiayToKetQua[]``: a result paper served from the hub's download URL."""

    id: Annotated[Token, Field(min_length=1)]
    name: VnName
    component_code: Token | None = None
    result_code: Token | None = None
    """``MaGiayToKetQua``."""
    download_url: HttpUrl | None = None
    sha256: Annotated[str | None, Field(pattern=r"^[0-9a-f]{64}$")] = None
    signed: bool = False


class LateEntryMark(Model):
    """An event entered after the fact (work done by hand while the hub or the department's
    software was down, Decision 692/QĐ-SNN Art. 13.2): who entered it, when, and why. Set by
    the hub on the stored step, never by the sender (docs/architecture.md, "Late entries")."""

    entered_by: VnName
    entered_at: HubTime
    """When it reached the hub; the step's ``at`` keeps the real time of the event."""
    reason: VnText


class ProcessingStep(Model):
    """``CapNhatTienDoHoSoMC`` record / LGSP ``MDocumentTraces`` (§3.4)."""

    handler: VnName
    """``NguoiXuLy`` (truncated to 50 characters on the wire)."""
    position: VnText | None = None
    """``ChucDanh``."""
    department: VnText | None = None
    """``PhongBanXuLy``."""
    at: HubTime
    """``ThoiDiemXuLy``."""
    content: VnText
    """``NoiDungXuLy``."""
    status: DossierStatus
    started_at: HubTime | None = None
    step_due_at: HubTime | None = None
    """``NgayKetThucTheoQuyDinh``."""
    late_entry: LateEntryMark | None = None
    """Set when the step was entered late (:class:`LateEntryMark`); not sent on the wire."""


class Dossier(Model):
    """A one-stop dossier as the hub stores and routes it."""

    code: DossierCode
    """``MaHoSo``."""
    agency_code: AgencyCode
    """Receiving agency (``madonvi``)."""
    procedure_code: ProcedureCode
    """``MaTTHC`` as the department knows it; mapped to the national code by the connector."""
    procedure_name: VnText | None = None
    field_code: Token | None = None
    """``MaLinhVuc``."""
    field_name: VnText | None = None
    channel: Channel = Channel.IN_PERSON
    receipt_number: Token | None = None
    owner: Owner
    contact: Contact = Field(default_factory=Contact)
    summary: VnText = ""
    """``TrichYeuHoSo``."""
    status: DossierStatus = DossierStatus.RECEIVED
    submitted_at: HubTime | None = None
    received_at: HubTime
    due_at: HubTime | None = None
    refused_at: HubTime | None = None
    finished_at: HubTime | None = None
    """``NgayKetThucXuLy``."""
    returned_at: HubTime | None = None
    return_method: ReturnMethod = ReturnMethod.IN_PERSON
    return_info: VnText | None = None
    processing_agency: VnText | None = None
    """``DonViXuLy``."""
    note: VnText | None = None
    paid_online: bool = False
    has_digitised_components: bool = False
    documents: list[SubmittedDocument] = Field(default_factory=list, max_length=MAX_DOCUMENTS)
    fees: list[Fee] = Field(default_factory=list, max_length=MAX_FEES)
    other_papers: list[OtherPaper] = Field(default_factory=list, max_length=MAX_PAPERS)
    supplements: list[SupplementRequest] = Field(default_factory=list, max_length=MAX_SUPPLEMENTS)
    results: list[ResultDocument] = Field(default_factory=list, max_length=MAX_RESULTS)
    steps: list[ProcessingStep] = Field(default_factory=list, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _times_are_consistent(self) -> Self:
        if self.due_at is not None and self.due_at < self.received_at:
            raise ValueError("due_at is before received_at")
        if self.returned_at is not None and self.status is not DossierStatus.RETURNED:
            raise ValueError("returned_at is set but status is not 10 (Đã trả kết quả)")
        return self

    def is_late(self, now: datetime) -> bool:
        """Late = past ``NgayHenTra`` without a result (§2.3); triggers Mẫu 04."""
        return (
            self.due_at is not None
            and now > self.due_at
            and self.status not in (DossierStatus.FINISHED, DossierStatus.RETURNED)
            and not self.status.is_final
        )

    def finished_on_time(self) -> bool | None:
        """National on-time rule (§3.9): ``NgayKetThucXuLy <= NgayHenTra``."""
        if self.finished_at is None or self.due_at is None:
            return None
        return self.finished_at <= self.due_at
