"""Audit log API (``GET /api/v1/audit``), for administrators: filter, page, export.

Thin over :mod:`hub.audit.query`: ``?format=json`` (default) answers one page, newest first,
with ``next_cursor``; ``csv`` and ``jsonl`` stream every matching row, oldest first, as a
download. Personal data in the rows is masked. docs/security.md, "Audit log".
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from hub.api.deps import DatabaseDep, require_role
from hub.audit.query import MAX_PAGE, AuditFilter, AuditPage, export_csv, export_jsonl, list_entries
from hub.auth.keys import Principal

router = APIRouter(prefix="/api/v1/audit", tags=["audit log"])

Admin = Annotated[Principal, Depends(require_role("admin"))]

_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}


@router.get("", response_model=AuditPage, responses={200: {"content": {m: {} for m in _MEDIA.values()}}})
def list_audit(
    _admin: Admin,
    db: DatabaseDep,
    actor: Annotated[str | None, Query(max_length=100, description="Exactly this actor")] = None,
    action: Annotated[str | None, Query(max_length=60, description="Action prefix, e.g. `dlq.`")] = None,
    target: Annotated[str | None, Query(max_length=200, description="Exactly this target")] = None,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601 with offset)")] = None,
    until: Annotated[datetime | None, Query(description="Before (ISO 8601 with offset)")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the details")] = None,
    dossier: Annotated[
        str | None, Query(max_length=64, description="The dossier: the target or details.dossier_code")
    ] = None,
    outcome: Annotated[
        Literal["success", "failure"] | None,
        Query(description="`failure`: refused logins, locks, throttling, refused or failed signing"),
    ] = None,
    cursor: Annotated[int | None, Query(ge=1, description="`next_cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    format: Annotated[
        Literal["json", "csv", "jsonl"], Query(description="`csv`/`jsonl`: export all")
    ] = "json",
) -> AuditPage | StreamingResponse:
    flt = AuditFilter(
        actor=actor,
        action=action,
        target=target,
        since=since,
        until=until,
        text=q,
        dossier=dossier,
        outcome=outcome,
    ).check()
    if format == "json":
        return list_entries(db, flt, cursor=cursor, limit=limit)
    rows = export_csv(db, flt) if format == "csv" else export_jsonl(db, flt)
    return StreamingResponse(
        rows,
        media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="audit.{format}"'},
    )
