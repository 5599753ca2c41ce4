"""Who may open which console page: each route declares it, like the API routes do.

:func:`console_page` (a logged-in account holding one of the roles; admin passes every check)
and :func:`console_public` (anyone: the login form, the stylesheet) carry a
:class:`ConsolePolicy`; :func:`console_policy` reads it back, and the role × page matrix of
docs/security.md is generated from it (``python -m hub.api.access_matrix docs/security.md``).

Refusals: no valid session → 303 to ``/console/login`` (:class:`LoginRequired`); a session
without the role → 403 page; a POST without the session's CSRF token → 403 page, nothing done
(:class:`Forbidden`). The role is checked before the token, so a 403 never tells which.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from hub.accounts.oidc import OidcSignIn
from hub.accounts.service import AccountService
from hub.accounts.sessions import ActiveSession, ConsoleSessions
from hub.api.deps import declare_policy, declared_policies
from hub.config import ConsoleSettings
from hub.db.account_tables import AccountRole

CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class ConsolePolicy:
    roles: frozenset[AccountRole] = frozenset()
    public: bool = False
    note: str = ""

    def allows(self, roles: frozenset[AccountRole] | None) -> bool:
        """Whether an account with ``roles`` (``None``: not logged in) gets past authorization."""
        if self.public:
            return True
        return roles is not None and (AccountRole.ADMIN in roles or bool(roles & self.roles))


@dataclass
class Console:
    """What the console's routes use (``app.state.console``)."""

    settings: ConsoleSettings
    accounts: AccountService
    sessions: ConsoleSessions
    #: Sign-in through the OIDC provider (``console.oidc``; ``None``: not configured).
    oidc: OidcSignIn | None = None

    @property
    def cookie(self) -> str:
        """Session cookie name: ``__Host-`` prefix over HTTPS (RFC 6265bis §4.1.3.2)."""
        return "__Host-hub_console" if self.settings.secure_cookies else "hub_console"

    @property
    def login_cookie(self) -> str:
        """The login form's double-submit CSRF cookie (there is no session yet)."""
        return "__Host-hub_login" if self.settings.secure_cookies else "hub_login"


class LoginRequired(Exception):
    """No valid session: the handler answers 303 to the login page."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class Forbidden(Exception):
    """A logged-in account without the role, or a form without its CSRF token: 403."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def get_console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def current_session(request: Request) -> ActiveSession | None:
    console = get_console(request)
    cached = getattr(request.state, "console_session", None)
    if isinstance(cached, ActiveSession):
        return cached
    active = console.sessions.resolve(request.cookies.get(console.cookie))
    request.state.console_session = active
    return active


def console_page(*roles: str) -> Callable[..., Awaitable[ActiveSession]]:
    """Dependency: a logged-in account with one of ``roles`` (none: any account); every POST
    must carry the session's CSRF token (OWASP CSRF Prevention Cheat Sheet, synchronizer)."""
    wanted = frozenset(AccountRole(role) for role in roles)

    async def dependency(request: Request) -> ActiveSession:
        active = await run_in_threadpool(current_session, request)
        if active is None:
            # back to the page after the login; a form's target is not a page to go back to
            raise LoginRequired(request.url.path if request.method == "GET" else "/console/")
        if wanted and not active.account.has_role(*wanted):
            raise Forbidden("role")
        if request.method == "POST":
            form = await request.form()
            given = form.get(CSRF_FIELD)
            if not active.csrf_ok(given if isinstance(given, str) else None):
                raise Forbidden("csrf")
        return active

    every = frozenset(AccountRole) if not wanted else wanted | {AccountRole.ADMIN}
    declare_policy(dependency, ConsolePolicy(roles=every))
    return dependency


def console_public(reason: str) -> Callable[[], Awaitable[None]]:
    async def dependency() -> None:
        return None

    declare_policy(dependency, ConsolePolicy(public=True, note=reason))
    return dependency


def console_policy(route: APIRoute) -> ConsolePolicy | None:
    """The console policy ``route`` declares (``None``: not a console page)."""
    found = {policy for policy in declared_policies(route.dependant) if isinstance(policy, ConsolePolicy)}
    if len(found) > 1:
        raise LookupError(f"{route.path} declares {len(found)} console policies")
    return found.pop() if found else None
