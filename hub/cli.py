"""The ``hub`` command line (console script ``hub = hub.cli:main``).

Own commands: ``hub serve`` (API, plus the delivery worker in-process unless
``--no-worker``), ``hub db upgrade``, ``hub keys create|list|revoke``. Commands of the other
parts are mounted from :data:`COMMAND_MODULES` when their module exists (each exposes a typer
``app``); a missing module is skipped, a broken one raises. Configuration errors print one
clear message and exit with status 2, other hub errors exit 1, never with a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.exc import OperationalError

from hub.config import Settings, load_settings
from schemas.errors import ConfigurationError, HubError

log = logging.getLogger("hub.cli")

#: Mounted sub-commands: (path under ``hub``, module). Each module exposes a typer ``app``.
COMMAND_MODULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("worker",), "hub.commands.worker"),
    (("dlq",), "hub.commands.dlq"),
    (("simulate", "dvcqg"), "hub.commands.simulate_dvcqg"),
    (("simulate", "lgsp"), "hub.commands.simulate_lgsp"),
    (("sign",), "hub.commands.sign"),
    (("verify",), "hub.commands.verify"),
    (("pki",), "hub.commands.pki"),
    (("demo",), "hub.commands.demo"),
)

EXIT_CONFIG = 2


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _settings() -> Settings:
    return load_settings()


def _command_names(app: typer.Typer) -> list[str]:
    names = []
    for info in app.registered_commands:
        callback_name = info.callback.__name__ if info.callback else ""
        names.append(info.name or callback_name.replace("_", "-"))
    return names


def _mount(parent: typer.Typer, name: str, app: typer.Typer) -> None:
    """Mount ``app`` as ``name``; a single command already called ``name`` is merged in.

    (``hub verify x.pdf`` rather than ``hub verify verify x.pdf``.)
    """
    if app.registered_callback is None and not app.registered_groups and _command_names(app) == [name]:
        parent.add_typer(app)
    else:
        parent.add_typer(app, name=name)


# --- own commands -----------------------------------------------------------------------------


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: api.host)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: api.port)")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Do not run the delivery worker")] = False,
    json_logs: Annotated[bool, typer.Option("--json-logs/--plain-logs", help="Log format")] = True,
) -> None:
    """Run the HTTP API (and the delivery worker in the same process)."""
    from hub.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, json_lines=json_logs)
    asyncio.run(_serve(settings, host or settings.api.host, port or settings.api.port, not no_worker))


async def _serve(settings: Settings, host: str, port: int, with_worker: bool) -> None:
    import uvicorn

    from hub.api.app import create_app
    from hub.db.session import Database

    db = Database.connect(settings.database_url)
    try:
        check_schema(db)
    except BaseException:
        db.dispose()
        raise
    app = create_app(settings, db)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=True))
    # SIGTERM/SIGINT stop the API and the worker gracefully and the process exits 0; uvicorn's
    # own handling would re-raise the signal after shutdown (exit status -15).
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    loop = asyncio.get_running_loop()

    def _shutdown() -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _shutdown)
    stop = asyncio.Event()
    worker_task: asyncio.Task[Any] | None = None
    if with_worker:
        run_worker = _worker_runner()
        if run_worker is None:
            log.warning("hub.delivery is not installed; serving the API without a delivery worker")
        else:
            worker_task = asyncio.create_task(run_worker(settings, db, stop), name="delivery-worker")
    try:
        await server.serve()
    finally:
        stop.set()
        if worker_task is not None:
            await worker_task
        db.dispose()


def check_schema(db: Any) -> None:
    """Refuse to serve a database whose schema is not at the latest migration."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from hub.db.migrate import alembic_config

    heads = set(ScriptDirectory.from_config(alembic_config("")).get_heads())
    with db.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current != heads:
        found = ", ".join(sorted(current)) or "empty"
        raise ConfigurationError(
            f"database schema is at {found}, expected {', '.join(sorted(heads))}: run 'hub db upgrade' first",
            message_vi="cơ sở dữ liệu chưa được cập nhật; hãy chạy 'hub db upgrade'",
        )


