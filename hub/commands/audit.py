"""``hub audit``: read, export and verify the audit log (docs/security.md, "Audit log").

``list`` (filters, newest first, ``--cursor`` for the next page), ``export --format csv|jsonl``
(every matching row, oldest first, to a file or stdout), ``verify`` (walks the hash chain;
exit 1 and the first broken link when it is broken). Personal data is masked in the output.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from hub.commands.option_groups import with_options

__all__ = ["app"]

app = typer.Typer(help="Nhật ký kiểm toán / audit log: list, export, verify.", no_args_is_help=True)

ActorOpt = Annotated[str | None, typer.Option(help="Exactly this actor")]
ActionOpt = Annotated[str | None, typer.Option(help="Action prefix, e.g. dlq. or api_key.create")]
TargetOpt = Annotated[str | None, typer.Option(help="Exactly this target")]
SinceOpt = Annotated[datetime | None, typer.Option(help="At or after (ISO 8601, with offset)")]
UntilOpt = Annotated[datetime | None, typer.Option(help="Before (ISO 8601, with offset)")]
TextOpt = Annotated[str | None, typer.Option("--text", help="Text appearing in the details")]


def _db() -> Any:
    from hub.config import load_settings
    from hub.db.session import Database

    return Database.connect(load_settings().database_url, pool_size=2)


@dataclass(frozen=True)
class FilterOptions:
    """Which rows ``list`` and ``export`` read."""

    actor: ActorOpt = None
    action: ActionOpt = None
    target: TargetOpt = None
    since: SinceOpt = None
    until: UntilOpt = None
    text: TextOpt = None

    def build(self) -> Any:
        from hub.audit.query import AuditFilter

        return AuditFilter(**asdict(self)).check()


@app.command("list")
@with_options(matching=FilterOptions)
def list_(
    matching: FilterOptions,
    cursor: Annotated[int | None, typer.Option(help="Rows older than this id (the next page)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Audit rows, newest first."""
    from hub.audit.query import list_entries

    flt = matching.build()
    page = list_entries(_db(), flt, cursor=cursor, limit=limit)
    if as_json:
        typer.echo(page.model_dump_json(indent=2))
        return
    for entry in page.items:
        typer.echo(
            f"{entry.id:>8} {entry.at:%Y-%m-%d %H:%M:%S%z} {entry.actor:24} {entry.action:22} "
            f"{entry.target} [{entry.client or '-'}]"
        )
    if page.next_cursor is not None:
        typer.echo(f"more: --cursor {page.next_cursor}")


@app.command("export")
@with_options(matching=FilterOptions)
def export(
    format: Annotated[str, typer.Option("--format", help="csv | jsonl")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default: stdout)")] = None,
    *,
    matching: FilterOptions,
) -> None:
    """Every matching row, oldest first (chain order), as CSV or JSON Lines."""
    from hub.audit.query import export_csv, export_jsonl
    from schemas.errors import InvalidInputError

    if format not in ("csv", "jsonl"):
        raise InvalidInputError(f"unknown format {format!r}: csv or jsonl")
    flt = matching.build()
    lines = (export_csv if format == "csv" else export_jsonl)(_db(), flt)
    if output is None:
        for line in lines:
            sys.stdout.write(line)
        return
    with output.open("w", encoding="utf-8", newline="") as handle:
        handle.writelines(lines)
    typer.echo(f"exported to {output}", err=True)


@app.command("verify")
def verify() -> None:
    """Walk the hash chain; exit 1 with the first broken link when it is broken."""
    from hub.audit.verify import verify_chain

    report = verify_chain(_db())
    if report.ok:
        typer.echo(f"audit chain intact: {report.checked} rows, last hash {report.last_hash}")
        return
    where = f"at row {report.broken_at}" if report.broken_at is not None else ""
    typer.echo(f"audit chain BROKEN {where} after {report.checked} good rows: {report.reason}", err=True)
    raise typer.Exit(1)
