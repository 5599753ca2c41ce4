"""Console sign-in through the identity provider (``[console.oidc]``; :mod:`hub.accounts.oidc`).

``GET /console/oidc/login`` sends the browser to the provider with a fresh flow cookie;
``GET /console/oidc/callback`` is where the provider sends it back. The flow cookie is
``SameSite=Lax`` (the provider's redirect is a cross-site top-level GET, which a ``Strict``
cookie would not follow) and lives ten minutes; it is deleted by the callback whatever the
outcome. The console session started afterwards is the one a password login starts
(:meth:`hub.accounts.sessions.ConsoleSessions.start`); since its cookie is ``SameSite=Strict``
and the browser is still in the provider's redirect chain, the callback answers with a page
that moves on to the console by itself (``<meta http-equiv=refresh>``, no script) instead of a
redirect the browser would send without the new cookie.

Both routes answer 404 when OIDC is not configured. A refusal is a page with its reason
(401/400), an unreachable provider a 502 page; neither is ever a 500.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.accounts.oidc import FLOW_SECONDS, Flow, OidcRefusedError, OidcSignIn, OidcUnavailableError
from hub.api.errors import http_status_for
from hub.api.limits import client_address
from hub.console.pages import error_text, keep_lang, lang_in, page, safe_next
from hub.console.policy import Console, get_console
from hub.console.policy import console_public as _public
from hub.console.signin import set_cookie, start_session
from schemas.errors import HubError, NotFoundError

router = APIRouter(include_in_schema=False)

START = _public("starts the sign-in at the configured OIDC provider")
CALLBACK = _public("the OIDC provider's answer (state bound to the browser's flow cookie, PKCE)")


def flow_cookie(console: Console) -> str:
    return "__Host-hub_oidc" if console.settings.secure_cookies else "hub_oidc"


def oidc_of(console: Console) -> OidcSignIn:
    if console.oidc is None:
        raise NotFoundError("OIDC sign-in is not configured")
    return console.oidc


def _clear_flow(response: Response, console: Console) -> None:
    response.delete_cookie(
        flow_cookie(console), path="/", secure=console.settings.secure_cookies, httponly=True, samesite="lax"
    )


def _problem(request: Request, console: Console, error: HubError) -> HTMLResponse:
    """The refusal page: 400 (state), 401 (refused), 429 (address throttled), 502 (provider)."""
    if isinstance(error, OidcRefusedError):
        reason, status = error.reason, 400 if error.reason == "state" else 401
    elif isinstance(error, OidcUnavailableError):
        reason, status = "unavailable", 502
    else:
        reason, status = error.code, http_status_for(error)
    response = page(
        request,
        "oidc_refused.html",
        status=status,
        message=error_text(request, error),
        reason=reason,
        provider=oidc_of(console).settings.provider_name,
    )
    _clear_flow(response, console)
    return response


@router.get("/console/oidc/login", dependencies=[Depends(START)], name="console.oidc_login")
async def oidc_login(request: Request, next: str = "") -> Response:
    console = get_console(request)
    oidc = oidc_of(console)
    try:
        # the language travels in the flow's target: the provider sends the browser back without it
        url, flow = await oidc.begin(keep_lang(request, safe_next(next)))
    except OidcUnavailableError as exc:
        await run_in_threadpool(oidc.refuse, exc, client=client_address(request))
        return _problem(request, console, exc)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        flow_cookie(console),
        flow.cookie,
        max_age=FLOW_SECONDS,
        path="/",
        secure=console.settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/console/oidc/callback", dependencies=[Depends(CALLBACK)], name="console.oidc_callback")
async def oidc_callback(request: Request) -> Response:
    console = get_console(request)
    oidc = oidc_of(console)
    client = client_address(request)
    flow = Flow.from_cookie(request.cookies.get(flow_cookie(console)))
    params = {key: value[:2048] for key, value in request.query_params.items()}
    try:
        await run_in_threadpool(console.accounts.address_throttle.check, client)
        identity = await oidc.identity(flow, params)
        account = await run_in_threadpool(oidc.account_for, identity, client=client)
    except (OidcRefusedError, OidcUnavailableError) as exc:
        await run_in_threadpool(oidc.refuse, exc, client=client)
        return _problem(request, console, exc)
    except HubError as exc:  # the address used up its failures (429)
        return _problem(request, console, exc)
    assert flow is not None  # identity() refused a missing flow
    active = await start_session(request, console, account, client=client)
    target = safe_next(flow.next)  # checked again: the cookie came back from outside
    response = page(
        request, "oidc_done.html", lang=lang_in(target), target=target, provider=oidc.settings.provider_name
    )
    set_cookie(response, console, console.cookie, active.token)
    _clear_flow(response, console)
    return response


def password_login_hidden(console: Console) -> bool:
    """The admin chose OIDC only (``console.oidc.hide_password_login``)."""
    return console.oidc is not None and console.oidc.settings.hide_password_login


def login_button(console: Console) -> str | None:
    """The provider's name for the login page's button (``None``: no OIDC)."""
    return console.oidc.settings.provider_name if console.oidc is not None else None