def _worker_runner() -> Any:
    if not _module_exists("hub.delivery"):
        return None
    return getattr(importlib.import_module("hub.delivery"), "run_worker", None)


db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Option(help="Target revision")] = "head") -> None:
    """Apply the Alembic migrations (creates the schema on an empty database)."""
    from hub.db.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}: {_safe_url(settings.database_url)}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


keys_app = typer.Typer(
    help="API keys (roles: source, portal, officer, technician, admin).", no_args_is_help=True
)


def _key_service() -> Any:
    from hub.auth.keys import ApiKeyService
    from hub.db.session import Database

    return ApiKeyService(Database.connect(_settings().database_url))


def _operator() -> str:
    return f"cli:{os.environ.get('USER') or os.environ.get('USERNAME') or 'unknown'}"


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Unique name of the key (who uses it)")],
    role: Annotated[str, typer.Option(help="source | portal | officer | technician | admin")],
) -> None:
    """Create a key and print its token ONCE (only a hash is stored)."""
    issued = _key_service().create(name, role, actor=_operator())
    typer.echo(
        f"created key {issued.info.name!r} (role {issued.info.role.value}, prefix {issued.info.prefix})"
    )
    typer.echo("token (shown once, store it now):", err=True)
    typer.echo(issued.token)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (name, role, prefix, state); tokens are never shown."""
    rows = _key_service().list()
    if not rows:
        typer.echo("no API keys")
        return
    typer.echo(f"{'NAME':30} {'ROLE':11} {'PREFIX':9} {'CREATED':25} STATE")
    for key in rows:
        state = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
        typer.echo(
            f"{key.name:30} {key.role.value:11} {key.prefix:9} {key.created_at:%Y-%m-%d %H:%M:%S%z}  {state}"
        )


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="Name of the key")]) -> None:
    """Revoke a key: requests with it are refused from now on."""
    info = _key_service().revoke(name, actor=_operator())
    typer.echo(f"revoked key {info.name!r} (prefix {info.prefix})")


# --- assembly ---------------------------------------------------------------------------------


def build_cli(modules: tuple[tuple[tuple[str, ...], str], ...] = COMMAND_MODULES) -> typer.Typer:
    """The root typer app with every present command module mounted."""
    root = typer.Typer(
        help="motcua interop hub: một cửa ↔ Cổng DVCQG ↔ LGSP.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @root.callback()
    def _options(
        config: Annotated[
            Path | None, typer.Option("--config", "-c", help="TOML settings file (sets HUB_CONFIG_FILE)")
        ] = None,
    ) -> None:
        if config is not None:
            os.environ["HUB_CONFIG_FILE"] = str(config)

    root.command("serve")(serve)
    root.add_typer(db_app, name="db")
    root.add_typer(keys_app, name="keys")
    groups: dict[str, typer.Typer] = {}
    for path, module_name in modules:
        if not _module_exists(module_name):
            log.debug("command module %s not present; 'hub %s' skipped", module_name, " ".join(path))
            continue
        app = getattr(importlib.import_module(module_name), "app", None)
        if not isinstance(app, typer.Typer):
            raise TypeError(f"{module_name} has no typer 'app'")
        parent = root
        for group in path[:-1]:
            if group not in groups:
                groups[group] = typer.Typer(help=f"{group} commands", no_args_is_help=True)
                root.add_typer(groups[group], name=group)
            parent = groups[group]
        _mount(parent, path[-1], app)
    return root


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning hub errors into one line and an exit status."""
    cli = build_cli()
    try:
        cli(args=argv, prog_name="hub")  # standalone: usage errors print and exit 2
    except ConfigurationError as exc:
        typer.echo(f"configuration error: {exc.message}", err=True)
        sys.exit(EXIT_CONFIG)
    except HubError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    except OperationalError as exc:
        typer.echo(f"database error: {str(exc.orig).strip() or exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
