"""The FastAPI application factory.

``create_app(settings, db)`` builds everything explicitly (no import-time side effects): the
services in ``app.state.services``, the error handlers, the body-size limit, and the routers
of :data:`ROUTE_MODULES`. Modules owned by optional parts (DLQ, DVCQG inbound, signing) are
included when present; a missing module is skipped with a debug log, but an error while
importing a module that exists propagates.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig

from hub.api.deps import Services
from hub.api.errors import install_error_handlers
from hub.api.limits import BodySizeLimitMiddleware
from hub.api.observability import install_request_telemetry
from hub.api.offload import WriteGroups, WriteThreads
from hub.api.security import AuditClientMiddleware, install_security_middleware
from hub.auth.keys import ApiKeyService
from hub.auth.throttle import FailedAuthThrottle
from hub.config import Settings
from hub.db.session import Database
from hub.health import HubHealth
from hub.lookup.owner_hash import OwnerIdHasher
from hub.lookup.ratelimit import RateLimiter
from hub.lookup.service import LookupService
from hub.lookup.sms import SmsResponder
from hub.services.intake import AgencyScope, IntakeResult, IntakeService, SingleChange
from hub.storage.files import FileStore
from hub.telemetry.process import Telemetry

log = logging.getLogger("hub.api")

#: The hub's own route modules.
CORE_ROUTE_MODULES: tuple[str, ...] = (
    "hub.api.routes.health",
    "hub.api.routes.dossiers",
    "hub.api.routes.lookup",
    "hub.api.routes.files",
    "hub.api.routes.keys",
    "hub.api.routes.metrics",
    "hub.api.routes.reports",
    "hub.api.routes.records",
    "hub.api.routes.audit",
)
#: Route modules of optional parts, included when present.
OPTIONAL_ROUTE_MODULES: tuple[str, ...] = (
    "hub.api.routes.dlq",
    "hub.api.routes.dvcqg_inbound",
    "hub.api.routes.signing",
    "hub.api.routes.verification",
)
#: FastAPI's built-in request spans, metrics and logs: off (see :func:`create_app`).
NO_NATIVE_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
#: Every route module the API may include, in order; each exposes ``router: APIRouter``.
ROUTE_MODULES: tuple[str, ...] = CORE_ROUTE_MODULES + OPTIONAL_ROUTE_MODULES


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def load_routers(modules: tuple[str, ...] = ROUTE_MODULES) -> list[tuple[str, APIRouter]]:
    """Import the route modules that exist; a missing one is skipped, a broken one raises."""
    routers: list[tuple[str, APIRouter]] = []
    for name in modules:
        if not _module_exists(name):
            log.debug("route module %s not present; skipped", name)
            continue
        module = importlib.import_module(name)
        router = getattr(module, "router", None)
        if not isinstance(router, APIRouter):
            raise TypeError(f"{name} has no 'router: APIRouter'")
        routers.append((name, router))
    return routers


def build_services(
    settings: Settings,
    db: Database,
    *,
    bootstrap_token: str | None = None,
    telemetry: Telemetry | None = None,
) -> Services:
    metrics = telemetry.metrics if telemetry is not None else None
    lookup = LookupService(db, settings.lookup, OwnerIdHasher.from_settings(settings), metrics=metrics)
    intake = IntakeService(db, settings)
    writes = WriteThreads.for_database(db)

    def apply_group(
        caller: tuple[str, AgencyScope], changes: Sequence[SingleChange]
    ) -> list[IntakeResult | Exception]:
        actor, scope = caller
        return intake.apply_group(changes, actor=actor, scope=scope)

    return Services(
        intake=intake,
        keys=ApiKeyService(db, bootstrap_token=bootstrap_token),
        files=FileStore(
            db,
            settings.data_dir / "files",
            public_base_url=settings.api.public_base_url,
            max_bytes=settings.api.max_body_bytes,
        ),
        lookup=lookup,
        sms=SmsResponder(lookup, settings.lookup.sms_keyword),
        lookup_limiter=RateLimiter(settings.lookup.rate_limit_per_minute),
        auth_throttle=FailedAuthThrottle(settings.api.auth_failures_per_minute),
        writes=writes,
        groups=WriteGroups.for_database(db, writes, apply_group),
    )


def create_metrics_app(settings: Settings, telemetry: Telemetry) -> FastAPI:
    """Only ``GET /metrics``, for a process without the API (``hub worker`` with
    ``metrics.worker_port``): readable from ``metrics.scrape_networks`` alone (no API keys)."""
    app = FastAPI(
        title="motcua hub worker metrics",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry=NO_NATIVE_TELEMETRY,
    )
    app.state.settings = settings
    app.state.telemetry = telemetry
    install_error_handlers(app)
    install_security_middleware(app, settings.api)
    from hub.api.routes.metrics import router

    app.include_router(router)
    return app


def create_app(
    settings: Settings,
    db: Database | None = None,
    *,
    bootstrap_token: str | None = None,
    route_modules: tuple[str, ...] = ROUTE_MODULES,
    health: HubHealth | None = None,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """Build the API. Without ``db`` the app connects to ``settings.database_url`` and owns it.

    ``bootstrap_token`` defaults to the setting ``bootstrap_admin_token`` (the environment
    variable ``HUB_BOOTSTRAP_ADMIN_TOKEN`` or the secret file ``hub_bootstrap_admin_token``);
    ``health`` is the process's own (:mod:`hub.health`, shared with an in-process worker;
    default: an API-only process); ``telemetry`` its metrics and tracer (:mod:`hub.telemetry`,
    shared with the worker; default: metrics of this app alone, no traces).
    """
    owns_db = db is None
    database = db if db is not None else Database.connect(settings.database_url)
    if bootstrap_token is None and settings.bootstrap_admin_token is not None:
        bootstrap_token = settings.bootstrap_admin_token.get_secret_value() or None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.services.writes.close()
        if owns_db:
            database.dispose()

    app = FastAPI(
        title="motcua interop hub",
        version="0.1.0",
        summary="Integration hub between the one-stop system, the DVCQG and the LGSP",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url="/api/v1/redoc",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry spans stay off: they record the query string (url.query),
        # which on the lookup routes holds the owner's ID number (id_number, SGT; Decree
        # 13/2023). The hub's span (hub.api.observability) records the route template only.
        telemetry=NO_NATIVE_TELEMETRY,
    )
    app.state.settings = settings
    app.state.db = database
    app.state.health = health if health is not None else HubHealth()
    app.state.telemetry = telemetry = telemetry if telemetry is not None else Telemetry()
    app.state.services = build_services(
        settings, database, bootstrap_token=bootstrap_token, telemetry=telemetry
    )
    if settings.signing.keys:
        # Server-held keys from ``[signing.keys]``: checked now (files, secrets in the
        # environment), opened only when signing. Imported here so apps without keys never
        # load the signing stack.
        from hub.services.results import ResultSigningService
        from hub.services.signing_keys import build_signing_facade

        services: Services = app.state.services
        services.signing = facade = build_signing_facade(settings, db=database)
        services.results = ResultSigningService.from_settings(
            settings, facade, services.files, services.intake, database, metrics=telemetry.metrics
        )
    install_error_handlers(app)
    app.add_middleware(AuditClientMiddleware)  # innermost: sees the address trusted proxies gave
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.api.max_body_bytes)
    install_security_middleware(app, settings.api)
    install_request_telemetry(app, telemetry.tracing)
    included: list[str] = []
    for name, router in load_routers(route_modules):
        app.include_router(router)
        included.append(name)
    app.state.route_modules = included
    from hub.console.routes import install_console  # the console's pages (docs/security.md §10)

    # After the API's routes: a request is matched against the routes in order, and the
    # console's ~50 (all under /console/) were tried before every API call.
    install_console(app, settings, database)
    return app
