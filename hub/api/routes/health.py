"""Liveness and readiness probes (readiness rules: :mod:`hub.health`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from hub.api.deps import DatabaseDep, HealthDep, public
from hub.api.errors import error_responses, hub_error_response
from hub.health import check_readiness
from schemas.errors import RetryableError

router = APIRouter(
    tags=["health"], dependencies=[Depends(public("probes of the orchestrator and load balancer"))]
)


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database answers at the current schema, the in-process worker is alive",
    responses=error_responses(503),
    response_model=None,
)
def readyz(db: DatabaseDep, health: HealthDep) -> dict[str, Any] | JSONResponse:
    readiness = check_readiness(db, health)
    if not readiness.ready:
        # Answered, not raised: a probe polled every few seconds must not log every answer.
        return hub_error_response(
            RetryableError(
                f"not ready: {'; '.join(readiness.reasons)}",
                message_vi="hệ thống chưa sẵn sàng",
                details={"reasons": readiness.reasons, **readiness.details},
            )
        )
    return {"status": "ready", **readiness.details}
