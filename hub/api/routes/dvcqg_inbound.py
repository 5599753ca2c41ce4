"""``POST /api/v1/dvcqg/inbound/dossiers``: dossiers the national portal pushes (docs/portal.md §6).

Only callers holding the ``portal`` role get in. The handler validates and converts the push
(:mod:`connectors.dvcqg.inbound`) and hands the canonical dossier to an acceptor: the one
set as ``Services.dvcqg_accept`` if any, otherwise the hub's intake service
(:func:`intake_acceptor`, origin ``dvcqg``). Answers use the §6 shape
``{"error_code": 0 | 1 | -1, "message": "<MaHoSo>| <reason>"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from connectors.dvcqg.inbound import (
    DEFAULT_MAX_PUSH_BYTES,
    InboundAccept,
    InboundAnswer,
    handle_push,
)
from hub.api.deps import get_intake, get_services, require_role
from hub.api.errors import http_status_for
from hub.api.limits import read_body
from hub.services.intake import IntakeService
from schemas.changes import DossierUpsert
from schemas.dossier import Dossier
from schemas.errors import NotFoundError, PayloadTooLargeError

PUSH_PATH = "/api/v1/dvcqg/inbound/dossiers"

router = APIRouter(tags=["dvcqg"])


def intake_acceptor(intake: IntakeService, *, actor: str = "dvcqg-portal") -> Callable[[Dossier, str], bool]:
    """Store a pushed dossier once; a ``MaHoSo`` already held is a duplicate (§6, answer 1).

    A re-push never overwrites the province's record: officers may have moved the dossier on.
    """

    def accept(dossier: Dossier, idempotency_key: str) -> bool:
        try:
            intake.get_dossier(dossier.code)
        except NotFoundError:
            result = intake.upsert_dossier(
                DossierUpsert(dossier=dossier), actor=actor, idempotency_key=idempotency_key, origin="dvcqg"
            )
            return result.created
        return False

    return accept


def get_acceptor(request: Request) -> InboundAccept:
    registered = get_services(request).dvcqg_accept
    if registered is not None:
        return registered
    return intake_acceptor(get_intake(request))


@router.post(
    PUSH_PATH,
    response_model=InboundAnswer,
    dependencies=[Depends(require_role("portal"))],
    summary="Receive a dossier pushed by the National Public Service Portal",
)
async def receive_push(
    request: Request, accept: Annotated[InboundAccept, Depends(get_acceptor)]
) -> JSONResponse:
    limit = get_services(request).dvcqg_push_max_bytes or DEFAULT_MAX_PUSH_BYTES
    try:
        body = await read_body(request, limit)
    except PayloadTooLargeError:
        too_large = InboundAnswer(error_code=-1, message=f"| body larger than {limit} bytes")
        return JSONResponse(too_large.model_dump(), status_code=413)
    key = request.headers.get("idempotency-key") or request.headers.get("x-message-id")
    refusal, answer = await handle_push(
        body,
        request.headers.get("content-type"),
        accept,
        idempotency_key=key,
        max_bytes=limit,
        run_sync=run_in_threadpool,
    )
    status = 200 if refusal is None else http_status_for(refusal)
    return JSONResponse(answer.model_dump(), status_code=status)
