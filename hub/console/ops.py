"""The technicians' console pages (issue 11, "Technician console"; docs/console.md).

``/console/ops`` (overview per endpoint and a 24-hour chart), ``/console/dlq`` (failed
messages: filter, sort, page; retry or discard everything matching the filter as a bulk job,
after a confirmation stating the count), ``/console/dlq/jobs/{id}`` (a bulk job's progress,
refreshed by ``<meta http-equiv=refresh>``, with cancel) and ``/console/dlq/{seq}`` (one
message: masked payload, attempts, retry, discard with a reason, edit-and-retry with a diff).

Thin handlers over :mod:`hub.dlq.service` and :mod:`hub.dlq.overview`, which audit every
action (actor: the account's username). Payloads are masked (:func:`masked_view`); only an
admin may ask for one in clear (``?reveal=pii``), and each such page writes a ``pii.reveal``
audit row (:func:`audit_reveal`, Decree 13/2023/NĐ-CP art. 3, docs/security.md §3).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Unpack
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from hub.accounts.sessions import ActiveSession
from hub.api.deps import get_db, get_settings
from hub.console.i18n import MESSAGES
from hub.console.pages import Outcome, after_change, error_text, job_page, lang_of, page, problem_page
from hub.console.policy import console_page
from hub.db.account_tables import AccountRole
from hub.db.base import utcnow
from hub.dlq import service
from hub.dlq.models import BulkAction, BulkState, DlqFilter, MessageDetail, SortKey, ViewState
from hub.dlq.overview import HourCount, overview
from hub.dlq.runner import run_in_background
from hub.services.privacy import audit_reveal, masked_view
from schemas.errors import HubError, InvalidInputError
from schemas.masking import mask_json
from schemas.timefmt import VN_TZ

router = APIRouter(include_in_schema=False)

#: Technicians and admins operate the deliveries (docs/security.md §10).
OPERATOR = console_page("technician")
Operator = Annotated[ActiveSession, Depends(OPERATOR)]
#: Messages per page of the failed-message list.
PAGE_SIZE = 50
FILTER_FIELDS = ("endpoint", "state", "dossier_code", "error_class", "since", "until", "error_text")


# --- the overview -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One hour of the chart, in SVG user units (the chart is 24 × 20 wide, 100 high)."""

    x: int
    delivered_y: float
    delivered_height: float
    failed_y: float
    failed_height: float
    hour: HourCount


CHART_HEIGHT = 100
BAR_WIDTH = 20


def chart_bars(hours: list[HourCount]) -> list[Bar]:
    """Stacked bars (delivered below, failed above), scaled to the busiest hour."""
    peak = max((h.delivered + h.failed for h in hours), default=0) or 1
    bars = []
    for index, hour in enumerate(hours):
        delivered = CHART_HEIGHT * hour.delivered / peak
        failed = CHART_HEIGHT * hour.failed / peak
        bars.append(
            Bar(
                x=index * BAR_WIDTH,
                delivered_y=CHART_HEIGHT - delivered,
                delivered_height=delivered,
                failed_y=CHART_HEIGHT - delivered - failed,
                failed_height=failed,
                hour=hour,
            )
        )
    return bars


@router.get("/console/ops", name="console.ops")
async def ops(request: Request, active: Operator) -> HTMLResponse:
    configured = list(get_settings(request).endpoints)
    found = await run_in_threadpool(overview, get_db(request), utcnow(), configured)
    return page(
        request,
        "ops.html",
        active=active,
        rows=found.endpoints,
        bars=chart_bars(found.hours),
        chart_width=BAR_WIDTH * len(found.hours),
        chart_height=CHART_HEIGHT,
    )


# --- the failed-message list ------------------------------------------------------------------


def parse_instant(text: str) -> datetime | None:
    """A ``datetime-local`` field (Vietnam time) or an ISO 8601 time with its offset."""
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInputError(
            f"not a date and time: {text[:40]!r}",
            message_vi=f"Không phải ngày giờ hợp lệ: {text[:40]!r}",
            details={"field": "time"},
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=VN_TZ)


def _filter(fields: dict[str, str]) -> DlqFilter:
    """The filter of a query string or a form; empty fields match everything."""
    state = fields.get("state", ViewState.DEAD.value)
    try:
        return DlqFilter(
            endpoint=fields.get("endpoint") or None,
            state=ViewState(state) if state and state != "any" else None,
            dossier_code=fields.get("dossier_code") or None,
            error_class=fields.get("error_class") or None,
            since=parse_instant(fields.get("since", "")),
            until=parse_instant(fields.get("until", "")),
            error_text=fields.get("error_text") or None,
        )
    except (ValidationError, ValueError) as exc:
        raise InvalidInputError(
            f"invalid filter: {exc}"[:300], message_vi="Bộ lọc không hợp lệ", details={"field": "filter"}
        ) from exc


def _filter_fields(source: Any) -> dict[str, str]:
    return {name: str(source.get(name, "")).strip()[:200] for name in FILTER_FIELDS if name in source}


