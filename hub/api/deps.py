"""FastAPI dependencies: settings, database, services and the caller's role.

Everything is read from ``request.app.state`` (filled by :func:`hub.api.app.create_app`), so
nothing here touches the environment or the database at import time.

Authentication: ``Authorization: Bearer <token>`` or ``X-API-Key: <token>``. A missing or
unknown token answers 401 with ``WWW-Authenticate: Bearer``; a valid key without the needed
role answers 403. The admin role passes every role check.

Every route declares who may call it next to its definition: through :func:`require_role`, or
through :func:`public` for the routes anyone may call; both dependencies carry an
:class:`AccessPolicy` that :func:`route_policy` reads back (the role × route matrix of
docs/security.md is generated from it, and tests/api/test_api_policy.py checks every route
against it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, cast

from fastapi import Depends, Query, Request, Security
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from hub.api.limits import client_address
from hub.api.offload import WriteGroups, WriteThreads
from hub.auth.keys import ApiKeyService, Principal
from hub.auth.throttle import FailedAuthThrottle
from hub.config import Settings
from hub.db.models import ApiRole
from hub.db.session import Database
from hub.health import HubHealth
from hub.lookup.ratelimit import RateLimiter
from hub.lookup.service import LookupService
from hub.lookup.sms import SmsResponder
from hub.services.intake import AgencyScope, IntakeResult, IntakeService, SingleChange
from hub.storage.files import FileStore
from hub.telemetry.process import Telemetry
from schemas.errors import AuthenticationError, PermissionDeniedError

if TYPE_CHECKING:  # the signing stack and the DVCQG inbound parts load only where used
    from connectors.dvcqg.inbound import InboundAccept
    from hub.services.results import ResultSigningService
    from signing.facade import SigningFacade

log = logging.getLogger("hub.api")
_T = TypeVar("_T")

BEARER_SCHEME = HTTPBearer(auto_error=False, description="hub_<prefix>_<secret> API key")
API_KEY_SCHEME = APIKeyHeader(name="X-API-Key", auto_error=False, description="Same key as the bearer token")


#: The group commit of intake's single changes, keyed by caller (actor, agencies).
IntakeGroups = WriteGroups[tuple[str, AgencyScope], SingleChange, IntakeResult]


@dataclass
class Services:
    """The service objects route handlers delegate to (one set per app)."""

    intake: IntakeService
    keys: ApiKeyService
    files: FileStore
    lookup: LookupService
    sms: SmsResponder
    lookup_limiter: RateLimiter
    #: Failed authentications per client address (429 past ``api.auth_failures_per_minute``).
    auth_throttle: FailedAuthThrottle
    #: The threads intake's writes run in (:mod:`hub.api.offload`).
    writes: WriteThreads
    #: The group commit of the single-change routes, by caller (:class:`WriteGroups`).
    groups: IntakeGroups
    #: Signing with server-held keys (``[signing.keys]``); ``None``: built from the settings at
    #: first use by ``/api/v1/signing`` (:func:`hub.api.routes.signing.get_signing_facade`).
    signing: SigningFacade | None = None
    #: Result papers signed per Decree 30/2020 and attached (``signing.result_*_key``); ``None``:
    #: not configured, signing a result answers 501.
    results: ResultSigningService | None = None
    #: Who takes the dossiers the national portal pushes (docs/portal.md §6); ``None``: the
    #: intake service (:func:`hub.api.routes.dvcqg_inbound.intake_acceptor`).
    dvcqg_accept: InboundAccept | None = None
    #: Largest push body accepted from the portal; ``None``: the connector's default.
    dvcqg_push_max_bytes: int | None = None


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_db(request: Request) -> Database:
    return cast(Database, request.app.state.db)


def get_health(request: Request) -> HubHealth:
    return cast(HubHealth, request.app.state.health)


def get_telemetry(request: Request) -> Telemetry:
    return cast(Telemetry, request.app.state.telemetry)


def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


def get_intake(request: Request) -> IntakeService:
    return get_services(request).intake


def get_keys(request: Request) -> ApiKeyService:
    return get_services(request).keys


def get_files(request: Request) -> FileStore:
    return get_services(request).files


def get_lookup(request: Request) -> LookupService:
    return get_services(request).lookup


def get_sms(request: Request) -> SmsResponder:
    return get_services(request).sms


def app_service(request: Request, name: str, make: Callable[[], _T]) -> _T:
    """The app's one ``app.state.<name>``, made by ``make`` at its first use (a service that
    reads its files once, a store of the app's jobs)."""
    service: _T | None = getattr(request.app.state, name, None)
    if service is None:
        service = make()
        setattr(request.app.state, name, service)
    return service


