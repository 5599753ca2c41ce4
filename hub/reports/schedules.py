"""Scheduled exports of the reports (docs/reports.md §10): ``[[reports.schedules]]``.

:func:`run_schedules` is what ``hub report run-schedules`` calls (from a cron job or a systemd
timer, on one host or several): for each schedule, the period its latest run time (day and
time of the month, Vietnam time) exports, **claimed** by inserting ``report_export_runs(schedule,
period)``. The unique constraint lets one runner win; the others see the row and skip. A
claim left ``running`` longer than :data:`STALE_AFTER` (the runner died) or ``failed`` (fewer
than :data:`MAX_ATTEMPTS` times) is taken over by a conditional ``UPDATE`` that only one runner
can match.

Targets: a folder (the file written under a temporary name, flushed to disk and renamed over
the final name, so a reader never sees half a file), or a declared ``webhook`` endpoint: the
file (base64 in a JSON body) becomes an outbox message in the same transaction that marks the
run done, so it gets the delivery engine's retries, circuit breaker and dead-letter queue, and
is enqueued exactly once. Each run writes an audit row ``report.export`` (done or failed).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from hub.audit.log import record
from hub.config import ReportSchedule, Settings
from hub.db.session import Database
from hub.outbox.enqueue import new_messages, write_messages
from hub.reports.formats import MEDIA_TYPES
from hub.reports.models import ReportExportRun
from hub.reports.pdf import Letterhead
from hub.reports.query import DayRange, GroupBy, day_range
from hub.reports.service import ReportService
from hub.reports.writers import ONTIME_FILES, USAGE_FILES
from schemas.timefmt import VN_TZ, now_utc

log = logging.getLogger(__name__)

#: A claim still ``running`` after this long is taken to be a dead runner's.
STALE_AFTER = timedelta(minutes=30)
#: A failed export is tried again by later runs, up to this many attempts in all.
MAX_ATTEMPTS = 5
#: The outbox message kind of an export sent to an endpoint.
MESSAGE_KIND = "report.export"
ACTOR = "system:report-schedules"
_MONTHS = {"previous_month": 1, "previous_quarter": 3, "previous_year": 12}


@dataclass(frozen=True)
class DuePeriod:
    """The run a schedule owes at some time: when it fell due and the period it exports."""

    due_at: datetime
    period: str
    window: DayRange


def _month_start(year: int, month: int) -> date:
    """The first day of ``month`` counted from ``year`` (months out of 1–12 carry over)."""
    year += (month - 1) // 12
    return date(year, (month - 1) % 12 + 1, 1)


def due_period(schedule: ReportSchedule, now: datetime) -> DuePeriod:
    """The latest run time of ``schedule`` not after ``now`` and the period it exports.

    Run times are ``schedule.day`` at ``schedule.time`` (Vietnam time) of every month
    (previous_month), of January, April, July and October (previous_quarter) or of January
    (previous_year); the period is the month, quarter or year before the run's.
    """
    step = _MONTHS[schedule.period]
    local = now.astimezone(VN_TZ)
    hour, minute = (int(part) for part in schedule.time.split(":"))
    month = local.month - (local.month - 1) % step  # the current run month of the cycle
    while True:
        start = _month_start(local.year, month)
        due_at = datetime.combine(start.replace(day=schedule.day), time(hour, minute), VN_TZ)
        if due_at <= local:
            break
        month -= step
    first = _month_start(start.year, start.month - step)
    if step == 1:
        key = f"{first:%Y-%m}"
    elif step == 3:
        key = f"{first.year}-Q{(first.month - 1) // 3 + 1}"
    else:
        key = f"{first.year}"
    return DuePeriod(due_at=due_at, period=key, window=day_range(period=key))


class ExportRun(BaseModel):
    """A run as the console shows it."""

    schedule: str
    period: str
    state: str
    attempts: int
    claimed_at: datetime
    finished_at: datetime | None
    target: str | None
    size: int | None
    error: str | None


def claim(db: Database, schedule: str, period: str, now: datetime) -> int | None:
    """The run's id if this runner may export ``(schedule, period)``, else ``None``."""
    try:
        with db.transaction() as session:
            row = ReportExportRun(
                schedule=schedule, period=period, state="running", attempts=1, claimed_at=now
            )
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        pass
    t = ReportExportRun
    takeover = (
        update(t)
        .where(
            t.schedule == schedule,
            t.period == period,
            or_(
                and_(t.state == "failed", t.attempts < MAX_ATTEMPTS),
                and_(t.state == "running", t.claimed_at < now - STALE_AFTER),
            ),
        )
        .values(state="running", attempts=t.attempts + 1, claimed_at=now, error=None)
        .returning(t.id)
    )
    with db.transaction() as session:
        return session.execute(takeover).scalar_one_or_none()


