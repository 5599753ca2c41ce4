"""Console pages: login, logout, a role-aware home, and the admin's accounts page.

Server-rendered Jinja2 templates (``templates/``, autoescaped), no script, one stylesheet
served from the package (CSP ``style-src 'self'``). Session cookie: HttpOnly, SameSite=Strict,
``Secure`` with the ``__Host-`` prefix unless ``console.secure_cookies`` is off (a loopback test
over plain HTTP); the login form is protected by a double-submit cookie (no session exists
yet), every other form by the session's synchronizer token (docs/security.md §10).
"""

from __future__ import annotations

import secrets
from functools import cache, partial
from importlib import resources
from typing import Annotated, Any, Unpack
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from hub.accounts.oidc import OidcSignIn
from hub.accounts.service import AccountService
from hub.accounts.sessions import ActiveSession, ConsoleSessions
from hub.api.errors import error_headers, http_status_for
from hub.api.limits import client_address
from hub.config import Settings
from hub.console import audit, desk, oidc, ops, reports, signing_keys, views
from hub.console.i18n import MESSAGES
from hub.console.pages import Outcome, after_change, keep_lang, lang_of, page
from hub.console.pages import safe_next as _safe_next
from hub.console.policy import (
    Console,
    Forbidden,
    LoginRequired,
    console_page,
    console_policy,
    console_public,
    get_console,
)
from hub.console.signin import clear_login_cookie, set_cookie, start_session
from hub.db.account_tables import AccountRole
from hub.db.session import Database
from schemas.errors import HubError

router = APIRouter(include_in_schema=False)

LOGIN = console_public("the login form (double-submit CSRF cookie)")
STATIC = console_public("the console's stylesheet")
ANY_ACCOUNT = console_page()
ADMIN = console_page("admin")


@router.get("/console/login", dependencies=[Depends(LOGIN)], name="console.login")
async def login_form(request: Request, next: str = "") -> HTMLResponse:
    console = get_console(request)
    token = secrets.token_urlsafe(32)
    response = page(
        request,
        "login.html",
        login_csrf=token,
        next=_safe_next(next),
        oidc_provider=oidc.login_button(console),
        password_login=not oidc.password_login_hidden(console),
    )
    set_cookie(response, console, console.login_cookie, token)
    return response


@router.post("/console/login", dependencies=[Depends(LOGIN)], name="console.login_submit")
async def login_submit(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    console = get_console(request)
    cookie = request.cookies.get(console.login_cookie, "")
    if not cookie or not csrf_token or not secrets.compare_digest(cookie.encode(), csrf_token.encode()):
        raise Forbidden("csrf")
    if oidc.password_login_hidden(console):
        raise Forbidden("password_login")
    client = client_address(request)
    try:
        account = await run_in_threadpool(console.accounts.login, username, password, client=client)
    except HubError as exc:  # the one refusal (401), or 429 for the address
        token = secrets.token_urlsafe(32)
        response = page(
            request,
            "login.html",
            status=http_status_for(exc),
            login_csrf=token,
            next=_safe_next(next),
            error=exc.message_vi if lang_of(request) == "vi" else exc.message,
            username=username[:64],
            oidc_provider=oidc.login_button(console),
            password_login=True,
        )
        response.headers.update(error_headers(exc))
        set_cookie(response, console, console.login_cookie, token)
        return response
    # A fresh session id at every login (no fixation); the browser's old one is deleted.
    active = await start_session(request, console, account, client=client)
    redirect = RedirectResponse(keep_lang(request, _safe_next(next)), status_code=303)
    set_cookie(redirect, console, console.cookie, active.token)
    clear_login_cookie(redirect, console)
    return redirect


@router.post("/console/logout", name="console.logout")
async def logout(request: Request, active: Annotated[ActiveSession, Depends(ANY_ACCOUNT)]) -> Response:
    console = get_console(request)
    await run_in_threadpool(console.sessions.end, active)
    response = RedirectResponse(keep_lang(request, "/console/login"), status_code=303)
    response.delete_cookie(
        console.cookie, path="/", secure=console.settings.secure_cookies, httponly=True, samesite="strict"
    )
    return response


def page_routes() -> list[APIRoute]:
    """Every route of the console: these pages, :mod:`hub.console.oidc`, :mod:`hub.console.ops`,
    :mod:`hub.console.views`, :mod:`hub.console.desk`, :mod:`hub.console.audit`,
    :mod:`hub.console.reports` and :mod:`hub.console.signing_keys`."""
    return [
        route
        for each in (
            router,
            oidc.router,
            ops.router,
            views.router,
            desk.router,
            audit.router,
            reports.router,
            signing_keys.router,
        )
        for route in each.routes
        if isinstance(route, APIRoute)
    ]


def _reachable(active: ActiveSession) -> list[tuple[str, str]]:
    """``(path, title key)`` of the console pages (GET, titled) ``active``'s roles may open."""
    pages = []
    for route in page_routes():
        if "GET" not in (route.methods or ()):
            continue
        policy = console_policy(route)
        key = f"page.{route.name}"
        if policy and not policy.public and key in MESSAGES["vi"] and policy.allows(active.account.roles):
            pages.append((route.path, key))
    return pages


@router.get("/console/", name="console.home")
async def home(request: Request, active: Annotated[ActiveSession, Depends(ANY_ACCOUNT)]) -> HTMLResponse:
    return page(request, "home.html", active=active, pages=_reachable(active))


async def _users_page(request: Request, active: ActiveSession, **outcome: Unpack[Outcome]) -> HTMLResponse:
    accounts = await run_in_threadpool(get_console(request).accounts.list)
    return page(
        request,
        "users.html",
        active=active,
        accounts=accounts,
        roles=[role.value for role in AccountRole],
        oidc_provider=oidc.login_button(get_console(request)),
        **outcome,
    )


@router.get("/console/admin/users", name="console.admin_users")
async def users(request: Request, active: Annotated[ActiveSession, Depends(ADMIN)]) -> HTMLResponse:
    return await _users_page(request, active)


async def _change(
    request: Request, active: ActiveSession, action: Any, *args: Any, **kwargs: Any
) -> HTMLResponse:
    """Run an account change as ``active``; a refusal re-renders the page with its message."""
    return await after_change(
        request,
        partial(action, *args, actor=active.account.username, **kwargs),
        partial(_users_page, request, active),
        notice=MESSAGES[lang_of(request)]["users.changed"],
    )


@router.post("/console/admin/users", name="console.admin_users_create")
async def users_create(
    request: Request,
    active: Annotated[ActiveSession, Depends(ADMIN)],
    username: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=200)] = "",
    unit: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    role: Annotated[list[str] | None, Form()] = None,
) -> HTMLResponse:
    service = get_console(request).accounts
    return await _change(
        request, active, service.create, username, display_name, password, role or [], unit=unit
    )


