"""The console's report pages (issue 12; docs/console.md, docs/reports.md §9).

``/console/reports/ontime``: the on-time statistics of a period (a day range, a month, a
quarter or a year) filtered by procedure, field, receiving unit and channel, grouped as asked;
two charts drawn on the server as SVG, each with its figures in a table (received and finished
per week; the on-time share per group); the dossiers overdue at the period's end, linked to the
dossier page; the scheduled exports' last runs; download links for the XLSX, CSV and PDF files
with the same filters. ``/console/reports/usage``: the usage report (docs/reports.md §8).

Every figure comes from :class:`hub.reports.service.ReportService` (SQL aggregates): the page
only lays them out. Bad parameters give the page again with a 422 and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from hub.accounts.sessions import ActiveSession
from hub.api.deps import POLICY_ATTRIBUTE, get_db
from hub.api.routes.reports import download, file_name, get_reports
from hub.console.pages import error_page, lang_of, page, problem_page
from hub.console.policy import ConsolePolicy, console_page
from hub.console.views import DOSSIER_READER
from hub.reports.formats import FileFormat
from hub.reports.query import DayRange, GroupBy, ReportFilter, WeekFlow, day_range
from hub.reports.schedules import recent_runs
from hub.reports.writers import ONTIME_FILES, USAGE_FILES
from schemas.dossier import Channel
from schemas.errors import HubError, InvalidInputError
from schemas.timefmt import VN_TZ, now_utc

router = APIRouter(include_in_schema=False)

#: The on-time statistics: counts and dossier codes, no personal data: the people who handle
#: dossiers (officers, clerks) and the operators; admins pass every check (docs/security.md §10).
REPORT_READER = console_page("officer", "clerk", "technician")
#: The usage report shows the hub's operation (portals, downtime): as its API route, not clerks.
USAGE_READER = console_page("officer", "technician")
Reader = Annotated[ActiveSession, Depends(REPORT_READER)]
UsageReader = Annotated[ActiveSession, Depends(USAGE_READER)]

FILTER_FIELDS = ("period", "from", "to", "group_by", "procedure", "field", "unit", "channel")
#: The usage report's parameters (it is not grouped or filtered).
USAGE_FIELDS = ("period", "from", "to")
#: Overdue dossiers listed on the page (the count is the report's).
OVERDUE_LIMIT = 200

# The charts, in SVG user units (scaled by the browser; the figures are in tables too). The
# weekly chart keeps its width whatever the number of weeks: a year's 53 weeks get thinner bars.
FLOW_WIDTH = 720
CHART_HEIGHT = 160
#: About this many date labels under the weekly chart.
FLOW_LABELS = 12
SHARE_WIDTH = 300
SHARE_ROW = 18


@dataclass(frozen=True)
class WeekBar:
    """One week of the flow chart: received (left bar) and finished (right bar)."""

    x: float
    width: float
    received_y: float
    received_height: float
    finished_y: float
    finished_height: float
    labelled: bool
    week: WeekFlow


def week_bars(weeks: list[WeekFlow]) -> list[WeekBar]:
    """Two bars per week, scaled to the busiest week, in :data:`FLOW_WIDTH` units."""
    peak = max((max(w.received, w.finished) for w in weeks), default=0) or 1
    slot = FLOW_WIDTH / max(len(weeks), 1)
    every = max(1, -(-len(weeks) // FLOW_LABELS))
    bars = []
    for index, week in enumerate(weeks):
        received = CHART_HEIGHT * week.received / peak
        finished = CHART_HEIGHT * week.finished / peak
        bars.append(
            WeekBar(
                x=index * slot + slot * 0.1,
                width=slot * 0.4,
                received_y=CHART_HEIGHT - received,
                received_height=received,
                finished_y=CHART_HEIGHT - finished,
                finished_height=finished,
                labelled=index % every == 0,
                week=week,
            )
        )
    return bars


@dataclass(frozen=True)
class Query:
    """The page's parameters, checked: the days, the grouping, the filters."""

    window: DayRange
    group_by: GroupBy
    filters: ReportFilter
    fields: dict[str, str]
    """The parameters as given (for the form and the download links)."""


