"""``hub users``: console accounts from the command line (docs/security.md §10, deployment.md).

``create-admin`` makes the first admin account once (refused as soon as an active admin
account exists); there is no default account or password. Passwords are read from a hidden
prompt (asked twice), from a file (``--password-file``, ``-`` for standard input) or from an
environment variable named by ``--password-env``; never from the command line, where other
users of the machine could read them in the process list. Every change is audited with the
actor ``cli:<login name>``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hub.commands.listing import echo_table

if TYPE_CHECKING:
    from hub.accounts.service import Account, AccountService

__all__ = ["app"]

app = typer.Typer(
    help="Tài khoản bảng điều khiển / console accounts (roles: officer, clerk, technician, admin).",
    no_args_is_help=True,
    add_completion=False,
)

PasswordFile = Annotated[
    Path | None,
    typer.Option("--password-file", help="Read the password from this file ('-': standard input)"),
]
PasswordEnv = Annotated[
    str | None, typer.Option("--password-env", help="Read the password from this environment variable")
]
Roles = Annotated[list[str], typer.Option("--role", help="officer | clerk | technician | admin (repeat)")]


def _service() -> AccountService:
    from hub.accounts.service import AccountService
    from hub.config import load_settings
    from hub.runtime import open_database

    settings = load_settings()
    return AccountService(open_database(settings, pool_size=1), settings.console)


def _operator() -> str:
    return f"cli:{os.environ.get('USER') or os.environ.get('USERNAME') or 'unknown'}"


def _password(path: Path | None, env: str | None) -> str:
    """The new password from a file, a variable or a hidden prompt; never a default."""
    if path is not None and env is not None:
        raise typer.BadParameter("give --password-file or --password-env, not both")
    if path is not None:
        text = sys.stdin.read() if str(path) == "-" else path.read_text("utf-8")
        return text.rstrip("\r\n")
    if env is not None:
        given = os.environ.get(env)
        if not given:
            raise typer.BadParameter(f"environment variable {env} is not set")
        return given
    prompted: str = typer.prompt("Mật khẩu / password", hide_input=True, confirmation_prompt=True)
    return prompted


def _describe(account: Account) -> str:
    state = "disabled" if account.disabled else "active"
    return f"{account.username!r} ({', '.join(account.role_names)}; {state})"


@app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option(help="Login name of the first admin")],
    display_name: Annotated[str, typer.Option(help="Full name shown in the console")],
    unit: Annotated[str, typer.Option(help="Unit (phòng, ban)")] = "",
    password_file: PasswordFile = None,
    password_env: PasswordEnv = None,
) -> None:
    """Create the first admin account; refused once an active admin account exists."""
    account = _service().create(
        username,
        display_name,
        _password(password_file, password_env),
        ["admin"],
        actor=_operator(),
        unit=unit,
        first_admin=True,
    )
    typer.echo(f"created admin account {_describe(account)}")


@app.command("create")
def create(
    username: Annotated[str, typer.Option(help="Login name (lower case, digits, ._-)")],
    display_name: Annotated[str, typer.Option(help="Full name shown in the console")],
    role: Roles,
    unit: Annotated[str, typer.Option(help="Unit (phòng, ban)")] = "",
    password_file: PasswordFile = None,
    password_env: PasswordEnv = None,
) -> None:
    """Create an account with one or several roles."""
    account = _service().create(
        username, display_name, _password(password_file, password_env), role, actor=_operator(), unit=unit
    )
    typer.echo(f"created account {_describe(account)}")


@app.command("list")
def list_accounts() -> None:
    """List accounts (username, roles, unit, state); passwords are never shown."""
    echo_table(
        [("USERNAME", 24), ("ROLES", 30), ("UNIT", 24), ("LAST LOGIN", 17), ("STATE", 0)],
        [
            (
                account.username,
                ",".join(account.role_names),
                account.unit[:24],
                f"{account.last_login_at:%Y-%m-%d %H:%M}" if account.last_login_at else "—",
                "disabled" if account.disabled else "active",
            )
            for account in _service().list()
        ],
        empty="no accounts",
    )


@app.command("disable")
def disable(username: Annotated[str, typer.Argument(help="Login name")]) -> None:
    """Disable an account and end its sessions (the last active admin cannot be disabled)."""
    typer.echo(f"disabled {_describe(_service().disable(username, actor=_operator()))}")


@app.command("enable")
def enable(username: Annotated[str, typer.Argument(help="Login name")]) -> None:
    """Enable a disabled account (its lock and failure count are cleared)."""
    typer.echo(f"enabled {_describe(_service().enable(username, actor=_operator()))}")


@app.command("set-roles")
def set_roles(username: Annotated[str, typer.Argument(help="Login name")], role: Roles) -> None:
    """Replace the roles of an account."""
    typer.echo(f"roles of {_describe(_service().set_roles(username, role, actor=_operator()))}")


@app.command("reset-password")
def reset_password(
    username: Annotated[str, typer.Argument(help="Login name")],
    password_file: PasswordFile = None,
    password_env: PasswordEnv = None,
) -> None:
    """Set a new password (the rules apply), clear the lock, end every session of the account."""
    account = _service().reset_password(username, _password(password_file, password_env), actor=_operator())
    typer.echo(f"new password set for {_describe(account)}; its sessions were ended")


@app.command("oidc-unlink")
def oidc_unlink(username: Annotated[str, typer.Argument(help="Login name")]) -> None:
    """Forget the account's link to an identity at the OIDC provider (relinked at its next sign-in)."""
    typer.echo(f"OIDC link removed from {_describe(_service().unlink_oidc(username, actor=_operator()))}")