def render(service: ReportService, settings: Settings, schedule: ReportSchedule, window: DayRange) -> bytes:
    """The report file of ``schedule`` for ``window``, from the report service."""
    head = Letterhead.from_settings(settings.reports)
    if schedule.report == "usage":
        return USAGE_FILES.write(service.usage(window), schedule.format, head)
    return ONTIME_FILES.write(service.ontime(window, GroupBy(schedule.group_by)), schedule.format, head)


def write_atomically(folder: Path, name: str, body: bytes) -> Path:
    """``folder/name`` holding ``body``, never seen half-written: a temporary file in the same
    folder, flushed to disk, renamed over the name (``os.replace``), the folder flushed."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / name
    temporary = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        with temporary.open("xb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return final


def _finish(
    db: Database, run_id: int, schedule: ReportSchedule, due: DuePeriod, body: bytes, now: datetime
) -> str:
    """Deliver ``body`` and mark the run done, with its audit row, in one transaction (the
    outbox message too: enqueued exactly when the run is marked done)."""
    name = f"{schedule.name}-{due.period}.{schedule.format}"
    digest = hashlib.sha256(body).hexdigest()
    written: Path | None = None
    if schedule.folder is not None:
        written = write_atomically(schedule.folder, name, body)
    with db.transaction() as session:
        if schedule.endpoint is not None:
            payload = {
                "schedule": schedule.name,
                "report": schedule.report,
                "period": due.period,
                "from": due.window.first.isoformat(),
                "to": due.window.last.isoformat(),
                "format": schedule.format,
                "file_name": name,
                "content_type": MEDIA_TYPES[schedule.format],
                "size": len(body),
                "sha256": digest,
                "content_base64": base64.b64encode(body).decode("ascii"),
            }
            messages = new_messages(
                [schedule.endpoint],
                kind=MESSAGE_KIND,
                ordering_key=f"report:{schedule.name}",
                payload=payload,
            )
            (message,) = write_messages(session, messages)
            target = f"endpoint:{schedule.endpoint}#{message.seq}"
        else:
            target = f"folder:{written}"
        session.execute(
            update(ReportExportRun)
            .where(ReportExportRun.id == run_id)
            .values(state="done", finished_at=now, target=target, size=len(body), sha256=digest)
        )
        record(
            session,
            actor=ACTOR,
            action="report.export",
            target=f"{schedule.name}/{due.period}",
            details={"outcome": "done", "target": target, "size": len(body), "sha256": digest},
        )
    return target


def _fail(
    db: Database, run_id: int, schedule: ReportSchedule, due: DuePeriod, error: Exception, now: datetime
) -> None:
    text = f"{type(error).__name__}: {error}"[:500]
    with db.transaction() as session:
        session.execute(
            update(ReportExportRun)
            .where(ReportExportRun.id == run_id)
            .values(state="failed", finished_at=now, error=text)
        )
        record(
            session,
            actor=ACTOR,
            action="report.export",
            target=f"{schedule.name}/{due.period}",
            details={"outcome": "failed", "error": text},
        )


@dataclass(frozen=True)
class RunOutcome:
    schedule: str
    period: str
    outcome: str
    """``done``, ``failed`` or ``skipped`` (another runner has it, or it was done)."""
    detail: str = ""


def run_schedules(db: Database, settings: Settings, now: datetime) -> list[RunOutcome]:
    """Export what every schedule owes at ``now`` and nobody has exported yet."""
    service = ReportService(db, settings)
    outcomes = []
    for schedule in settings.reports.schedules:
        due = due_period(schedule, now)
        run_id = claim(db, schedule.name, due.period, now)
        if run_id is None:
            outcomes.append(RunOutcome(schedule.name, due.period, "skipped"))
            continue
        try:
            body = render(service, settings, schedule, due.window)
            target = _finish(db, run_id, schedule, due, body, now)
        except Exception as exc:  # noqa: BLE001 - recorded on the run and audited; retried later
            _fail(db, run_id, schedule, due, exc, now)
            outcomes.append(RunOutcome(schedule.name, due.period, "failed", str(exc)[:200]))
            continue
        outcomes.append(RunOutcome(schedule.name, due.period, "done", target))
    return outcomes


def recent_runs(db: Database, limit: int = 20) -> list[ExportRun]:
    """The latest runs, newest claim first (the console's report page)."""
    t = ReportExportRun
    with db.sessions() as session:
        rows = session.scalars(select(t).order_by(t.claimed_at.desc(), t.id.desc()).limit(limit))
        return [ExportRun.model_validate(row, from_attributes=True) for row in rows]


async def run_periodically(db: Database, settings: Settings, stop: asyncio.Event, interval: float) -> None:
    """:func:`run_schedules` every ``interval`` seconds until ``stop`` (the worker runtime's
    task; several worker processes may run it: each period is still exported once)."""
    while not stop.is_set():
        try:
            for outcome in await asyncio.to_thread(run_schedules, db, settings, now_utc()):
                if outcome.outcome != "skipped":
                    log.info("report export %s %s: %s", outcome.schedule, outcome.period, outcome.outcome)
        except Exception:  # a database outage: logged, tried again at the next interval
            log.exception("scheduled report exports could not run")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