def _fields(request: Request) -> dict[str, str]:
    params = request.query_params
    return {name: params.get(name, "").strip()[:100] for name in FILTER_FIELDS}


def _date(text: str, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInputError(
            f"{name}: not a date (YYYY-MM-DD): {text[:20]!r}",
            message_vi=f"{name}: không phải ngày (YYYY-MM-DD): {text[:20]!r}",
            details={"field": name},
        ) from exc


def this_month() -> str:
    return f"{now_utc().astimezone(VN_TZ):%Y-%m}"


def _window(fields: dict[str, str], default_period: str) -> DayRange:
    """The days asked for: ``from``/``to``, else ``period``, else ``default_period``."""
    first, last = _date(fields["from"], "from"), _date(fields["to"], "to")
    period = fields["period"] or (None if first or last else default_period)
    return day_range(first, last, period)


def _export_format(request: Request) -> FileFormat:
    """The download's ``format`` parameter (default xlsx); an unknown one is a 422."""
    fmt = request.query_params.get("format", FileFormat.XLSX)
    try:
        return FileFormat(fmt)
    except ValueError:
        raise InvalidInputError(
            f"unknown format {fmt[:10]!r}: xlsx, csv or pdf",
            message_vi=f"định dạng {fmt[:10]!r} không hợp lệ: xlsx, csv hoặc pdf",
            details={"field": "format"},
        ) from None


def parse_query(fields: dict[str, str], *, default_period: str) -> Query:
    """The checked parameters; :class:`InvalidInputError` (422) names the bad one."""
    window = _window(fields, default_period)
    try:
        group_by = GroupBy(fields["group_by"] or GroupBy.PROCEDURE.value)
    except ValueError as exc:
        raise InvalidInputError(
            f"unknown grouping {fields['group_by']!r}",
            message_vi=f"cách nhóm {fields['group_by']!r} không hợp lệ",
            details={"field": "group_by"},
        ) from exc
    try:
        channel = Channel(int(fields["channel"])) if fields["channel"] else None
        filters = ReportFilter(
            procedure=fields["procedure"] or None,
            field=fields["field"] or None,
            unit=fields["unit"] or None,
            channel=channel,
        )
    except (ValueError, ValidationError) as exc:
        raise InvalidInputError(
            f"invalid filter: {str(exc)[:200]}", message_vi="Bộ lọc không hợp lệ", details={"field": "filter"}
        ) from exc
    return Query(window=window, group_by=group_by, filters=filters, fields=fields)


def _share_rows(rows: list[Any]) -> list[dict[str, Any]]:
    """The on-time share chart: one horizontal bar per group that finished something."""
    shown = [row for row in rows if row.on_time_share is not None]
    return [
        {"y": index * SHARE_ROW, "width": SHARE_WIDTH * row.on_time_share, "row": row}
        for index, row in enumerate(shown)
    ]


def _percent(value: float | None, lang: str = "vi") -> str:
    """A share as a percentage; Vietnamese writes the decimal comma (as the report's PDF does)."""
    if value is None:
        return "—"
    text = f"{100 * value:.1f} %"
    return text.replace(".", ",") if lang == "vi" else text


def _day(value: datetime) -> str:
    return value.astimezone(VN_TZ).strftime("%Y-%m-%d")


def _downloads(path: str, fields: Mapping[str, str], lang: str) -> list[tuple[str, str]]:
    """``(format, link)`` of the page's downloads, in :class:`FileFormat` order: the parameters
    given, the page's language."""
    kept = {name: value for name, value in fields.items() if value}
    if lang == "en":
        kept["lang"] = "en"
    return [(fmt, f"{path}?{urlencode({**kept, 'format': fmt})}") for fmt in FileFormat]


@router.get("/console/reports/ontime", name="console.reports_ontime")
async def ontime_page(request: Request, active: Reader) -> HTMLResponse:
    reports = get_reports(request)
    fields = _fields(request)
    lang = lang_of(request)
    choices = await run_in_threadpool(reports.choices)
    context: dict[str, Any] = {
        "fields": fields,
        "choices": choices,
        "group_choices": [g.value for g in GroupBy],
        "channels": [(int(c), c.name.lower()) for c in Channel],
        "percent": lambda value: _percent(value, lang),
        "day": _day,
        "runs": await run_in_threadpool(recent_runs, get_db(request)),
    }
    try:
        query = parse_query(fields, default_period=this_month())
    except HubError as exc:
        return error_page(request, "reports_ontime.html", exc, active=active, report=None, **context)
    if not fields["period"] and not fields["from"]:
        fields["period"] = this_month()
    now = now_utc()
    report = await run_in_threadpool(
        lambda: reports.ontime(query.window, query.group_by, filters=query.filters, now=now)
    )
    weeks = await run_in_threadpool(lambda: reports.weekly(query.window, filters=query.filters))
    overdue = await run_in_threadpool(
        lambda: reports.overdue(query.window, filters=query.filters, now=now, limit=OVERDUE_LIMIT)
    )
    shares = _share_rows(report.rows)
    return page(
        request,
        "reports_ontime.html",
        active=active,
        report=report,
        bars=week_bars(weeks),
        chart_width=FLOW_WIDTH,
        chart_height=CHART_HEIGHT,
        shares=shares,
        share_width=SHARE_WIDTH,
        share_height=max(SHARE_ROW * len(shares), SHARE_ROW),
        overdue=overdue,
        overdue_limit=OVERDUE_LIMIT,
        dossier_links=_may_open_dossiers(active),
        downloads=_downloads("/console/reports/ontime/export", query.fields, lang),
        **context,
    )


def _may_open_dossiers(active: ActiveSession) -> bool:
    """Whether the overdue list links to the dossier page: the roles that page declares."""
    policy = getattr(DOSSIER_READER, POLICY_ATTRIBUTE, None)
    return isinstance(policy, ConsolePolicy) and policy.allows(active.account.roles)


@router.get("/console/reports/ontime/export", name="console.reports_ontime_export")
async def ontime_export(request: Request, active: Reader) -> Response:
    fields = _fields(request)
    try:
        fmt = _export_format(request)
        query = parse_query(fields, default_period=this_month())
    except HubError as exc:
        return problem_page(
            request, active, exc, back="/console/reports/ontime", back_label="page.console.reports_ontime"
        )
    reports = get_reports(request)
    report = await run_in_threadpool(
        lambda: reports.ontime(query.window, query.group_by, filters=query.filters)
    )
    name = file_name(f"ontime-{query.group_by.value}", query.window, fmt)
    return await download(request, ONTIME_FILES, report, fmt, name)


def _usage_window(request: Request) -> DayRange:
    return _window(_fields(request), this_month())


@router.get("/console/reports/usage", name="console.reports_usage")
async def usage_page(request: Request, active: UsageReader) -> HTMLResponse:
    fields = _fields(request)
    lang = "en" if request.query_params.get("lang") == "en" else "vi"
    try:
        window = _usage_window(request)
    except HubError as exc:
        return error_page(request, "reports_usage.html", exc, active=active, report=None, fields=fields)
    if not fields["period"] and not fields["from"]:
        fields["period"] = this_month()
    report = await run_in_threadpool(get_reports(request).usage, window)
    given = {name: fields[name] for name in USAGE_FIELDS}
    return page(
        request,
        "reports_usage.html",
        active=active,
        report=report,
        fields=fields,
        downloads=_downloads("/console/reports/usage/export", given, lang),
        duration=_duration,
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return str(timedelta(seconds=round(seconds)))


@router.get("/console/reports/usage/export", name="console.reports_usage_export")
async def usage_export_file(request: Request, active: UsageReader) -> Response:
    try:
        fmt = _export_format(request)
        window = _usage_window(request)
    except HubError as exc:
        return problem_page(
            request, active, exc, back="/console/reports/usage", back_label="page.console.reports_usage"
        )
    report = await run_in_threadpool(get_reports(request).usage, window)
    return await download(request, USAGE_FILES, report, fmt, file_name("usage", window, fmt))