@router.post("/console/admin/users/{username}/disable", name="console.admin_users_disable")
async def users_disable(
    request: Request, username: str, active: Annotated[ActiveSession, Depends(ADMIN)]
) -> HTMLResponse:
    return await _change(request, active, get_console(request).accounts.disable, username)


@router.post("/console/admin/users/{username}/enable", name="console.admin_users_enable")
async def users_enable(
    request: Request, username: str, active: Annotated[ActiveSession, Depends(ADMIN)]
) -> HTMLResponse:
    return await _change(request, active, get_console(request).accounts.enable, username)


@router.post("/console/admin/users/{username}/roles", name="console.admin_users_roles")
async def users_roles(
    request: Request,
    username: str,
    active: Annotated[ActiveSession, Depends(ADMIN)],
    role: Annotated[list[str] | None, Form()] = None,
) -> HTMLResponse:
    return await _change(request, active, get_console(request).accounts.set_roles, username, role or [])


@router.post("/console/admin/users/{username}/oidc-unlink", name="console.admin_users_oidc_unlink")
async def users_oidc_unlink(
    request: Request, username: str, active: Annotated[ActiveSession, Depends(ADMIN)]
) -> HTMLResponse:
    return await _change(request, active, get_console(request).accounts.unlink_oidc, username)


@cache
def _stylesheet() -> bytes:
    return resources.files(__package__).joinpath("templates", "console.css").read_bytes()


@router.get("/console/static/console.css", dependencies=[Depends(STATIC)], name="console.css")
async def stylesheet() -> Response:
    return Response(_stylesheet(), media_type="text/css", headers={"Cache-Control": "max-age=3600"})


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(
        keep_lang(request, f"/console/login?{urlencode({'next': exc.path})}"), status_code=303
    )


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    key = "csrf.text" if exc.reason == "csrf" else "forbidden.text"
    active = getattr(request.state, "console_session", None)
    return page(request, "forbidden.html", status=403, active=active, text_key=key)


def install_console(app: FastAPI, settings: Settings, db: Database) -> None:
    """Serve the console on ``app`` (its services in ``app.state.console``)."""
    accounts = AccountService(db, settings.console)
    sign_in = None
    if settings.console.oidc is not None:
        sign_in = OidcSignIn(
            settings.console.oidc, db, accounts, redirect_base_url=settings.api.public_base_url
        )
    app.state.console = Console(settings.console, accounts, ConsoleSessions(db, accounts), sign_in)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(Forbidden, _forbidden)
    app.include_router(router)
    app.include_router(oidc.router)
    app.include_router(ops.router)
    app.include_router(views.router)
    app.include_router(desk.router)
    app.include_router(audit.router)
    app.include_router(reports.router)
    app.include_router(signing_keys.router)
