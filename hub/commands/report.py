"""``hub report``: on-time statistics from the command line (docs/reports.md §5).

``ontime`` prints a table (rich) or writes CSV/XLSX (``--out``, or CSV to standard output);
``rebuild`` recomputes every report row from the stored dossiers (after a rule change);
``outages`` lists the recorded outages of a period; ``usage`` is the usage report;
``tracking-book`` and ``control-slip`` write the records of the one-stop procedure (PDF, or the
book as CSV/XLSX; docs/reports.md §7, §8); ``run-schedules`` runs the scheduled exports (§10).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hub.commands.option_groups import with_options
from hub.commands.outage import report_app as outages_app
from hub.reports.formats import FileFormat
from hub.reports.query import GroupBy, day_range

if TYPE_CHECKING:
    from hub.reports.pdf import Letterhead
    from hub.reports.writers import ReportWriters

__all__ = ["app"]

app = typer.Typer(help="Báo cáo / on-time statistics and recorded outages.", no_args_is_help=True)
#: ``hub report outages``: recorded outages of a period (:mod:`hub.commands.outage`).
app.add_typer(outages_app, name="outages")


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"
    PDF = "pdf"


@contextmanager
def _database() -> Iterator[tuple[Any, Any]]:
    """The hub's database, closed on the way out, and the settings it was named by."""
    from hub.config import load_settings
    from hub.db.session import Database

    settings = load_settings()
    db = Database.connect(settings.database_url, pool_size=2)
    try:
        yield db, settings
    finally:
        db.dispose()