def bearer_token(request: Request) -> str | None:
    """The token from ``Authorization: Bearer …`` or ``X-API-Key``."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def _required_token(request: Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise AuthenticationError(
            "missing API credentials: send 'Authorization: Bearer <token>' or 'X-API-Key'",
            message_vi="thiếu thông tin xác thực API",
        )
    return token


def check_auth_throttle(request: Request) -> None:
    """429 while the caller's address has used up its failed authentications."""
    get_services(request).auth_throttle.check(client_address(request))


def authentication_failed(request: Request, what: str) -> None:
    """Count a failed authentication of the caller's address; the failure that uses up the
    budget is logged and audited (once per window, so an attack cannot flood the audit log)."""
    client = client_address(request)
    if get_services(request).auth_throttle.failed(client):
        log.warning("failed authentication budget used up by %s (%s); answering 429", client, what)
        get_keys(request).audit_throttled(client, what=what, path=request.url.path)


def _known(request: Request, principal: Principal | None) -> Principal:
    if principal is None:
        authentication_failed(request, "unknown or revoked API key")
        raise AuthenticationError(
            "invalid or revoked API key", message_vi="khóa API không hợp lệ hoặc đã bị thu hồi"
        )
    request.state.principal = principal
    return principal


def authenticate(request: Request) -> Principal:
    """The calling principal; raises :class:`AuthenticationError` (401) when there is none,
    :class:`TooManyRequestsError` (429) while the caller's address is throttled."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = _required_token(request)
    check_auth_throttle(request)
    return _known(request, get_keys(request).authenticate(token))


async def authenticate_async(request: Request) -> Principal:
    """:func:`authenticate` for the event loop: a key verified moments ago is answered here;
    otherwise the database lookup runs in a worker thread."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = _required_token(request)
    check_auth_throttle(request)
    keys = get_keys(request)
    principal = keys.remembered(token)
    if principal is None:
        principal = await run_in_threadpool(keys.authenticate, token)
        if principal is None:
            await run_in_threadpool(_known, request, None)
    return _known(request, principal)


@dataclass(frozen=True)
class AccessPolicy:
    """Who may call a route: ``roles`` (admin always included), or anyone when ``public``;
    ``note`` says what else the route checks (shown in the matrix of docs/security.md)."""

    roles: frozenset[ApiRole] = frozenset()
    public: bool = False
    note: str = ""

    def allows(self, role: ApiRole | None) -> bool:
        """Whether a caller with ``role`` (``None``: no credentials) gets past authorization."""
        return self.public or (role is not None and role in self.roles)


@dataclass(frozen=True)
class RevealPolicy:
    """Who may ask a route for personal data in clear (``?reveal=pii``; admin always included)."""

    roles: frozenset[ApiRole]


#: Attribute of a dependency callable holding its :class:`AccessPolicy` or :class:`RevealPolicy`.
POLICY_ATTRIBUTE = "access_policy"


def declare_policy(dependency: Callable[..., object], policy: object) -> None:
    """Attach ``policy`` to ``dependency`` (for checks that :func:`require_role` cannot state;
    the console's pages declare theirs the same way, :mod:`hub.console.policy`)."""
    setattr(dependency, POLICY_ATTRIBUTE, policy)


def declared_policies(dependant: Any) -> list[object]:
    """Every policy declared by the dependencies of a FastAPI ``Dependant``, depth first."""
    found: list[object] = []
    for sub in dependant.dependencies:
        policy = getattr(sub.call, POLICY_ATTRIBUTE, None)
        if policy is not None:
            found.append(policy)
        found.extend(declared_policies(sub))
    return found


def route_policy(route: APIRoute) -> AccessPolicy:
    """The one access policy ``route`` declares; :class:`LookupError` when it declares none
    (or several different ones)."""
    policies = {policy for policy in declared_policies(route.dependant) if isinstance(policy, AccessPolicy)}
    if len(policies) != 1:
        raise LookupError(
            f"{sorted(route.methods or ())} {route.path} declares {len(policies)} access policies"
        )
    return policies.pop()


