"""Options of the DVCQG connector, read from ``EndpointSettings.options``.

Everything the national portal's public material leaves unconfirmed (docs/portal.md §10:
adapter paths, the ``dstcode`` header, the ``error_code`` list, several enumerations) is an
option here, with the values production one-stop systems use as defaults (§3.1–§3.8).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import ConfigurationError


class DvcqgOptions(BaseModel):
    """Connector options; unknown keys are refused so a typo fails at start-up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    madonvi: str = ""
    """Agency code sent in every envelope (``madonvi``, §3.1)."""
    login_path: str = "/mapi/login"
    """Relative to the adapter URL, e.g. ``…/apiDVC-GPLX/tcdbdvcdata`` + ``/mapi/login`` (§3.1)."""
    data_path: str = "/mapi/g"
    share_path: str | None = None
    """Reference-data ("chia sẻ") path; ``None`` = same as ``data_path`` (§3.1, §10 item 2)."""
    progress_path: str | None = None
    """Thanh Hóa posts progress to a separate URL (§3.8); ``None`` = ``data_path``."""
    routing_header_name: str = "dstcode"
    routing_header_value: str | None = None
    """Value of the ``dstcode`` header; not sent when unset (meaning unknown, §10 item 2)."""
    message_id_header: str = "X-Message-Id"
    session_ttl_seconds: Annotated[float, Field(gt=0)] = 1800
    """The portal does not announce the session lifetime; renew proactively after this long."""
    login_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    login_backoff_seconds: Annotated[float, Field(ge=0)] = 0.5

    # --- answer classification (§3.8, §10 item 3) ---------------------------------------
    success_codes: tuple[str, ...] = ("0", "00")
    busy_codes: tuple[str, ...] = ()
    """Portal ``error_code`` values meaning "busy, try later" (retryable)."""
    auth_error_codes: tuple[str, ...] = ("401", "-401", "403")
    auth_error_markers: tuple[str, ...] = ("phiên làm việc", "session", "hết hạn đăng nhập")
    """Case-insensitive substrings of ``message`` that mean "session expired, log in again"."""
    duplicate_markers: tuple[str, ...] = ("đã tồn tại",)
    text_success_markers: tuple[str, ...] = ("thành công",)
    """Plain-text progress answers containing one of these are success (§3.8)."""

    # --- mapping (§3.3, §3.4, §3.6) --------------------------------------------------------
    progress_chunk_size: Annotated[int, Field(ge=1, le=500)] = 10
    collapse_statuses: bool = False
    """Thanh Hóa sends local statuses 5, 6 and 8 as 9 (§3.4); off by default."""
    noi_nop_ho_so: str = "2"
    """``NoiNopHoSo``: Thanh Hóa always sends "2" (meaning unconfirmed, §3.6)."""
    csdl_codes: tuple[str, ...] = ("7",)
    """``DSKetNoiCSDL[].MaCSDL``: Thanh Hóa always sends "7" (meaning unconfirmed, §3.6)."""
    identity_fallback: tuple[str, str] | None = None
    """``DinhDanhCHS`` placeholder when the owner has none; Thanh Hóa uses ("2", "000000001")."""
    procedure_map: dict[str, str] = Field(default_factory=dict)
    """Local → national ``MaTTHC`` (OpenCPS ``ServiceInfoMapping``, Thanh Hóa ``ketnoi.json``)."""
    enrich_from_catalog: bool = True
    """Fill ``TenTTHC``/``MaLinhVuc``/``TenLinhVuc`` from ``LayThuTuc`` when the dossier lacks them."""
    catalog_ttl_seconds: Annotated[float, Field(gt=0)] = 6 * 3600
    lookup_before_create: bool = False
    """Ask ``TraCuuHoSo`` before the first create of a dossier (OpenCPS does, §3.2)."""
    known_dossiers_capacity: Annotated[int, Field(ge=0)] = 100_000
    """How many dossier codes the connector remembers as accepted (in memory, LRU)."""

    @classmethod
    def from_mapping(cls, options: dict[str, Any]) -> DvcqgOptions:
        try:
            return cls.model_validate(options)
        except ValidationError as exc:
            lines = [
                f"  options.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            ]
            raise ConfigurationError(
                "invalid DVCQG connector options:\n" + "\n".join(lines),
                message_vi="cấu hình kết nối Cổng DVCQG không hợp lệ:\n" + "\n".join(lines),
            ) from None
