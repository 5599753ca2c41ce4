"""Dead-letter queue API (``/api/v1/dlq``), for technicians and administrators.

Thin handlers over :mod:`hub.dlq.service`; every action is audited there with the caller's
API key name as the actor. Messages are shown with personal data masked
(:func:`hub.services.privacy.masked_view`); only an admin may ask for a payload in clear
(``?reveal=pii``, audited). An edit of a masked payload keeps the stored values wherever the
masks were sent back (:func:`hub.dlq.service.edit_message`). Bulk operations answer 202 with
the job; a worker runs it (or the ``run_now`` flag runs it in a background thread of this
process).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import DatabaseDep, allow_reveal, require_role
from hub.auth.keys import Principal
from hub.dlq import service
from hub.dlq.models import (
    BulkAction,
    BulkJobView,
    DlqFilter,
    EndpointHealthView,
    MessageDetail,
    MessageSummary,
    ViewState,
)
from hub.dlq.runner import run_in_background
from hub.services.privacy import audit_reveal, masked_view

router = APIRouter(prefix="/api/v1/dlq", tags=["dead-letter queue"])

Operator = Annotated[Principal, Depends(require_role("technician", "admin"))]
#: Technicians fix deliveries without the citizen's ID or phone; only admins see them in clear.
AdminReveal = Annotated[bool, Depends(allow_reveal())]


class MessagePage(BaseModel):
    total: int
    items: list[MessageSummary]


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2000)


class DiscardBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class EditBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload: dict[str, Any]
    reason: str = Field(default="", max_length=2000)
    retry: bool = True


class BulkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: BulkAction
    filter: DlqFilter = Field(default_factory=DlqFilter)
    reason: str = Field(default="", max_length=2000)
    run_now: bool = False
    """Run the job in a background thread of the API process instead of waiting for a worker."""


def _filter(
    endpoint: str | None = None,
    state: ViewState | None = ViewState.DEAD,
    dossier_code: str | None = None,
    error_class: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> DlqFilter:
    return DlqFilter(
        endpoint=endpoint,
        state=state,
        dossier_code=dossier_code,
        error_class=error_class,
        since=since,
        until=until,
    )


@router.get("/messages", response_model=MessagePage)
def list_messages(
    db: DatabaseDep,
    _operator: Operator,
    flt: Annotated[DlqFilter, Depends(_filter)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> MessagePage:
    items = service.list_messages(db, flt, limit=limit, offset=offset)
    return MessagePage(total=service.count_messages(db, flt), items=[masked_view(item) for item in items])


@router.get("/messages/{seq}", response_model=MessageDetail)
def show_message(seq: int, db: DatabaseDep, operator: Operator, reveal: AdminReveal) -> MessageDetail:
    detail = service.get_message(db, seq)
    if not reveal:
        return masked_view(detail)
    audit_reveal(
        db, actor=operator.name, kind="dlq_message", target=str(seq), route="GET /api/v1/dlq/messages"
    )
    return detail


@router.post("/messages/{seq}/retry", response_model=MessageSummary)
def retry_message(seq: int, body: ReasonBody, db: DatabaseDep, operator: Operator) -> MessageSummary:
    return masked_view(service.retry_message(db, seq, actor=operator.name, reason=body.reason))


@router.post("/messages/{seq}/discard", response_model=MessageSummary)
def discard_message(seq: int, body: DiscardBody, db: DatabaseDep, operator: Operator) -> MessageSummary:
    return masked_view(service.discard_message(db, seq, actor=operator.name, reason=body.reason))


@router.post(
    "/messages/{seq}/edit",
    response_model=MessageSummary,
    description="Send the payload as shown (masked values unchanged keep the stored data).",
)
def edit_message(seq: int, body: EditBody, db: DatabaseDep, operator: Operator) -> MessageSummary:
    edited = service.edit_message(
        db, seq, body.payload, actor=operator.name, reason=body.reason, retry=body.retry
    )
    return masked_view(edited)


@router.post("/bulk", response_model=BulkJobView, status_code=status.HTTP_202_ACCEPTED)
def create_bulk_job(body: BulkBody, db: DatabaseDep, operator: Operator) -> BulkJobView:
    job = service.create_bulk_job(db, body.action, body.filter, actor=operator.name, reason=body.reason)
    if body.run_now:
        run_in_background(db, job.id)
    return job


@router.get("/bulk", response_model=list[BulkJobView])
def list_bulk_jobs(db: DatabaseDep, _operator: Operator) -> list[BulkJobView]:
    return service.list_bulk_jobs(db)


@router.get("/bulk/{job_id}", response_model=BulkJobView)
def show_bulk_job(job_id: int, db: DatabaseDep, _operator: Operator) -> BulkJobView:
    return service.get_bulk_job(db, job_id)


@router.post("/bulk/{job_id}/cancel", response_model=BulkJobView)
def cancel_bulk_job(job_id: int, db: DatabaseDep, operator: Operator) -> BulkJobView:
    return service.cancel_bulk_job(db, job_id, actor=operator.name)


@router.get("/endpoints", response_model=list[EndpointHealthView])
def endpoint_health(db: DatabaseDep, _operator: Operator) -> list[EndpointHealthView]:
    return service.endpoint_health(db)