def reveal_policy(route: APIRoute) -> RevealPolicy | None:
    """Who may ask ``route`` for personal data in clear; ``None``: nobody (always masked)."""
    found = [policy for policy in declared_policies(route.dependant) if isinstance(policy, RevealPolicy)]
    return found[0] if found else None


def public(reason: str) -> Callable[[], Awaitable[None]]:
    """Dependency declaring a route callable without credentials, and why (in the matrix)."""

    async def dependency() -> None:
        return None

    declare_policy(dependency, AccessPolicy(public=True, note=reason))
    return dependency


def _check_role(principal: Principal, wanted: tuple[ApiRole, ...], action: str, action_vi: str) -> None:
    """403 unless ``principal`` holds one of ``wanted`` (admin always does)."""
    if not principal.has_role(*wanted):
        raise PermissionDeniedError(
            f"API key {principal.name!r} (role {principal.role.value}) may not {action}; "
            f"needs one of: {', '.join(r.value for r in wanted) or 'admin'}",
            message_vi=f"khóa API không có quyền {action_vi}",
            details={"role": principal.role.value, "required": [r.value for r in wanted]},
        )


def require_role(*roles: str, note: str = "") -> Callable[..., Awaitable[Principal]]:
    """Dependency factory: the caller must hold one of ``roles`` (admin always passes).

    Usage: ``principal: Annotated[Principal, Depends(require_role("technician"))]``. The
    dependency carries its :class:`AccessPolicy` (``note``: what else the route checks).
    """
    wanted = tuple(ApiRole(role) for role in roles)

    async def dependency(
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER_SCHEME)] = None,
        _api_key: Annotated[str | None, Security(API_KEY_SCHEME)] = None,
    ) -> Principal:
        # The two security parameters only document the schemes in OpenAPI; the token is
        # read by :func:`authenticate_async` so both headers share one code path. Async, so a
        # remembered key costs no thread hop (a sync dependency runs in the thread pool).
        principal = await authenticate_async(request)
        _check_role(principal, wanted, "do this", "thực hiện thao tác này")
        return principal

    dependency.__name__ = f"require_role_{'_'.join(r.value for r in wanted) or 'admin'}"
    declare_policy(dependency, AccessPolicy(roles=frozenset({*wanted, ApiRole.ADMIN}), note=note))
    return dependency


REVEAL_PII = "pii"


def allow_reveal(*roles: str) -> Callable[..., Awaitable[bool]]:
    """Dependency factory for ``?reveal=pii``: ``True`` when the caller asked for personal data
    in clear and holds one of ``roles`` (admin always passes), 403 when asked without the role.

    Personal data is masked by default (Decree 13/2023/NĐ-CP art. 3: minimum necessary;
    docs/security.md §3); the route audits every reveal (:mod:`hub.services.privacy`).
    """
    allowed = frozenset({*(ApiRole(role) for role in roles), ApiRole.ADMIN})

    async def dependency(
        request: Request,
        reveal: Annotated[
            Literal["pii"] | None,
            Query(description="`pii`: ID and phone numbers in clear (audited; roles: see docs/security.md)"),
        ] = None,
    ) -> bool:
        if reveal is None:
            return False
        principal = await authenticate_async(request)
        _check_role(
            principal, tuple(sorted(allowed)), "see personal data in clear", "xem dữ liệu cá nhân đầy đủ"
        )
        return True

    declare_policy(dependency, RevealPolicy(allowed))
    return dependency


# The getters above are plain functions other modules may call directly. As FastAPI
# dependencies they are wrapped in ``async def`` so FastAPI does not hop to a worker thread
# just to read ``app.state`` (a sync dependency costs a thread-pool round trip per request).


def _on_loop(getter: Callable[[Request], _T]) -> Callable[[Request], Awaitable[_T]]:
    async def dependency(request: Request) -> _T:
        return getter(request)

    return dependency


SettingsDep = Annotated[Settings, Depends(_on_loop(get_settings))]
DatabaseDep = Annotated[Database, Depends(_on_loop(get_db))]
HealthDep = Annotated[HubHealth, Depends(_on_loop(get_health))]
IntakeDep = Annotated[IntakeService, Depends(_on_loop(get_intake))]
FilesDep = Annotated[FileStore, Depends(_on_loop(get_files))]
LookupDep = Annotated[LookupService, Depends(_on_loop(get_lookup))]
SmsDep = Annotated[SmsResponder, Depends(_on_loop(get_sms))]
