"""The ``hub`` command line (console script ``hub = hub.cli:main``, also ``python -m hub``).

Own commands: ``hub serve`` (API, plus the delivery worker in-process unless ``--no-worker``),
``hub db upgrade``, ``hub keys create|list|revoke``. Commands of the other parts are mounted
from :data:`COMMAND_MODULES` (each module exposes a typer ``app``) and imported only when one
of them runs, so ``hub --help`` and the light commands never load pyHanko, zeep or aiohttp; a
missing module is skipped, a broken one raises when its command runs. Processes that run the
hub start it through :mod:`hub.runtime`. Configuration errors print one clear message and exit
with status 2, other hub errors exit 1, never with a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, NamedTuple

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from hub.commands.key_bindings import register as register_key_bindings
from hub.commands.listing import echo_table
from schemas.errors import ConfigurationError, HubError

if TYPE_CHECKING:
    from hub.config import Settings

log = logging.getLogger("hub.cli")


class CommandModule(NamedTuple):
    """A sub-command mounted at ``path`` under ``hub`` from ``module`` (which exposes ``app``)."""

    path: tuple[str, ...]
    module: str
    #: The line ``hub --help`` shows (without importing the module).
    help: str = ""


#: Mounted sub-commands, imported when they run.
COMMAND_MODULES: tuple[CommandModule, ...] = (
    CommandModule(("worker",), "hub.commands.worker", "Deliver outbox messages to the configured endpoints."),
    CommandModule(("dlq",), "hub.commands.dlq", "Hàng đợi bản tin lỗi / dead-letter queue operations."),
    CommandModule(
        ("prune",),
        "hub.commands.prune",
        "Xóa dữ liệu đã hết hạn lưu / prune delivered messages and finished jobs past retention.",
    ),
    CommandModule(
        ("simulate", "dvcqg"),
        "hub.commands.simulate_dvcqg",
        "Mô phỏng Cổng DVCQG / run a simulator of the National Public Service Portal adapter.",
    ),
    CommandModule(
        ("simulate", "lgsp"),
        "hub.commands.simulate_lgsp",
        "Mô phỏng nền tảng LGSP / run a simulator of the provincial LGSP (SOAP 1.1/1.2 and REST).",
    ),
    CommandModule(
        ("lookup",),
        "hub.commands.lookup",
        "Tra cứu hồ sơ / citizen lookup: re-key the owners' ID digests (hub lookup rehash).",
    ),
    CommandModule(
        ("users",),
        "hub.commands.users",
        "Tài khoản bảng điều khiển / console accounts: create-admin, create, list, disable, roles.",
    ),
    CommandModule(("sign",), "hub.commands.sign", "Ký số văn bản PDF / sign PDF documents (PAdES)."),
    CommandModule(
        ("token-sign",),
        "hub.commands.token_sign",
        "Ký bằng USB token của cán bộ / the officer's token side of external signing (PKCS#11).",
    ),
    CommandModule(
        ("issue",),
        "hub.commands.issue",
        "Cấp số, ngày ban hành và đóng dấu / issue a signed document (number, date, seal).",
    ),
    CommandModule(("verify",), "hub.commands.verify", "Kiểm tra chữ ký số / verify the signatures of a PDF."),
    CommandModule(
        ("report",),
        "hub.commands.report",
        "Báo cáo / on-time statistics (table, CSV, XLSX), recorded outages; rebuild the report rows.",
    ),
    CommandModule(
        ("audit",),
        "hub.commands.audit",
        "Nhật ký kiểm toán / audit log: list, export, verify the hash chain.",
    ),
    CommandModule(("pki",), "hub.commands.pki", "PKI thử nghiệm / demo test PKI (not for production)."),
    CommandModule(
        ("outage",),
        "hub.commands.outage",
        "Sự cố gián đoạn / record outages of the department's software (hub outage add).",
    ),
    CommandModule(
        ("demo",),
        "hub.commands.demo",
        "End-to-end demonstration: DVCQG and LGSP simulators with faults, signing, DLQ replay.",
    ),
)

EXIT_CONFIG = 2


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _settings() -> Settings:
    from hub.config import load_settings

    return load_settings()


def _command_names(app: typer.Typer) -> list[str]:
    names = []
    for info in app.registered_commands:
        callback_name = info.callback.__name__ if info.callback else ""
        names.append(info.name or callback_name.replace("_", "-"))
    return names


def load_command(name: str, module_name: str) -> Any:
    """Import ``module_name`` and make its typer ``app`` the command ``name``.

    A single command already called ``name`` is the command itself (``hub verify x.pdf``
    rather than ``hub verify verify x.pdf``); anything else becomes a group called ``name``.
    """
    app = getattr(importlib.import_module(module_name), "app", None)
    if not isinstance(app, typer.Typer):
        raise TypeError(f"{module_name} has no typer 'app'")
    if app.registered_callback is None and not app.registered_groups and _command_names(app) == [name]:
        return typer.main.get_command(app)
    group = typer.main.get_group(app)
    group.name = name
    return group


class MountedGroup(TyperGroup):
    """A command group whose mounted sub-commands (:attr:`mounts`) are imported when they run.

    Listing them (``--help``) shows their declared help line instead of importing them. (The
    click types in the signatures are spelled ``Any``: typer may vendor its own click.)
    """

    #: Sub-command name → (module, help line); set on the subclass :func:`_group_class` makes.
    mounts: ClassVar[dict[str, tuple[str, str]]] = {}
    #: Names listed after the group's own commands, in this order (mounts and nested groups).
    order: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        present = [
            name
            for name in self.order
            if name in self.commands or (name in self.mounts and _module_exists(self.mounts[name][0]))
        ]
        return [*(name for name in own if name not in self.order), *present]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in self.mounts:
            return command
        module, help_line = self.mounts[cmd_name]
        if not _module_exists(module):
            log.debug("command module %s not present; 'hub %s' skipped", module, cmd_name)
            return None
        if self._listing:
            return TyperCommand(cmd_name, help=help_line, short_help=help_line)
        command = load_command(cmd_name, module)
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def _group_class(mounts: dict[str, tuple[str, str]], order: list[str]) -> type[MountedGroup]:
    return type("HubMountedGroup", (MountedGroup,), {"mounts": mounts, "order": tuple(order)})


# --- own commands -----------------------------------------------------------------------------


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: api.host)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: api.port)")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Do not run the delivery worker")] = False,
    json_logs: Annotated[bool, typer.Option("--json-logs/--plain-logs", help="Log format")] = True,
    processes: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="API processes on the one port (default: api.processes)"),
    ] = None,
) -> None:
    """Run the HTTP API (and the delivery worker in the same process, the first of several)."""
    from hub import runtime

    settings = _settings()
    count = settings.api.processes if processes is None else processes
    if count > 1:
        status = runtime.run_processes(
            settings, count, json_logs=json_logs, worker=not no_worker, host=host, port=port
        )
    else:
        status = runtime.run(
            settings, json_logs=json_logs, api=True, worker=not no_worker, host=host, port=port
        )
    raise typer.Exit(status)


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
    help="API keys (roles: source, portal, officer, technician, admin); signing-key bindings.",
    no_args_is_help=True,
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
    agency: Annotated[
        list[str] | None,
        typer.Option(help="Agency code a source key may write dossiers of (repeat for several)"),
    ] = None,
    account: Annotated[
        str | None, typer.Option(help="Console account the key belongs to (signing grants 'user:<account>')")
    ] = None,
) -> None:
    """Create a key and print its token ONCE (only a hash is stored)."""
    issued = _key_service().create(name, role, actor=_operator(), agency_codes=agency or (), account=account)
    typer.echo(
        f"created key {issued.info.name!r} (role {issued.info.role.value}, prefix {issued.info.prefix}"
        f"{', agencies ' + ' '.join(sorted(issued.info.agency_codes)) if issued.info.agency_codes else ''})"
    )
    typer.echo("token (shown once, store it now):", err=True)
    typer.echo(issued.token)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (name, role, prefix, state); tokens are never shown."""
    echo_table(
        [("NAME", 30), ("ROLE", 11), ("PREFIX", 9), ("CREATED", 25), ("STATE", 0)],
        [
            (
                key.name,
                key.role.value,
                key.prefix,
                f"{key.created_at:%Y-%m-%d %H:%M:%S%z}",
                "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}",
            )
            for key in _key_service().list()
        ],
        empty="no API keys",
    )


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="Name of the key")]) -> None:
    """Revoke a key: requests with it are refused from now on."""
    info = _key_service().revoke(name, actor=_operator())
    typer.echo(f"revoked key {info.name!r} (prefix {info.prefix})")