def _query(fields: dict[str, str], **extra: str | int) -> str:
    kept = {name: value for name, value in fields.items() if value}
    return urlencode({**kept, **{k: str(v) for k, v in extra.items()}})


@router.get("/console/dlq", name="console.dlq")
async def dlq(request: Request, active: Operator) -> HTMLResponse:
    db = get_db(request)
    params = request.query_params
    fields = _filter_fields(params)
    fields.setdefault("state", ViewState.DEAD.value)
    shown: dict[str, Any] = {"sort": SortKey.SEQ.value, "descending": False, "number": 1, "pages": 1}
    try:
        flt = _filter(fields)
        sort = SortKey(params.get("sort", SortKey.SEQ.value))
        number = max(1, int(params.get("page", "1")))
    except (HubError, ValueError) as exc:
        message = error_text(request, exc) if isinstance(exc, HubError) else str(exc)
        return _list_page(request, active, fields, status=422, error=message, items=[], total=0, **shown)
    descending = params.get("desc") == "1"
    items = await run_in_threadpool(
        lambda: service.list_messages(
            db, flt, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE, sort=sort, descending=descending
        )
    )
    total = await run_in_threadpool(service.count_messages, db, flt)
    return _list_page(
        request,
        active,
        fields,
        items=[masked_view(item) for item in items],
        total=total,
        sort=sort.value,
        descending=descending,
        number=number,
        pages=max(1, -(-total // PAGE_SIZE)),
    )


def _list_page(
    request: Request, active: ActiveSession, fields: dict[str, str], *, status: int = 200, **context: Any
) -> HTMLResponse:
    return page(
        request,
        "dlq.html",
        status=status,
        active=active,
        fields=fields,
        states=["any", *[state.value for state in ViewState]],
        sorts=[key.value for key in SortKey],
        query=_query,
        **context,
    )


async def _form_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {name: value.strip() for name, value in form.items() if isinstance(value, str)}


async def _bulk_form(request: Request) -> tuple[dict[str, str], BulkAction, DlqFilter]:
    """The bulk form's fields, action and filter (``ValueError``/422 when malformed)."""
    form = await _form_fields(request)
    return form, BulkAction(form.get("action", "")), _filter(_filter_fields(form))


@router.post("/console/dlq/bulk", name="console.dlq_bulk_confirm")
async def bulk_confirm(request: Request, active: Operator) -> HTMLResponse:
    """The confirmation: the action and how many messages match the filter now."""
    try:
        form, action, flt = await _bulk_form(request)
    except (HubError, ValueError) as exc:
        return problem(request, active, exc)
    count = await run_in_threadpool(service.count_messages, get_db(request), flt)
    fields = _filter_fields(form)
    return page(request, "dlq_confirm.html", active=active, action=action.value, fields=fields, count=count)


@router.post("/console/dlq/bulk/start", name="console.dlq_bulk_start")
async def bulk_start(request: Request, active: Operator) -> Response:
    """Start the confirmed bulk job on everything matching the filter (not only one page)."""
    db = get_db(request)
    try:
        form, action, flt = await _bulk_form(request)
        job = await run_in_threadpool(
            lambda: service.create_bulk_job(
                db, action, flt, actor=active.account.username, reason=form.get("reason", "")
            )
        )
    except (HubError, ValueError) as exc:
        return problem(request, active, exc)
    run_in_background(db, job.id)
    suffix = "?lang=en" if lang_of(request) == "en" else ""
    return RedirectResponse(f"/console/dlq/jobs/{job.id}{suffix}", status_code=303)


@router.get("/console/dlq/jobs/{job_id}", name="console.dlq_job")
async def bulk_job(request: Request, job_id: int, active: Operator) -> HTMLResponse:
    return await _job_page(request, active, job_id)


async def _job_page(request: Request, active: ActiveSession, job_id: int) -> HTMLResponse:
    try:
        job = await run_in_threadpool(service.get_bulk_job, get_db(request), job_id)
    except HubError as exc:
        return problem(request, active, exc)
    running = job.state in (BulkState.QUEUED, BulkState.RUNNING)
    return job_page(request, active, "dlq_job.html", job, running)


@router.post("/console/dlq/jobs/{job_id}/cancel", name="console.dlq_job_cancel")
async def bulk_cancel(request: Request, job_id: int, active: Operator) -> HTMLResponse:
    try:
        await run_in_threadpool(
            lambda: service.cancel_bulk_job(get_db(request), job_id, actor=active.account.username)
        )
    except HubError as exc:
        return problem(request, active, exc)
    return await _job_page(request, active, job_id)


# --- one message ------------------------------------------------------------------------------


def pretty(payload: Any) -> str:
    """JSON as operators read it: indented, keys in their order, Vietnamese as is."""
    return json.dumps(payload, indent=2, ensure_ascii=False)


def xml_parts(payload: Any) -> list[tuple[str, str]]:
    """``(path, indented XML)`` of the string values that are XML documents (a SOAP body, an
    XML portal payload), parsed without entities or network (XXE, OWASP XXE Prevention)."""
    from lxml import etree

    found: list[tuple[str, str]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        elif isinstance(value, str) and value.lstrip().startswith("<"):
            parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
            try:
                tree = etree.fromstring(value.strip().encode(), parser)
            except etree.XMLSyntaxError:
                return
            found.append((path, etree.tostring(tree, pretty_print=True, encoding="unicode")))

    walk(payload, "")
    return found


def payload_diff(before: Any, after: Any) -> list[tuple[str, str]]:
    """``(kind, line)`` of a unified diff of the pretty JSON (kind: add, del, hunk, same)."""
    lines = difflib.unified_diff(
        pretty(before).splitlines(), pretty(after).splitlines(), "original", "edited", lineterm="", n=3
    )
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    return [(kinds.get(line[:1], "same"), line) for line in lines if not line.startswith(("+++", "---"))]


async def _message_page(
    request: Request,
    active: ActiveSession,
    seq: int,
    *,
    edited: str | None = None,
    **outcome: Unpack[Outcome],
) -> HTMLResponse:
    db = get_db(request)
    try:
        detail = await run_in_threadpool(service.get_message, db, seq)
    except HubError as exc:
        return problem(request, active, exc)
    admin = AccountRole.ADMIN in active.account.roles  # who may see personal data in clear
    reveal = request.query_params.get("reveal") == "pii" and admin
    if request.method == "GET" and reveal:
        await run_in_threadpool(
            lambda: audit_reveal(
                db,
                actor=active.account.username,
                kind="dlq_message",
                target=str(seq),
                route="GET /console/dlq/{seq}",
            )
        )
    shown: MessageDetail = detail if reveal else masked_view(detail)
    masked_payload = mask_json(detail.payload)
    return page(
        request,
        "dlq_message.html",
        active=active,
        m=shown,
        payload=pretty(shown.payload),
        xml=xml_parts(shown.payload),
        revealed=reveal,
        may_reveal=admin and not reveal,
        edit_text=edited if edited is not None else pretty(masked_payload),
        **outcome,
    )


@router.get("/console/dlq/{seq}", name="console.dlq_message")
async def message(request: Request, seq: int, active: Operator) -> HTMLResponse:
    return await _message_page(request, active, seq)


async def _act(
    request: Request, active: ActiveSession, seq: int, action: Callable[[], Any], done: str
) -> HTMLResponse:
    """Run a message action; its refusal re-renders the message with the message and status."""
    return await after_change(request, action, partial(_message_page, request, active, seq), notice=done)


async def _with_reason(
    request: Request, active: ActiveSession, seq: int, act: Callable[..., Any], done: str
) -> HTMLResponse:
    """``act(db, seq, actor=, reason=)`` with the form's reason; ``done``: the notice's key."""
    reason = (await _form_fields(request)).get("reason", "")
    db, actor = get_db(request), active.account.username
    notice = MESSAGES[lang_of(request)][done]
    return await _act(request, active, seq, lambda: act(db, seq, actor=actor, reason=reason), notice)


@router.post("/console/dlq/{seq}/retry", name="console.dlq_retry")
async def retry(request: Request, seq: int, active: Operator) -> HTMLResponse:
    return await _with_reason(request, active, seq, service.retry_message, "msg.retried")


@router.post("/console/dlq/{seq}/discard", name="console.dlq_discard")
async def discard(request: Request, seq: int, active: Operator) -> HTMLResponse:
    return await _with_reason(request, active, seq, service.discard_message, "msg.discarded")


@router.post("/console/dlq/{seq}/edit", name="console.dlq_edit")
async def edit(
    request: Request,
    seq: int,
    active: Operator,
    payload: Annotated[str, Form(max_length=1_000_000)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse:
    """Without ``confirm``: the diff against the (masked) original; with it: store and retry."""
    db = get_db(request)
    try:
        parsed = json.loads(payload)
        if not isinstance(parsed, dict):
            raise ValueError("not an object")
    except ValueError:
        en = lang_of(request) == "en"
        text = "The payload is not a JSON object" if en else "Nội dung bản tin không phải đối tượng JSON"
        return await _message_page(request, active, seq, status=422, error=text, edited=payload)
    if confirm != "1":
        try:
            detail = await run_in_threadpool(service.get_message, db, seq)
        except HubError as exc:
            return problem(request, active, exc)
        return page(
            request,
            "dlq_edit.html",
            active=active,
            seq=seq,
            diff=payload_diff(mask_json(detail.payload), parsed),
            payload=pretty(parsed),
            reason=reason,
        )
    actor = active.account.username
    done = MESSAGES[lang_of(request)]["msg.edited"]
    return await _act(
        request, active, seq, lambda: service.edit_message(db, seq, parsed, actor=actor, reason=reason), done
    )


def problem(request: Request, active: ActiveSession, exc: Exception) -> HTMLResponse:
    """A refused request as a page: the error's status and message (never a 500)."""
    if isinstance(exc, HubError):
        return problem_page(request, active, exc)
    return page(request, "problem.html", status=422, active=active, error=str(exc)[:300])
