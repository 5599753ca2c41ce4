"""What every way into the console does once the account is known (password, OIDC, the demo's
one-time link): a fresh session, its cookie, and the login form's CSRF cookie cleared.

A fresh session id at every sign-in (no fixation); the browser's old session is deleted. The
console's cookies are ``HttpOnly``, ``SameSite=Strict`` and ``Secure`` over HTTPS
(docs/security.md §10).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from hub.accounts.service import Account
from hub.accounts.sessions import ActiveSession
from hub.console.policy import Console


async def start_session(
    request: Request, console: Console, account: Account, *, client: str
) -> ActiveSession:
    """A fresh console session for ``account``; the one the browser sent (if any) is deleted."""
    return await run_in_threadpool(
        console.sessions.start,
        account,
        client=client,
        user_agent=request.headers.get("user-agent", ""),
        replaces=request.cookies.get(console.cookie),
    )


def set_cookie(response: Response, console: Console, name: str, value: str) -> None:
    """One of the console's own cookies (session or login CSRF), strict and HTTP-only."""
    response.set_cookie(
        name, value, path="/", secure=console.settings.secure_cookies, httponly=True, samesite="strict"
    )


def clear_login_cookie(response: Response, console: Console) -> None:
    """The login form's CSRF cookie, spent once signed in."""
    response.delete_cookie(
        console.login_cookie, path="/", secure=console.settings.secure_cookies, httponly=True
    )