register_key_bindings(keys_app)  # bind / unbind / bindings: signing keys bound to accounts


# --- assembly ---------------------------------------------------------------------------------


def build_cli(modules: Iterable[CommandModule] = COMMAND_MODULES) -> typer.Typer:
    """The root typer app: own commands, and ``modules`` mounted to be imported when they run."""
    mounts: dict[tuple[str, ...], dict[str, tuple[str, str]]] = {(): {}}
    order: dict[tuple[str, ...], list[str]] = {(): []}
    for entry in modules:
        for depth in range(len(entry.path)):
            parent, name = tuple(entry.path[:depth]), entry.path[depth]
            if name not in order[parent]:
                order[parent].append(name)
            if depth < len(entry.path) - 1:
                mounts.setdefault((*parent, name), {})
                order.setdefault((*parent, name), [])
        mounts[tuple(entry.path[:-1])][entry.path[-1]] = (entry.module, entry.help)
    root = typer.Typer(
        cls=_group_class(mounts[()], order[()]),
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
    groups: dict[tuple[str, ...], typer.Typer] = {(): root}
    for path in sorted((path for path in mounts if path), key=len):
        groups[path] = typer.Typer(
            cls=_group_class(mounts[path], order[path]), help=f"{path[-1]} commands", no_args_is_help=True
        )
        groups[path[:-1]].add_typer(groups[path], name=path[-1])
    return root


def _database_error(exc: Exception) -> str | None:
    """The one-line message of a database connection error (``None``: not one)."""
    if "sqlalchemy" not in sys.modules:  # nothing touched a database
        return None
    from sqlalchemy.exc import OperationalError

    if not isinstance(exc, OperationalError):
        return None
    from hub.db.availability import diagnose

    return f"database error: {diagnose(exc).reason}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning hub errors into one line and an exit status."""
    from hub.audit.context import acting_from, cli_client

    cli = build_cli()
    try:
        with acting_from(cli_client()):  # where the audit rows this command writes come from
            cli(args=argv, prog_name="hub")  # standalone: usage errors print and exit 2
    except ConfigurationError as exc:
        typer.echo(f"configuration error: {exc.message}", err=True)
        sys.exit(EXIT_CONFIG)
    except HubError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    except Exception as exc:
        message = _database_error(exc)
        if message is None:
            raise
        typer.echo(message, err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
