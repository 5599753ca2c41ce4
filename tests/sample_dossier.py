"""The sample dossier of the tests and the benchmarks, built in one place: a food-safety
certificate application received by the Ninh Bình Department of Agriculture (docs/portal.md §2)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from schemas.dossier import Dossier, Owner
from schemas.timefmt import VN_TZ

CODE = "000.00.18.H42-251125-0001"
T0 = datetime(2025, 11, 25, 8, 5, tzinfo=VN_TZ)


def make_dossier(code: str = CODE, *, received_at: datetime = T0, **extra: object) -> Dossier:
    """A minimal valid dossier received at ``received_at``, due five days later; ``extra``
    overrides or adds fields."""
    fields: dict[str, object] = {
        "code": code,
        "agency_code": "000.00.18.H42",
        "procedure_code": "1.003901.H42",
        "owner": Owner(name="Nguyễn Văn An", id_number="037099001234"),
        "received_at": received_at,
        "due_at": received_at + timedelta(days=5),
        "summary": "Cấp giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm",
    }
    fields.update(extra)
    return Dossier.model_validate(fields)


def dossier_body(code: str = CODE, *, received_at: datetime = T0, **extra: object) -> dict[str, Any]:
    """:func:`make_dossier` as the intake API's JSON: the fields given, none of the defaults."""
    return make_dossier(code, received_at=received_at, **extra).model_dump(mode="json", exclude_unset=True)
