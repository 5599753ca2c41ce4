"""Wire models of the DVCQG adapter API with the exact Vietnamese key names.

Field sets: docs/portal.md §3.3 (``DongBoHoSoMC`` record, nested arrays, newer fields),
§3.4 (``CapNhatTienDoHoSoMC``), §3.1 (envelope). Every value travels as a string, the way the
production callers send it (OpenCPS ``createSyncDossierBodyRequest``): times
``yyyyMMddHHmmss`` in Vietnam time (§3.7), booleans ``"True"``/``"False"`` or ``"0"``/``"1"``
(§3.6), codes as digit strings. The models are strict (no type coercion, unknown keys refused)
so the simulator and the inbound route can use them to validate what they receive.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from schemas.errors import InvalidInputError
from schemas.timefmt import from_dvcqg

#: ``TrichYeuHoSo`` must stay under 1000 characters (Thanh Hóa ``SyncLocalDataToDVCQGService``).
SUMMARY_MAX = 999
#: ``NguoiXuLy`` is cut to 50 characters (Thanh Hóa, §3.4).
HANDLER_MAX = 50
#: Placeholder Thanh Hóa sends when the summary is empty (§3.3).
EMPTY_SUMMARY = "Dinhkem"

_URL_RE = re.compile(r"^https?://[^\s/]+(?:/\S*)?$")


def _time(value: str) -> str:
    try:
        from_dvcqg(value)
    except InvalidInputError as exc:
        raise ValueError(exc.message) from None
    return value


def _url(value: str) -> str:
    if value and not _URL_RE.match(value):
        raise ValueError("expected an http(s) download URL")
    return value


#: ``yyyyMMddHHmmss`` or empty (§3.7).
WireTime = Annotated[str, AfterValidator(_time)]
#: ``yyyyMMddHHmmss``, required.
WireTimeRequired = Annotated[str, StringConstraints(min_length=14), AfterValidator(_time)]
WireUrl = Annotated[str, AfterValidator(_url)]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]
StatusCode = Literal["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
TrueFalse = Literal["True", "False"]
ZeroOne = Literal["0", "1"]
Digits = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,15}$")]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, frozen=True)

    def wire(self) -> dict[str, object]:
        """The JSON object exactly as it goes on the wire."""
        return self.model_dump(by_alias=True, mode="json")


class WireDocument(WireModel):
    """``TaiLieuNop[]`` element."""

    id: NonEmpty = Field(alias="TepDinhKemId")
    name: NonEmpty = Field(alias="TenTepDinhKem")
    deleted: TrueFalse = Field(default="False", alias="IsDeleted")
    component_code: str = Field(default="", alias="MaThanhPhanHoSo")
    download_url: WireUrl = Field(default="", alias="DuongDanTaiTepTin")
    digitised: Literal["", "0", "1"] = Field(default="", alias="DuocSoHoa")
    reuse: Literal["", "0", "1", "2"] = Field(default="", alias="DuocTaiSuDung")
    from_national_repository: ZeroOne = Field(default="1", alias="DuocLayTuKhoDMQG")
    replaced_result_code: str = Field(default="", alias="MaKetQuaThayThe")


class WireFee(WireModel):
    """``DanhSachLePhi[]`` / ``DanhSachLePhiBoSung[]`` element."""

    name: NonEmpty = Field(alias="TenPhiLePhi")
    code: str = Field(default="", alias="MaPhiLePhi")
    collection: Literal["1", "2", "3", "4"] = Field(default="1", alias="HinhThucThu")
    amount: Digits = Field(alias="Gia")
    kind: Literal["1", "2", "3"] = Field(default="1", alias="LoaiPhiLePhi")


class WirePaper(WireModel):
    """``DanhSachTepDinhKemKhac[]`` / ``DanhSachGiayToBoSung[]`` element."""

    name: NonEmpty = Field(alias="TenGiayTo")
    quantity: Digits = Field(default="1", alias="SoLuong")
    kind: str = Field(default="", alias="LoaiGiayTo")


class WireSupplement(WireModel):
    """``DanhSachHoSoBoSung[]``: supplement request or re-dating (``NgayHenTraTruoc/Moi``)."""

    id: NonEmpty = Field(alias="HoSoBoSungId")
    requested_by: NonEmpty = Field(alias="NguoiYeuCauBoSung")
    content: str = Field(default="", alias="NoiDungBoSung")
    requested_at: WireTimeRequired = Field(alias="NgayBoSung")
    received_by: str = Field(default="", alias="NguoiTiepNhanBoSung")
    received_info: str = Field(default="", alias="ThongTinTiepNhan")
    received_at: WireTime = Field(default="", alias="NgayTiepNhanBoSung")
    fulfilled: ZeroOne = Field(default="0", alias="TrangThaiBoSung")
    papers: list[WirePaper] = Field(default_factory=list, alias="DanhSachGiayToBoSung")
    fees: list[WireFee] = Field(default_factory=list, alias="DanhSachLePhiBoSung")
    old_due_at: WireTime = Field(default="", alias="NgayHenTraTruoc")
    new_due_at: WireTime = Field(default="", alias="NgayHenTraMoi")


class WireResult(WireModel):
    """``DanhSachGiayToKetQua[]`` element; the portal downloads ``DuongDanTepTinKetQua``."""

    name: NonEmpty = Field(alias="TenGiayTo")
    component_code: str = Field(default="", alias="MaThanhPhanHoSo")
    id: NonEmpty = Field(alias="GiayToId")
    download_url: WireUrl = Field(default="", alias="DuongDanTepTinKetQua")
    result_code: str = Field(default="", alias="MaGiayToKetQua")


class WireIdentity(WireModel):
    """``DinhDanhCHS[]``: 1 = 12-digit CCCD, 2 = 9-digit CMND (§3.6)."""

    kind: Literal["1", "2"] = Field(alias="LoaiDinhDanh")
    number: Annotated[str, StringConstraints(pattern=r"^([0-9]{9}|[0-9]{12})$")] = Field(alias="SoDinhDanh")


class WireDatabaseLink(WireModel):
    """``DSKetNoiCSDL[]`` element."""

    code: NonEmpty = Field(alias="MaCSDL")


class WireDossier(WireModel):
    """One ``DongBoHoSoMC`` record (§3.3)."""

    code: NonEmpty = Field(alias="MaHoSo")
    procedure_code: NonEmpty = Field(alias="MaTTHC")
    procedure_name: str = Field(default="", alias="TenTTHC")
    field_code: str = Field(default="", alias="MaLinhVuc")
    field_name: str = Field(default="", alias="TenLinhVuc")
    channel: Literal["1", "2", "3"] = Field(default="1", alias="KenhThucHien")
    receipt_number: str = Field(default="", alias="SoBienNhan")
    owner_name: NonEmpty = Field(alias="ChuHoSo")
    owner_id_number: Annotated[str, StringConstraints(max_length=20)] = Field(
        default="", alias="SoGiayToChuHoSo"
    )
    owner_type: Literal["1", "2", "3", "4"] = Field(default="1", alias="LoaiDoiTuong")
    portal_account_id: str = Field(default="", alias="MaDoiTuong")
    other_info: str = Field(default="", alias="ThongTinKhac")
    email: str = Field(default="", alias="Email")
    fax: str = Field(default="", alias="Fax")
    phone: str = Field(default="", alias="SoDienThoai")
    summary: Annotated[str, StringConstraints(min_length=1, max_length=SUMMARY_MAX)] = Field(
        default=EMPTY_SUMMARY, alias="TrichYeuHoSo"
    )
    received_at: WireTimeRequired = Field(alias="NgayTiepNhan")
    due_at: WireTime = Field(default="", alias="NgayHenTra")
    status: StatusCode = Field(alias="TrangThaiHoSo")
    returned_at: WireTime = Field(default="", alias="NgayTra")
    return_info: str = Field(default="", alias="ThongTinTra")
    return_method: ZeroOne = Field(default="0", alias="HinhThuc")
    finished_at: WireTime = Field(default="", alias="NgayKetThucXuLy")
    processing_agency: str = Field(default="", alias="DonViXuLy")
    note: str = Field(default="", alias="GhiChu")
    documents: list[WireDocument] = Field(default_factory=list, alias="TaiLieuNop")
    fees: list[WireFee] = Field(default_factory=list, alias="DanhSachLePhi")
    other_papers: list[WirePaper] = Field(default_factory=list, alias="DanhSachTepDinhKemKhac")
    supplements: list[WireSupplement] = Field(default_factory=list, alias="DanhSachHoSoBoSung")
    results: list[WireResult] = Field(default_factory=list, alias="DanhSachGiayToKetQua")
    submission_place: str = Field(default="", alias="NoiNopHoSo")
    has_digitised_components: ZeroOne = Field(default="0", alias="HoSoCoThanhPhanSoHoa")
    verified_with_vneid: ZeroOne = Field(default="0", alias="TaiKhoanDuocXacThucVoiVNeID")
    paid_online: Literal["1", "3"] = Field(default="3", alias="DuocThanhToanTrucTuyen")
    refused_at: WireTime = Field(default="", alias="NgayTuChoi")
    submitted_at: WireTime = Field(default="", alias="NgayNopHoSo")
    identities: list[WireIdentity] = Field(default_factory=list, alias="DinhDanhCHS")
    database_links: list[WireDatabaseLink] = Field(default_factory=list, alias="DSKetNoiCSDL")


class WireProgress(WireModel):
    """One ``CapNhatTienDoHoSoMC`` record (§3.4)."""

    code: NonEmpty = Field(alias="MaHoSo")
    handler: Annotated[str, StringConstraints(min_length=1, max_length=HANDLER_MAX)] = Field(
        alias="NguoiXuLy"
    )
    position: str = Field(default="", alias="ChucDanh")
    at: WireTimeRequired = Field(alias="ThoiDiemXuLy")
    department: str = Field(default="", alias="PhongBanXuLy")
    content: NonEmpty = Field(alias="NoiDungXuLy")
    status: StatusCode = Field(alias="TrangThai")
    started_at: WireTime = Field(default="", alias="NgayBatDau")
    step_due_at: WireTime = Field(default="", alias="NgayKetThucTheoQuyDinh")


# --- envelopes (§3.1) ---------------------------------------------------------------------


class LoginRequest(WireModel):
    username: NonEmpty
    password: NonEmpty


class SyncEnvelope(WireModel):
    """``DongBoHoSoMC`` call: ``isUpdating`` "False" = create, "True" = update."""

    session: NonEmpty
    madonvi: str
    service: Literal["DongBoHoSoMC"]
    is_updating: TrueFalse = Field(alias="isUpdating")
    data: Annotated[list[WireDossier], Field(min_length=1)]


class ProgressEnvelope(WireModel):
    session: NonEmpty
    madonvi: str
    service: Literal["CapNhatTienDoHoSoMC"]
    data: Annotated[list[WireProgress], Field(min_length=1)]


class LookupEnvelope(WireModel):
    """``TraCuuHoSo`` call (§3.2)."""

    session: NonEmpty
    madonvi: str
    service: Literal["TraCuuHoSo"]
    mahoso: NonEmpty
