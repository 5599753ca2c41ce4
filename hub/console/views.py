"""Console pages about one dossier and one endpoint (issue 11, "Technician console").

``/console/dossiers/{code}``: the lifecycle timeline (receipt, processing steps and status
changes, re-dating with its apology or supplement, finish, return), the outbound messages per
endpoint, the result papers with their signature status. Personal data masked
(:func:`hub.services.privacy.masked_dossier`, :func:`schemas.masking.mask_pii` on free text).

``/console/endpoints/{name}``: the endpoint's settings with every secret hidden, its circuit
breaker as the workers last published it, and its queue (the overview's row).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Unpack
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from hub.accounts.sessions import ActiveSession
from hub.api.deps import get_db, get_intake, get_settings
from hub.console.ops import problem
from hub.console.pages import Outcome, after_change, lang_of, page
from hub.console.policy import console_page
from hub.db.account_tables import AccountRole
from hub.db.base import utcnow
from hub.dlq import service
from hub.dlq.models import MessageSummary
from hub.dlq.overview import EndpointOverview, overview
from hub.services.privacy import masked_dossier, masked_view
from schemas.dossier import Dossier
from schemas.errors import HubError, NotFoundError
from schemas.masking import mask_pii
from schemas.status import DossierStatus

router = APIRouter(include_in_schema=False)

#: Officers follow their dossiers; technicians follow the deliveries (docs/security.md §10).
DOSSIER_READER = console_page("technician", "officer")
OPERATOR = console_page("technician")
#: Option names whose values are never shown (tokens, keys, passwords of a connector).
SECRET_WORDS = ("secret", "password", "token", "key", "pin", "credential", "authorization")
HIDDEN = "••••••"


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str
    """receipt, step, redate, supplement, finish, return"""
    text: str
    who: str = ""
    status: int | None = None
    old_due: datetime | None = None
    new_due: datetime | None = None


def timeline(dossier: Dossier) -> list[Event]:
    """The dossier's life in time order; free text masked (ID or phone numbers typed in)."""
    events = [Event(dossier.received_at, "receipt", "", status=2)]
    # a re-dating is also recorded as a step (same time, same text): shown once, as a re-dating
    redated = {(r.requested_at, r.content) for r in dossier.supplements if r.new_due_at is not None}
    for step in dossier.steps:
        if (step.at, step.content) not in redated:
            events.append(Event(step.at, "step", mask_pii(step.content), step.handler, step.status.value))
    for record in dossier.supplements:
        kind = "redate" if record.new_due_at is not None and not record.papers else "supplement"
        events.append(
            Event(
                record.requested_at,
                kind,
                mask_pii(record.content),
                record.requested_by,
                old_due=record.old_due_at,
                new_due=record.new_due_at,
            )
        )
    if dossier.finished_at:
        events.append(Event(dossier.finished_at, "finish", ""))
    if dossier.returned_at:
        events.append(Event(dossier.returned_at, "return", ""))
    return sorted(events, key=lambda event: event.at)


def by_endpoint(messages: list[MessageSummary]) -> dict[str, list[MessageSummary]]:
    grouped: dict[str, list[MessageSummary]] = {}
    for item in messages:
        grouped.setdefault(item.endpoint, []).append(masked_view(item))
    return dict(sorted(grouped.items()))


@router.get("/console/dossiers/{code}", name="console.dossier")
async def dossier(
    request: Request, code: str, active: Annotated[ActiveSession, Depends(DOSSIER_READER)]
) -> HTMLResponse:
    intake = get_intake(request)
    try:
        found = await run_in_threadpool(intake.get_dossier, code)
        messages = await run_in_threadpool(intake.delivery_state, code)
    except HubError as exc:
        return problem(request, active, exc)
    en = lang_of(request) == "en"
    return page(
        request,
        "dossier.html",
        active=active,
        d=found,
        shown=masked_dossier(found),
        status_label=lambda value: _status_label(value, en),
        events=timeline(found),
        endpoints=by_endpoint(messages),
        may_operate=active.account.has_role(AccountRole.TECHNICIAN),
    )


def _status_label(value: int | None, en: bool) -> str:
    if value is None:
        return ""
    status = DossierStatus(value)
    return f"{value} — {status.label_en if en else status.label_vi}"


def _unknown(name: str) -> NotFoundError:
    return NotFoundError(
        f"endpoint {name[:100]} is not configured",
        message_vi=f"Không có điểm nhận {name[:100]} trong cấu hình",
        details={"endpoint": name[:100]},
    )


def public_settings(settings: Any) -> dict[str, Any]:
    """An endpoint's settings as JSON with every secret replaced by :data:`HIDDEN`: the
    ``SecretStr`` fields, options named like a secret, and a password inside the URL."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    for name in ("password", "client_secret"):
        if data.get(name):
            data[name] = HIDDEN
    parts = urlsplit(str(data.get("url", "")))
    if parts.password:
        netloc = f"{parts.username}:{HIDDEN}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        data["url"] = urlunsplit(parts._replace(netloc=netloc))
    data["options"] = _hide(data.get("options", {}))
    return data


def _hide(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: HIDDEN if any(word in str(key).lower() for word in SECRET_WORDS) else _hide(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_hide(item) for item in value]
    return value


@router.get("/console/endpoints/{name}", name="console.endpoint")
async def endpoint(
    request: Request, name: str, active: Annotated[ActiveSession, Depends(OPERATOR)]
) -> HTMLResponse:
    return await _endpoint_page(request, active, name)


async def _endpoint_page(
    request: Request, active: ActiveSession, name: str, **outcome: Unpack[Outcome]
) -> HTMLResponse:
    configured = get_settings(request).endpoints.get(name)
    found = await run_in_threadpool(overview, get_db(request), utcnow())
    row = next((each for each in found.endpoints if each.endpoint == name), None)
    if configured is None and row is None:
        return problem(request, active, _unknown(name))
    pause = (await run_in_threadpool(service.paused_endpoints, get_db(request))).get(name)
    return page(
        request,
        "endpoint.html",
        active=active,
        name=name,
        settings=public_settings(configured) if configured is not None else None,
        row=row or EndpointOverview(name),
        pause=pause,
        **outcome,
    )


async def _change(
    request: Request, active: ActiveSession, name: str, action: Callable[[], None]
) -> HTMLResponse:
    """Pause or resume; a refusal re-renders the endpoint page with its message and status."""
    return await after_change(request, action, partial(_endpoint_page, request, active, name))


@router.post("/console/endpoints/{name}/pause", name="console.endpoint_pause")
async def pause(
    request: Request, name: str, active: Annotated[ActiveSession, Depends(OPERATOR)]
) -> HTMLResponse:
    form = await request.form()
    reason = form.get("reason")
    db, actor = get_db(request), active.account.username
    if get_settings(request).endpoints.get(name) is None:
        return problem(request, active, _unknown(name))
    return await _change(
        request,
        active,
        name,
        lambda: service.pause_endpoint(
            db, name, actor=actor, reason=reason if isinstance(reason, str) else ""
        ),
    )


@router.post("/console/endpoints/{name}/resume", name="console.endpoint_resume")
async def resume(
    request: Request, name: str, active: Annotated[ActiveSession, Depends(OPERATOR)]
) -> HTMLResponse:
    db, actor = get_db(request), active.account.username
    return await _change(request, active, name, lambda: service.resume_endpoint(db, name, actor=actor))
