"""Shared by the lookup tests and ``benchmarks/bench_lookup.py``."""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.dossier import ProcessingStep
from schemas.status import DossierStatus


def many_steps(count: int, start: datetime) -> list[ProcessingStep]:
    """``count`` processing steps a minute apart: a dossier that is slow to load and render."""
    return [
        ProcessingStep(
            handler="Trần Thị Bình",
            department="Chi cục Chăn nuôi và Thú y",
            at=start + timedelta(minutes=n),
            content=f"Bước xử lý thứ {n}: thẩm định hồ sơ, đối chiếu giấy tờ, ghi nhận ý kiến",
            status=DossierStatus.PROCESSING,
        )
        for n in range(count)
    ]
