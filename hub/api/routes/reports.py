"""Reports (``/api/v1/reports``).

* ``GET /reports/ontime``: on-time statistics, JSON for the provincial dashboards, CSV and XLSX
  and PDF downloads. Counts only, no personal data (docs/reports.md §5); the rule is
  :mod:`hub.reports.ontime`, the SQL :mod:`hub.reports.query`.
* ``GET /reports/outages``: when the hub's database was unreachable, the hub was not running, or
  the department's software was down (:mod:`hub.services.outages`), for the usage report and for
  checking a late-entry backlog against the outage it comes from (docs/architecture.md,
  "Late entries").
* ``GET /reports/usage``: the usage report (Decision 692/QĐ-SNN Art. 18): dossiers by channel,
  deliveries per portal, signatures, lookups, downtime (docs/reports.md §8).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime

from hub.api.deps import DatabaseDep, app_service, get_db, get_settings, require_role
from hub.api.errors import error_responses
from hub.auth.keys import Principal
from hub.reports.formats import MEDIA_TYPES, FileFormat
from hub.reports.pdf import Letterhead
from hub.reports.query import DayRange, GroupBy, Report, ReportFilter, day_range
from hub.reports.service import ReportService
from hub.reports.usage import UsageReport
from hub.reports.writers import ONTIME_FILES, USAGE_FILES, ReportWriters
from hub.services.outages import OutageReport, outage_report
from schemas.codes import AgencyCode
from schemas.dossier import Channel
from schemas.timefmt import now_utc

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], responses=error_responses(401, 403, 422))

#: Aggregates without personal data: the people who handle or oversee dossiers, operators, and
#: the provincial dashboards (portal keys); not the department software pushing dossiers.
Reader = Annotated[
    Principal,
    Depends(
        require_role("officer", "clerk", "technician", "portal", note="aggregate counts, no personal data")
    ),
]

T = TypeVar("T")

XLSX = MEDIA_TYPES[FileFormat.XLSX]


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"
    PDF = "pdf"


#: The files a download route answers with (for the OpenAPI document).
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, XLSX: {}, "application/pdf": {}}}
}


def get_reports(request: Request) -> ReportService:
    """The app's report service (built at first use: the calendar file is read once)."""
    return app_service(request, "reports", lambda: ReportService(get_db(request), get_settings(request)))


ReportsDep = Annotated[ReportService, Depends(get_reports)]


def report_days(
    first: Annotated[date | None, Query(alias="from", description="First day (Vietnam time)")] = None,
    last: Annotated[date | None, Query(alias="to", description="Last day, inclusive")] = None,
    period: Annotated[
        str | None, Query(max_length=7, description="Instead of from/to: 2025, 2025-Q2 or 2025-06")
    ] = None,
) -> DayRange:
    """The report's days: ``from``/``to`` or ``period`` (docs/reports.md §2.1); 422 otherwise."""
    return day_range(first, last, period)


ReportDays = Annotated[DayRange, Depends(report_days)]


@router.get(
    "/ontime",
    summary="On-time statistics per procedure, field, unit or channel",
    response_model=Report,
    response_model_by_alias=True,
    responses=FILE_RESPONSES,
)
async def ontime(
    request: Request,
    _principal: Reader,
    reports: ReportsDep,
    window: ReportDays,
    group_by: GroupBy = GroupBy.PROCEDURE,
    agency: Annotated[AgencyCode | None, Query(description="Only this receiving agency")] = None,
    procedure: Annotated[str | None, Query(max_length=40, description="Only this procedure (MaTTHC)")] = None,
    field: Annotated[str | None, Query(max_length=100, description="Only this field (MaLinhVuc)")] = None,
    channel: Annotated[Channel | None, Query(description="Only this channel (KenhThucHien)")] = None,
    format: ReportFormat = ReportFormat.JSON,
) -> Response | Report:
    filters = ReportFilter(procedure=procedure, field=field, channel=channel)
    report = await run_in_threadpool(
        lambda: reports.ontime(window, group_by, agency_code=agency, filters=filters)
    )
    if format is ReportFormat.JSON:
        return report
    name = file_name(f"ontime-{group_by.value}", window, format.value)
    return await download(request, ONTIME_FILES, report, FileFormat(format.value), name)


async def download(
    request: Request, writers: ReportWriters[T], report: T, fmt: FileFormat, name: str
) -> Response:
    """``report`` as a ``fmt`` file named ``name``, written in a worker thread."""
    head = Letterhead.from_settings(get_settings(request).reports)
    body = await run_in_threadpool(writers.write, report, fmt, head)
    return attachment(body, MEDIA_TYPES[fmt], name)


def file_name(kind: str, window: DayRange, fmt: str) -> str:
    """A report file's name: its kind, its first and last day, its format."""
    return f"{kind}-{window.first:%Y%m%d}-{window.last:%Y%m%d}.{fmt}"


def attachment(body: bytes, media: str, name: str) -> Response:
    """A download named ``name`` (``Content-Disposition: attachment``)."""
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


#: The usage report shows the hub's operation (portals, downtime): officers overseeing the
#: unit's work and the operators; not clerks, portals or the department software.
UsageReader = Annotated[
    Principal, Depends(require_role("officer", "technician", note="aggregate counts, no personal data"))
]


@router.get(
    "/usage",
    summary="Usage of the system: dossiers, deliveries, signatures, lookups, downtime",
    response_model=UsageReport,
    response_model_by_alias=True,
    responses=FILE_RESPONSES,
)
async def usage(
    request: Request,
    _principal: UsageReader,
    reports: ReportsDep,
    window: ReportDays,
    format: ReportFormat = ReportFormat.JSON,
) -> Response | UsageReport:
    report = await run_in_threadpool(reports.usage, window)
    if format is ReportFormat.JSON:
        return report
    name = file_name("usage", window, format.value)
    return await download(request, USAGE_FILES, report, FileFormat(format.value), name)


Operator = Annotated[Principal, Depends(require_role("technician", "admin"))]

#: The period reported when ``from`` is not given.
DEFAULT_PERIOD = timedelta(days=30)


@router.get("/outages", summary="Recorded outages of the hub, its database and the department's software")
def outages(
    db: DatabaseDep,
    _principal: Operator,
    from_: Annotated[
        AwareDatetime | None,
        Query(alias="from", description="Start (ISO 8601 with offset); default 30 days ago"),
    ] = None,
    to: Annotated[AwareDatetime | None, Query(description="End (ISO 8601 with offset); default now")] = None,
) -> OutageReport:
    end: datetime = to or now_utc()
    start: datetime = from_ or end - DEFAULT_PERIOD
    return outage_report(db, start, end)
