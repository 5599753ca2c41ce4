"""Public status lookup (docs/portal.md §8): JSON, the ``/tra-cuu`` page, and SMS.

JSON and HTML lookups need the owner's ID number when ``lookup.require_owner_id`` is set and
answer the same 404 for unknown codes and wrong numbers. They are rate-limited per client
address (429 with ``Retry-After``) and never cached (``Cache-Control: no-store``).

SMS: an SMS gateway posts each MO message (``src``, ``msgbody``; form or JSON) with a
``portal`` API key or the shared ``X-Gateway-Secret``; the answer carries the ASCII MT text.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from hub.api.deps import (
    AccessPolicy,
    LookupDep,
    SettingsDep,
    SmsDep,
    authenticate,
    authentication_failed,
    check_auth_throttle,
    declare_policy,
    get_services,
    public,
)
from hub.api.errors import error_headers, error_responses, http_status_for
from hub.api.limits import client_address
from hub.auth.keys import Principal
from hub.db.models import ApiRole
from hub.lookup.page import PAGE_CSP, render_page
from hub.lookup.service import LookupOutcome, LookupView
from hub.lookup.sms import normalise_sender
from schemas.errors import (
    HubError,
    InvalidInputError,
    PermissionDeniedError,
    UnsupportedMediaTypeError,
)
from schemas.jsonbody import parse_json_body

router = APIRouter(tags=["lookup"], responses=error_responses(404, 422, 429))

NO_STORE = {"Cache-Control": "no-store"}
PAGE_HEADERS = {**NO_STORE, "Content-Security-Policy": PAGE_CSP}
SMS_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


#: Citizens look their dossier up without credentials (docs/portal.md §8).
OWNER_LOOKUP = public("citizens; owner's ID number required, rate-limited per client address")


def _throttle_sync(request: Request) -> None:
    get_services(request).lookup_limiter.check(client_address(request))


async def _throttle(request: Request) -> None:
    _throttle_sync(request)


@router.get(
    "/api/v1/lookup/{code}",
    summary="Status of a dossier for its owner",
    dependencies=[Depends(OWNER_LOOKUP), Depends(_throttle)],
    responses={404: {"description": "Unknown code or wrong ID number (indistinguishable)"}},
)
def lookup(
    code: str,
    response: Response,
    lookup: LookupDep,
    id_number: Annotated[str | None, Query(max_length=20, description="Owner's CCCD/CMND number")] = None,
) -> LookupView:
    response.headers.update(NO_STORE)
    return lookup.lookup(code[:64], id_number)


@router.get(
    "/tra-cuu",
    response_class=HTMLResponse,
    summary="Lookup page (Vietnamese)",
    dependencies=[Depends(OWNER_LOOKUP)],
)
def lookup_page(
    request: Request,
    lookup: LookupDep,
    mhs: Annotated[str, Query(alias="MHS", max_length=64)] = "",
    sgt: Annotated[str, Query(alias="SGT", max_length=20)] = "",
) -> HTMLResponse:
    need_id = lookup.requires_owner_id
    if not mhs or (need_id and not sgt):
        if mhs:  # a dossier's QR link (hub.lookup.qr) opens the page with the code alone
            lookup.record("qr", LookupOutcome.OPENED)
        return HTMLResponse(render_page(code=mhs, need_id=need_id), headers=PAGE_HEADERS)
    try:
        _throttle_sync(request)
        view = lookup.lookup(mhs, sgt or None, channel="web")
    except HubError as exc:  # the one "not found", or 429 with Retry-After
        page = render_page(code=mhs, message=exc.message_vi, need_id=need_id)
        headers = {**PAGE_HEADERS, **error_headers(exc)}
        return HTMLResponse(page, status_code=http_status_for(exc), headers=headers)
    return HTMLResponse(render_page(view=view), headers=PAGE_HEADERS)


class SmsInbound(BaseModel):
    """An MO message as SMS gateways post it (OpenCPS ``ReceiveMO`` fields)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    src: Annotated[str, Field(min_length=3, max_length=20, pattern=r"^\+?[0-9 .()-]+$")]
    msgbody: Annotated[str, Field(max_length=480)]
    dest: Annotated[str | None, Field(max_length=20)] = None
    id: Annotated[str | None, Field(max_length=100)] = None


class SmsOutbound(BaseModel):
    to: str
    kind: str
    message: str
    dossier_code: str | None
    mo_id: str | None


def _sms_caller(request: Request, settings: SettingsDep) -> str:
    secret = settings.lookup.sms_shared_secret
    given = request.headers.get("x-gateway-secret")
    if secret is not None and given is not None:
        check_auth_throttle(request)
        if hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            return "sms-gateway"
        authentication_failed(request, "wrong X-Gateway-Secret")
        raise PermissionDeniedError("wrong gateway secret", message_vi="sai mã bí mật của cổng SMS")
    principal: Principal = authenticate(request)
    if not principal.has_role(ApiRole.PORTAL):
        raise PermissionDeniedError(
            f"API key {principal.name!r} may not post SMS messages; needs role portal",
            message_vi="khóa API không có quyền gửi tin nhắn SMS",
        )
    return principal.name


declare_policy(
    _sms_caller,
    AccessPolicy(
        roles=frozenset({ApiRole.PORTAL, ApiRole.ADMIN}), note="or the SMS gateway's X-Gateway-Secret"
    ),
)


async def _sms_body(request: Request) -> SmsInbound:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    raw: Any
    if content_type in SMS_FORM_TYPES:
        form = await request.form()
        raw = {key: value for key, value in form.items() if isinstance(value, str)}
    elif content_type == "application/json" or content_type.endswith("+json"):
        raw = parse_json_body(await request.body())
    else:
        raise UnsupportedMediaTypeError(
            "send the MO message as form fields or JSON",
            message_vi="hãy gửi tin nhắn dưới dạng form hoặc JSON",
        )
    if not isinstance(raw, dict):
        raise InvalidInputError("expected an object with src and msgbody")
    try:
        return SmsInbound.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInputError(
            "invalid SMS message",
            message_vi="tin nhắn SMS không hợp lệ",
            details={
                "errors": [{"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in exc.errors()]
            },
        ) from None


@router.post(
    "/api/v1/sms/inbound",
    summary="Answer an SMS '<KEYWORD> <MaHoSo>' with an ASCII status text",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": SmsInbound.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": SmsInbound.model_json_schema()},
            }
        }
    },
)
async def sms_inbound(
    _caller: Annotated[str, Depends(_sms_caller)],
    message: Annotated[SmsInbound, Depends(_sms_body)],
    sms: SmsDep,
) -> SmsOutbound:
    reply = await run_in_threadpool(sms.handle, message.src, message.msgbody)
    return SmsOutbound(
        to=normalise_sender(message.src),
        kind=reply.kind.value,
        message=reply.text,
        dossier_code=reply.dossier_code,
        mo_id=message.id,
    )
