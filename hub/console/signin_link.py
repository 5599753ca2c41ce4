"""The demo's one-time sign-in link page (:mod:`hub.accounts.signin_links`).

``GET /console/login/once/{token}`` names the account and offers one button; it does not use
the link, so a link previewer or a prefetch cannot spend it. The button posts back (the login
form's double-submit CSRF cookie, docs/security.md §10), which uses the link and starts a
session as a password login does (fresh session id, the browser's old one deleted).

Installed only by ``hub demo`` on its own hub (:func:`install_sign_in_links`); it is not among
the console's routes (:func:`hub.console.routes.page_routes`), so no configuration of
``hub serve`` has it.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.accounts.signin_links import SignInLinks
from hub.api.limits import client_address
from hub.console.pages import error_text, keep_lang, page
from hub.console.policy import Forbidden, console_public, get_console
from hub.console.signin import clear_login_cookie, set_cookie, start_session
from schemas.errors import HubError

router = APIRouter(include_in_schema=False)

ONCE = console_public("the demo's one-time sign-in link (only on the hub 'hub demo' starts)")


def _links(request: Request) -> SignInLinks:
    links: SignInLinks = request.app.state.sign_in_links
    return links


@router.get("/console/login/once/{token}", dependencies=[Depends(ONCE)], name="console.login_once")
async def offer(request: Request, token: str) -> HTMLResponse:
    username = await run_in_threadpool(_links(request).peek, token)
    console = get_console(request)
    csrf = secrets.token_urlsafe(32)
    response = page(
        request, "signin_link.html", status=200 if username else 401, username=username, login_csrf=csrf
    )
    set_cookie(response, console, console.login_cookie, csrf)
    return response


@router.post("/console/login/once/{token}", dependencies=[Depends(ONCE)], name="console.login_once_use")
async def use(
    request: Request, token: str, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    console = get_console(request)
    cookie = request.cookies.get(console.login_cookie, "")
    if not cookie or not csrf_token or not secrets.compare_digest(cookie.encode(), csrf_token.encode()):
        raise Forbidden("csrf")
    try:
        account = await run_in_threadpool(_links(request).redeem, token)
    except HubError as exc:
        return page(
            request,
            "signin_link.html",
            status=401,
            username=None,
            login_csrf="",
            error=error_text(request, exc),
        )
    active = await start_session(request, console, account, client=client_address(request))
    redirect = RedirectResponse(keep_lang(request, "/console/"), status_code=303)
    set_cookie(redirect, console, console.cookie, active.token)
    clear_login_cookie(redirect, console)
    return redirect


def install_sign_in_links(app: FastAPI, links: SignInLinks) -> None:
    """Serve ``links`` on ``app`` (the demo's hub; also once it is running)."""
    app.state.sign_in_links = links
    app.include_router(router)
