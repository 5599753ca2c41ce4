"""Time handling: aware datetimes inside, Vietnam local time on the wire.

The DVCQG adapter formats times as ``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh without an offset
(docs/portal.md §3.7); the hub never holds a naive datetime.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, Field

from schemas.errors import InvalidInputError

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DVCQG_FORMAT = "%Y%m%d%H%M%S"

#: Earliest and latest time a dossier may carry: dossier codes hold the receipt day as
#: ``YYMMDD`` (Circular 01/2018 Art. 19), so 2000–2099 in Vietnam time (docs/portal.md §3.7).
EARLIEST = datetime(2000, 1, 1, tzinfo=VN_TZ)
LATEST = datetime(2099, 12, 31, 23, 59, 59, tzinfo=VN_TZ)

#: An aware time inside :data:`EARLIEST`–:data:`LATEST` (year 1 or 9999 cannot be sent as
#: ``yyyyMMddHHmmss`` and would sit in the delivery queue).
HubTime = Annotated[AwareDatetime, Field(ge=EARLIEST, le=LATEST)]


def now_vn() -> datetime:
    return datetime.now(VN_TZ)


def now_utc() -> datetime:
    return datetime.now(UTC)


def to_dvcqg(value: datetime | None) -> str:
    """``yyyyMMddHHmmss`` in Vietnam time; empty string when absent (§3.7)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        raise InvalidInputError("naive datetime cannot be sent to the portal")
    return value.astimezone(VN_TZ).strftime(DVCQG_FORMAT)


def from_dvcqg(value: str | None) -> datetime | None:
    """Parse ``yyyyMMddHHmmss`` as Vietnam local time; empty or missing → ``None``."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if len(text) != 14 or not (text.isascii() and text.isdigit()):
        raise InvalidInputError(
            f"time {value!r} is not yyyyMMddHHmmss",
            message_vi=f"thời gian {value!r} không đúng định dạng yyyyMMddHHmmss",
        )
    try:
        return datetime.strptime(text, DVCQG_FORMAT).replace(tzinfo=VN_TZ)
    except ValueError as exc:
        raise InvalidInputError(f"time {value!r} is not a valid date: {exc}") from exc


def iso_vn(value: datetime) -> str:
    """ISO 8601 with the Vietnam offset, e.g. ``2026-03-05T14:07:31+07:00`` (Decree 30 App. I)."""
    return value.astimezone(VN_TZ).isoformat(timespec="seconds")
