"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from hub.api.deps import DatabaseDep
from schemas.errors import RetryableError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers")
def readyz(db: DatabaseDep) -> dict[str, Any]:
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver failure means "not ready"
        raise RetryableError(
            "database unavailable",
            message_vi="cơ sở dữ liệu không sẵn sàng",
            details={"error": type(exc).__name__},
        ) from exc
    return {"status": "ready", "database": db.engine.dialect.name}
