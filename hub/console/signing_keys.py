"""The admin's signing-key page (issue 11; docs/console.md, docs/security.md "Signing keys bound
to accounts").

``/console/admin/signing-keys``: each configured server-held key (id, kind, purpose, the role it
needs, its certificate's subject, validity and fingerprint for a PKCS#12 key — never a path,
label or secret) with its principals, marked *configuration* or *admin* (who bound it, when);
a form binds a principal, a button unbinds an admin binding. Thin handlers over
:class:`hub.services.key_bindings.KeyBindingService`, which holds the rules and writes the
audit rows; a refusal re-renders the page with its message and status (404, 409, 422).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from hub.accounts.sessions import ActiveSession
from hub.api.deps import get_db, get_services, get_settings
from hub.api.errors import http_status_for
from hub.console.i18n import MESSAGES
from hub.console.pages import error_text, lang_of, page
from hub.console.policy import console_page
from hub.services.key_bindings import KeyBindingService
from schemas.errors import HubError

router = APIRouter(include_in_schema=False)

KEY_ADMIN = console_page("admin")
KeyAdmin = Annotated[ActiveSession, Depends(KEY_ADMIN)]


def _service(request: Request) -> KeyBindingService:
    settings = get_settings(request)
    facade = get_services(request).signing
    return KeyBindingService(
        get_db(request),
        settings.signing,
        environ=settings.secret_environment(),
        grants=facade.grants if facade is not None else None,
    )


async def _page(
    request: Request,
    active: ActiveSession,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    keys = await run_in_threadpool(_service(request).keys)
    return page(
        request, "signing_keys.html", status=status, active=active, keys=keys, error=error, notice=notice
    )


@router.get("/console/admin/signing-keys", name="console.admin_signing_keys")
async def signing_keys(request: Request, active: KeyAdmin) -> HTMLResponse:
    return await _page(request, active)


async def _change(
    request: Request, active: ActiveSession, unbind: bool, key_id: str, principal: str
) -> HTMLResponse:
    service = _service(request)
    action = service.unbind if unbind else service.bind
    try:
        await run_in_threadpool(lambda: action(key_id, principal, actor=f"user:{active.account.username}"))
    except HubError as exc:
        return await _page(request, active, status=http_status_for(exc), error=error_text(request, exc))
    notice = MESSAGES[lang_of(request)]["keys.unbound" if unbind else "keys.bound"]
    return await _page(request, active, notice=notice)


@router.post("/console/admin/signing-keys/bind", name="console.admin_signing_keys_bind")
async def bind(
    request: Request,
    active: KeyAdmin,
    key_id: Annotated[str, Form(max_length=100)] = "",
    principal: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    return await _change(request, active, False, key_id, principal)


@router.post("/console/admin/signing-keys/unbind", name="console.admin_signing_keys_unbind")
async def unbind(
    request: Request,
    active: KeyAdmin,
    key_id: Annotated[str, Form(max_length=100)] = "",
    principal: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    return await _change(request, active, True, key_id, principal)