def _table(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from hub.reports.export import COLUMNS, title

    table = Table(title=title(report), show_lines=False)
    names = list(COLUMNS)
    for name in names:
        table.add_column(
            COLUMNS[name], justify="left" if name in ("key", "label") else "right", overflow="fold"
        )
    for row in [*report.rows, report.total]:
        cells = []
        for name in names:
            value = getattr(row, name)
            cells.append("" if value is None else f"{value:.1%}" if isinstance(value, float) else str(value))
        table.add_row(*cells)
    Console(width=240).print(table)


@dataclass(frozen=True)
class ReportDays:
    """The report's days, as in the API: ``--from``/``--to`` or ``--period`` (docs/reports.md §2.1)."""

    first: Annotated[datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="First day")] = None
    last: Annotated[datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day")] = None
    period: Annotated[str | None, typer.Option(help="Instead of --from/--to: 2025, 2025-Q2, 2025-06")] = None

    def window(self) -> Any:
        first, last = (day.date() if day else None for day in (self.first, self.last))
        return day_range(first, last, self.period)


@dataclass(frozen=True)
class ReportScope(ReportDays):
    """The report's days and, with ``--agency``, the one receiving agency it is about."""

    agency: Annotated[str | None, typer.Option(help="Only this receiving agency")] = None

    def agency_code(self) -> str | None:
        from schemas.codes import validate_agency_code

        return validate_agency_code(self.agency) if self.agency else None


@app.command("ontime")
@with_options(scope=ReportScope)
def ontime(
    scope: ReportScope,
    group_by: Annotated[GroupBy, typer.Option("--group-by")] = GroupBy.PROCEDURE,
    output: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.TABLE,
    out: Annotated[Path | None, typer.Option(help="Write to this file (xlsx and pdf need it)")] = None,
) -> None:
    """Received, finished (early, on time, late), in progress, supplement, withdrawn, refused."""
    from hub.reports.pdf import Letterhead
    from hub.reports.service import ReportService
    from hub.reports.writers import ONTIME_FILES

    window, agency_code = scope.window(), scope.agency_code()
    with _database() as (db, settings):
        report = ReportService(db, settings).ontime(window, group_by, agency_code=agency_code)
    if output is OutputFormat.TABLE:
        _table(report)
        return
    head = Letterhead.from_settings(settings.reports)
    _write(report, output, out, ONTIME_FILES, head, f"{len(report.rows)} rows")


def _write(
    report: Any,
    output: OutputFormat,
    out: Path | None,
    writers: ReportWriters[Any],
    head: Letterhead,
    summary: str,
) -> None:
    """Write ``report`` as JSON, CSV, XLSX or PDF to ``out`` (standard output without it; the
    binary formats need a file)."""
    if output in (OutputFormat.XLSX, OutputFormat.PDF) and out is None:
        raise typer.BadParameter(
            f"--format {output.value} writes a file: give --out FILE.{output.value}", param_hint="--out"
        )
    if output is OutputFormat.JSON:
        body = report.model_dump_json(by_alias=True, indent=2).encode() + b"\n"
    else:
        body = writers.write(report, FileFormat(output.value), head)
    _emit(body, out, summary)


def _emit(body: bytes, out: Path | None, what: str) -> None:
    """``body`` to ``out``, or to standard output without it."""
    if out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return
    out.write_bytes(body)
    typer.echo(f"{out} ({what})", err=True)


@app.command("usage")
@with_options(days=ReportDays)
def usage(
    days: ReportDays,
    output: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.TABLE,
    out: Annotated[Path | None, typer.Option(help="Write to this file (xlsx and pdf need it)")] = None,
) -> None:
    """Use of the system (Decision 692/QĐ-SNN Art. 18): dossiers by channel, deliveries,
    signatures, lookups, downtime (docs/reports.md §8)."""
    from hub.reports.pdf import Letterhead
    from hub.reports.service import ReportService
    from hub.reports.writers import USAGE_FILES

    window = days.window()
    with _database() as (db, settings):
        report = ReportService(db, settings).usage(window)
    if output is OutputFormat.TABLE:
        _usage_tables(report)
        return
    head = Letterhead.from_settings(settings.reports)
    _write(report, output, out, USAGE_FILES, head, "usage report")


def _usage_tables(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from hub.reports.usage_export import SECTIONS, section_rows, title

    console = Console(width=200)
    console.print(title(report))
    for section in SECTIONS:
        table = Table(title=section.title)
        for heading in section.columns.values():
            table.add_column(heading, overflow="fold")
        for line in section_rows(report, section):
            table.add_row(*("" if value is None else str(value) for value in line))
        console.print(table)


@app.command("rebuild")
def rebuild_rows() -> None:
    """Recompute the report row of every dossier (after a change of the rule's code)."""
    from hub.reports.projection import rebuild

    with _database() as (db, _settings), db.transaction() as session:
        count = rebuild(session.connection())
    typer.echo(f"{count} dossiers")


@app.command("run-schedules")
def run_schedules_command() -> None:
    """Export what ``[[reports.schedules]]`` owes now (docs/reports.md §10); call it from a cron
    job or a systemd timer, as often as you like, on one host or several: each period is
    exported once. Exit status 1 when an export failed (a later run tries it again)."""
    from hub.reports.schedules import run_schedules
    from schemas.timefmt import now_utc

    with _database() as (db, settings):
        outcomes = run_schedules(db, settings, now_utc())
    for outcome in outcomes:
        typer.echo(f"{outcome.schedule} {outcome.period} {outcome.outcome} {outcome.detail}".rstrip())
    if any(outcome.outcome == "failed" for outcome in outcomes):
        raise typer.Exit(1)


@app.command("tracking-book")
@with_options(scope=ReportScope)
def tracking_book(
    scope: ReportScope,
    output: Annotated[FileFormat, typer.Option("--format")] = FileFormat.PDF,
    out: Annotated[Path | None, typer.Option(help="Write to this file (default: standard output)")] = None,
) -> None:
    """Sổ theo dõi hồ sơ: one row per dossier received in the period (docs/reports.md §7)."""
    from hub.reports.record_service import RecordService

    window, agency_code = scope.window(), scope.agency_code()
    with _database() as (db, settings):
        records = RecordService(db, settings)
        book = records.book(window, agency_code=agency_code)
    writers = {
        FileFormat.PDF: records.book_pdf,
        FileFormat.CSV: records.book_csv,
        FileFormat.XLSX: records.book_xlsx,
    }
    _emit(writers[output](book), out, f"{len(book.rows)} dossiers")


@app.command("control-slip")
def control_slip(
    code: Annotated[str, typer.Argument(help="Dossier code")],
    out: Annotated[Path | None, typer.Option(help="Write to this file (default: standard output)")] = None,
) -> None:
    """Phiếu kiểm soát quá trình giải quyết hồ sơ of one dossier, as PDF (docs/reports.md §7)."""
    from hub.reports.record_service import RecordService
    from hub.services.intake import IntakeService

    with _database() as (db, settings):
        dossier = IntakeService(db, settings).get_dossier(code)
        body = RecordService(db, settings).slip_pdf(dossier)
    _emit(body, out, f"{len(dossier.steps)} hand-overs")
