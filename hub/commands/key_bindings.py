"""``hub keys bind`` / ``unbind`` / ``bindings``: server-held signing keys bound to accounts
(docs/security.md, "Signing keys bound to accounts").

The rules and the audit rows are :class:`hub.services.key_bindings.KeyBindingService`'s; the
actor is ``cli:<login name>``. A running hub sees a change before its next API signature, and
on the console desk within :data:`hub.services.key_bindings.PROPAGATION_SECONDS`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from hub.services.key_bindings import KeyBindingService

__all__ = ["register"]

KeyId = Annotated[str, typer.Argument(help="Id of the key in [signing.keys]")]
PrincipalArg = Annotated[str, typer.Argument(help="user:<username> or an API key's name")]


def _service() -> KeyBindingService:
    from hub.config import load_settings
    from hub.runtime import open_database
    from hub.services.key_bindings import KeyBindingService

    settings = load_settings()
    db = open_database(settings, pool_size=1)
    return KeyBindingService(db, settings.signing, environ=settings.secret_environment())


def _operator() -> str:
    return f"cli:{os.environ.get('USER') or os.environ.get('USERNAME') or 'unknown'}"


def bind(key_id: KeyId, principal: PrincipalArg) -> None:
    """Let PRINCIPAL sign with KEY_ID (personal keys: officers; the seal: clerks). Audited."""
    after = _service().bind(key_id, principal, actor=_operator())
    typer.echo(f"bound {principal!r} to {key_id!r}; principals: {', '.join(after)}")


def unbind(key_id: KeyId, principal: PrincipalArg) -> None:
    """Remove an admin binding of PRINCIPAL to KEY_ID (configured principals: edit the file). Audited."""
    after = _service().unbind(key_id, principal, actor=_operator())
    typer.echo(f"unbound {principal!r} from {key_id!r}; principals: {', '.join(after) or '(none)'}")


def bindings() -> None:
    """List the configured keys and who may use each (configuration and admin bindings)."""
    from rich.console import Console
    from rich.table import Table

    keys = _service().keys()
    if not keys:
        typer.echo("no signing key is configured")
        return
    table = Table(title="Signing keys / khóa ký")
    for column in ("KEY", "PURPOSE", "CERTIFICATE", "VALID UNTIL", "PRINCIPAL", "SOURCE", "BOUND BY"):
        table.add_column(column, overflow="fold")
    for key in keys:
        subject = key.certificate.subject if key.certificate else "—"
        until = f"{key.certificate.not_after:%Y-%m-%d}" if key.certificate else "—"
        rows = key.bindings or ()
        if not rows:
            table.add_row(key.key_id, key.purpose.value, subject, until, "(nobody)", "", "")
        for binding in rows:
            bound = f"{binding.bound_by} {binding.bound_at:%Y-%m-%d %H:%M}" if binding.bound_at else ""
            table.add_row(
                key.key_id, key.purpose.value, subject, until, binding.principal, binding.source, bound
            )
    Console(width=200).print(table)


def register(keys: typer.Typer) -> None:
    """Add the three commands to ``hub keys``."""
    keys.command("bind")(bind)
    keys.command("unbind")(unbind)
    keys.command("bindings")(bindings)
