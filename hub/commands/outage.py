"""``hub outage add|list`` and ``hub report outages``: outages of the hub, its database and the
department's software (:mod:`hub.services.outages`; docs/architecture.md, "Late entries").

``hub outage add --from … --to … --reason …`` records an outage the hub could not see (the
department's one-stop software was down, ``--kind department``, the default), audited with the
operator as actor. ``hub report outages --from … --to …`` prints the recorded outages of a
period, overlapping ones of a kind merged, with the total per kind (``--json`` for the API's
shape). Times are ISO 8601 with an offset (``2026-03-05T08:00:00+07:00``).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from schemas.timefmt import VN_TZ, iso_vn, now_utc

if TYPE_CHECKING:
    from hub.db.session import Database

__all__ = ["app", "report_app"]

app = typer.Typer(
    help="Sự cố gián đoạn / outages of the hub and the department's software.", no_args_is_help=True
)
report_app = typer.Typer(
    help="Báo cáo sự cố / report the recorded outages of a period.", add_completion=False
)

FromOpt = Annotated[str, typer.Option("--from", help="Start (ISO 8601, e.g. 2026-03-05T08:00+07:00)")]
ToOpt = Annotated[str, typer.Option("--to", help="End (ISO 8601)")]
SinceOpt = Annotated[str | None, typer.Option("--from", help="Start (ISO 8601; default 30 days ago)")]
UntilOpt = Annotated[str | None, typer.Option("--to", help="End (ISO 8601; default now)")]


def _aware(value: str) -> datetime:
    """An ISO 8601 time; without an offset it is Vietnam time (the department's clock)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time (2026-03-05T08:00+07:00)") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=VN_TZ)


def _database() -> Database:
    from hub.config import load_settings
    from hub.runtime import open_database

    return open_database(load_settings(), pool_size=2)


@app.command("add")
def add(
    start: FromOpt,
    end: ToOpt,
    reason: Annotated[str, typer.Option(help="What was down and why")],
    kind: Annotated[str, typer.Option(help="department | hub | database")] = "department",
    actor: Annotated[str | None, typer.Option(help="Who records it (default cli:$USER)")] = None,
) -> None:
    """Record an outage (default: of the department's software), audited."""
    from hub.services.outages import OutageKind, add_outage
    from schemas.errors import HubError

    operator = actor or f"cli:{os.environ.get('USER') or os.environ.get('USERNAME') or 'unknown'}"
    try:
        outage_kind = OutageKind(kind)
    except ValueError:
        raise typer.BadParameter(f"kind must be one of {', '.join(k.value for k in OutageKind)}") from None
    since, until = _aware(start), _aware(end)
    db = _database()
    try:
        outage_id = add_outage(db, outage_kind, since, until, reason, operator)
    except HubError as exc:
        typer.echo(f"error: {exc.message} / {exc.message_vi}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    typer.echo(f"outage {outage_id} recorded: {kind} {iso_vn(since)} – {iso_vn(until)}")


@report_app.callback(invoke_without_command=True)
def report(
    start: SinceOpt = None,
    end: UntilOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON")] = False,
) -> None:
    """Recorded outages of a period, with the total per kind."""
    from hub.services.outages import outage_report

    until = _aware(end) if end else now_utc()
    since = _aware(start) if start else until - timedelta(days=30)
    db = _database()
    try:
        result = outage_report(db, since, until)
    finally:
        db.dispose()
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    typer.echo(f"outages {iso_vn(since)} – {iso_vn(until)}")
    for view in result.outages:
        reasons = "; ".join(view.reasons)
        typer.echo(
            f"  {view.kind.value:<10} {iso_vn(view.started_at)} – {iso_vn(view.ended_at)} "
            f"{view.seconds / 60:8.1f} min  {reasons}"
        )
    totals = ", ".join(f"{kind} {seconds / 60:.1f} min" for kind, seconds in result.seconds_by_kind.items())
    typer.echo(f"total: {totals}")


@app.command("list")
def list_outages(
    start: SinceOpt = None,
    end: UntilOpt = None,
) -> None:
    """Same as ``hub report outages``."""
    report(start, end, as_json=False)


if __name__ == "__main__":  # pragma: no cover
    app()
