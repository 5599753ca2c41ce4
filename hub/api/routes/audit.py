"""Audit log API (``GET /api/v1/audit``), for administrators: filter, page, export.

Thin over :mod:`hub.audit.query`: ``?format=json`` (default) answers one page, newest first,
with ``next_cursor``; ``csv`` and ``jsonl`` stream every matching row, oldest first, as a
download. Personal data in the rows is masked. docs/security.md, "Audit log".
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from hub.api.deps import DatabaseDep, require_role
from hub.audit.query import MAX_PAGE, AuditFilter, AuditPage, export_csv, export_jsonl, list_entries
from hub.auth.keys import Principal

router = APIRouter(prefix="/api/v1/audit", tags=["audit log"])

Admin = Annotated[Principal, Depends(require_role("admin"))]

_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}


class AuditQuery(AuditFilter):
    """The filter as the query string gives it: the text in the details is ``q``."""

    text: str | None = Field(
        default=None, max_length=200, validation_alias="q", description="Text in the details"
    )


@router.get("", response_model=AuditPage, responses={200: {"content": {m: {} for m in _MEDIA.values()}}})
def list_audit(
    _admin: Admin,
    db: DatabaseDep,
    query: Annotated[AuditQuery, Query()],
    cursor: Annotated[int | None, Query(ge=1, description="`next_cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    format: Annotated[
        Literal["json", "csv", "jsonl"], Query(description="`csv`/`jsonl`: export all")
    ] = "json",
) -> AuditPage | StreamingResponse:
    flt = query.check()
    if format == "json":
        return list_entries(db, flt, cursor=cursor, limit=limit)
    rows = export_csv(db, flt) if format == "csv" else export_jsonl(db, flt)
    return StreamingResponse(
        rows,
        media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="audit.{format}"'},
    )
