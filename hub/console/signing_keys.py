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

from functools import partial
from typing import Annotated, Unpack

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hub.accounts.sessions import ActiveSession
from hub.api.deps import get_db, get_services, get_settings
from hub.console.i18n import MESSAGES
from hub.console.pages import Outcome, after_change, lang_of, page
from hub.console.policy import console_page
from hub.services.key_bindings import KeyBindingService

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


async def _page(request: Request, active: ActiveSession, **outcome: Unpack[Outcome]) -> HTMLResponse:
    keys = await run_in_threadpool(_service(request).keys)
    return page(request, "signing_keys.html", active=active, keys=keys, **outcome)


@router.get("/console/admin/signing-keys", name="console.admin_signing_keys")
async def signing_keys(request: Request, active: KeyAdmin) -> HTMLResponse:
    return await _page(request, active)


class KeyPrincipal(BaseModel):
    """The fields of the bind and the unbind form: the key and the principal."""

    key_id: str = Field("", max_length=100)
    principal: str = Field("", max_length=200)


KeyPrincipalForm = Annotated[KeyPrincipal, Form()]


async def _change(request: Request, active: ActiveSession, unbind: bool, form: KeyPrincipal) -> HTMLResponse:
    service = _service(request)
    action = service.unbind if unbind else service.bind
    actor = f"user:{active.account.username}"
    notice = MESSAGES[lang_of(request)]["keys.unbound" if unbind else "keys.bound"]
    return await after_change(
        request,
        lambda: action(form.key_id, form.principal, actor=actor),
        partial(_page, request, active),
        notice=notice,
    )


@router.post("/console/admin/signing-keys/bind", name="console.admin_signing_keys_bind")
async def bind(request: Request, active: KeyAdmin, form: KeyPrincipalForm) -> HTMLResponse:
    return await _change(request, active, False, form)


@router.post("/console/admin/signing-keys/unbind", name="console.admin_signing_keys_unbind")
async def unbind(request: Request, active: KeyAdmin, form: KeyPrincipalForm) -> HTMLResponse:
    return await _change(request, active, True, form)
