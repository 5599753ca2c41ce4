"""The audit log in the console (issue 11; docs/console.md, docs/security.md §9).

``/console/audit``: the rows of :mod:`hub.audit` newest first, filtered (actor, action prefix,
target, dossier, time range in Vietnam time, outcome, text in the details), 50 a page keyed on
the row id; each row's before/after shown as a field-by-field diff; personal data masked (the
service's :class:`~hub.audit.query.AuditRecord` is masked already, the target and client are
masked here too); the hash chain's status (:class:`hub.audit.verify.ChainMonitor`: the whole
chain walked at most every 5 minutes, the rows added since on every view), the broken row
marked. ``/console/audit/export``: the same filter as CSV or JSON Lines, streamed, oldest
first, written to the log as ``audit.export``.

Admins only: the log holds every account's security events and client addresses, which a
technician does not need to repair deliveries (the message page shows a message's own history).
Thin handlers over :mod:`hub.audit.query` and :mod:`hub.audit.verify`, not over the HTTP API.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from hub.accounts.sessions import ActiveSession
from hub.api.deps import get_db
from hub.audit.query import (
    AuditFilter,
    AuditRecord,
    export_csv,
    export_jsonl,
    is_failure,
    list_entries,
    record_export,
)
from hub.audit.verify import ChainMonitor, ChainReport
from hub.console.ops import parse_instant
from hub.console.pages import error_text, page
from hub.console.policy import console_page
from schemas.errors import HubError, InvalidInputError
from schemas.masking import mask_pii

router = APIRouter(include_in_schema=False)

AUDITOR = console_page("admin")
Auditor = Annotated[ActiveSession, Depends(AUDITOR)]
#: Rows per page.
PAGE_SIZE = 50
#: The whole chain is walked again at most this often; views in between walk the new rows.
FULL_WALK_SECONDS = 300
#: The filter's query parameters, in the form's order.
FILTER_FIELDS = ("actor", "action", "target", "dossier", "since", "until", "outcome", "q")
_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}


@dataclass(frozen=True)
class Change:
    """One field of a before/after pair: its values as JSON text (``None``: absent)."""

    field: str
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class Row:
    """One audit row as the page shows it."""

    entry: AuditRecord
    target: str
    client: str
    details: str
    changes: list[Change]
    failure: bool


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Change]:
    """Field-by-field diff of a row's before/after (empty when the row records no change)."""
    if before is None and after is None:
        return []
    old, new = before or {}, after or {}
    return [
        Change(
            name,
            _json(old[name]) if name in old else None,
            _json(new[name]) if name in new else None,
        )
        for name in sorted(old.keys() | new.keys())
    ]


def _row(entry: AuditRecord) -> Row:
    before, after = entry.before, entry.after
    if before is None and after is None and {"before", "after"} <= entry.details.keys():
        # some writers keep the pair in the details (account.roles): named after the action
        name = entry.action.rsplit(".", 1)[-1]
        before, after = {name: entry.details["before"]}, {name: entry.details["after"]}
    return Row(
        entry=entry,
        target=mask_pii(entry.target),
        client=mask_pii(entry.client or ""),
        details=_json(entry.details) if entry.details else "",
        changes=changes(before, after),
        failure=is_failure(entry),
    )


#: The kind of break :func:`verify_chain` reported, by a phrase of its reason (texts translated).
BREAKS = (
    ("contents changed", "changed"),
    ("does not link", "unlinked"),
    ("unchained", "unchained"),
    ("head row is missing", "head"),
    ("the chain ends at row", "tail"),
)


def break_kind(report: ChainReport) -> str | None:
    """``None`` for an intact chain, else the i18n suffix of ``audit.broken_*``."""
    if report.ok:
        return None
    return next((kind for phrase, kind in BREAKS if phrase in report.reason), "changed")


_MONITOR_LOCK = threading.Lock()


def _monitor(request: Request) -> ChainMonitor:
    """The app's :class:`ChainMonitor` (made at the first view)."""
    with _MONITOR_LOCK:
        monitor = getattr(request.app.state, "audit_chain", None)
        if not isinstance(monitor, ChainMonitor):
            monitor = request.app.state.audit_chain = ChainMonitor(full_every=FULL_WALK_SECONDS)
        return monitor


def _fields(source: Any) -> dict[str, str]:
    return {name: str(source.get(name, "")).strip()[:200] for name in FILTER_FIELDS if source.get(name)}


def audit_filter(fields: dict[str, str]) -> AuditFilter:
    """The filter of the page's query; empty fields match everything (422 when malformed)."""
    try:
        return AuditFilter(
            actor=fields.get("actor") or None,
            action=fields.get("action") or None,
            target=fields.get("target") or None,
            dossier=fields.get("dossier") or None,
            since=parse_instant(fields.get("since", "")),
            until=parse_instant(fields.get("until", "")),
            outcome=fields.get("outcome") or None,  # checked by pydantic (422)
            text=fields.get("q") or None,
        ).check()
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors() else "filter"
        raise InvalidInputError(
            f"invalid filter: {field}", message_vi=f"Bộ lọc không hợp lệ: {field}", details={"field": field}
        ) from None


def _query(fields: dict[str, str], **extra: str | int) -> str:
    return urlencode({**fields, **{name: str(value) for name, value in extra.items()}})


@router.get("/console/audit", name="console.audit")
async def audit_log(
    request: Request,
    active: Auditor,
    cursor: Annotated[int | None, Query(ge=1)] = None,
    number: Annotated[int, Query(alias="page", ge=1)] = 1,
) -> HTMLResponse:
    db = get_db(request)
    fields = _fields(request.query_params)
    monitor = _monitor(request)
    report: ChainReport = await run_in_threadpool(monitor.status, db)
    context: dict[str, Any] = {
        "fields": fields,
        "report": report,
        "broken": break_kind(report),
        "full_walk_at": monitor.full_walk_at,
        "query": _query,
    }
    try:
        flt = audit_filter(fields)
        found = await run_in_threadpool(list_entries, db, flt, cursor=cursor, limit=PAGE_SIZE)
    except HubError as exc:
        return page(
            request,
            "audit.html",
            status=422,
            active=active,
            error=error_text(request, exc),
            rows=[],
            next_cursor=None,
            number=1,
            **context,
        )
    return page(
        request,
        "audit.html",
        active=active,
        rows=[_row(entry) for entry in found.items],
        next_cursor=found.next_cursor,
        number=number,
        **context,
    )


@router.get("/console/audit/export", name="console.audit_export")
async def audit_export(
    request: Request, active: Auditor, format: Literal["csv", "jsonl"] = "csv"
) -> Response:
    db = get_db(request)
    try:
        flt = audit_filter(_fields(request.query_params))
    except HubError as exc:
        return page(request, "problem.html", status=422, active=active, error=error_text(request, exc))
    await run_in_threadpool(lambda: record_export(db, flt, format, actor=active.account.username))
    rows = export_csv(db, flt) if format == "csv" else export_jsonl(db, flt)
    return StreamingResponse(
        rows,
        media_type=_MEDIA[format],
        headers={
            "Content-Disposition": f'attachment; filename="audit.{format}"',
            "Cache-Control": "no-store",
        },
    )
