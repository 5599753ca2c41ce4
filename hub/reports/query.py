"""The on-time report as one SQL aggregate over ``report_dossiers`` (docs/reports.md §2, §5).

Each dossier in scope gets its bucket from one ``CASE`` that states :func:`hub.reports.ontime.
classify` in SQL (the tests run both over the same data and compare); the outer query counts the
buckets per group with ``SUM(CASE …)``. SQLAlchemy Core, the same statement on SQLite and
PostgreSQL. Working days enter as the non-working days around the period (from the configured
calendar): an ``IN`` list, and ``WITH days_off(day, run_start) AS (VALUES …)`` for the due
days that are off.
"""

from __future__ import annotations

import enum
import re
from calendar import monthrange
from datetime import date, datetime, time, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    and_,
    case,
    column,
    func,
    literal,
    or_,
    select,
    values,
)

from hub.reports.models import ReportDossier
from hub.reports.ontime import Bucket, DayRules, EndKind, Period
from schemas.dossier import Channel
from schemas.errors import InvalidInputError
from schemas.timefmt import VN_TZ

#: Longest report range accepted (a multi-year comparison, not an unbounded scan).
MAX_REPORT_DAYS = 366 * 5

#: Vietnamese names of the channels (``KenhThucHien``, docs/portal.md §3.6).
CHANNEL_LABELS = {
    Channel.IN_PERSON: "Trực tiếp",
    Channel.ONLINE: "Trực tuyến",
    Channel.POSTAL: "Bưu chính công ích",
}


class GroupBy(enum.StrEnum):
    PROCEDURE = "procedure"
    FIELD = "field"
    UNIT = "unit"
    CHANNEL = "channel"


class DayRange(BaseModel):
    """Inclusive calendar days, Vietnam time."""

    first: date
    last: date

    def period(self) -> Period:
        start = datetime.combine(self.first, time(), VN_TZ)
        end = datetime.combine(self.last + timedelta(days=1), time(), VN_TZ)
        return Period(start=start, end=end)


_PERIOD_RE = re.compile(r"^(?P<year>[0-9]{4})(?:-(?:Q(?P<quarter>[1-4])|(?P<month>0[1-9]|1[0-2])))?$")


def _invalid_range(message: str, message_vi: str) -> InvalidInputError:
    return InvalidInputError(message, message_vi=message_vi, details={"field": "period"})


def day_range(first: date | None = None, last: date | None = None, period: str | None = None) -> DayRange:
    """The report's days: ``first``–``last``, or a ``period`` (``2025``, ``2025-Q2``, ``2025-06``)."""
    if period is not None:
        if first is not None or last is not None:
            raise _invalid_range(
                "give either a period or from/to dates, not both",
                "chỉ chọn kỳ báo cáo hoặc khoảng ngày, không chọn cả hai",
            )
        match = _PERIOD_RE.match(period.strip().upper())
        if match is None:
            raise _invalid_range(
                f"invalid period {period!r}: expected YYYY, YYYY-Qn or YYYY-MM",
                f"kỳ báo cáo {period!r} không hợp lệ: dùng YYYY, YYYY-Qn hoặc YYYY-MM",
            )
        year = int(match["year"])
        if match["quarter"]:
            month = 3 * int(match["quarter"]) - 2
            first, last = date(year, month, 1), date(year, month + 2, monthrange(year, month + 2)[1])
        elif match["month"]:
            month = int(match["month"])
            first, last = date(year, month, 1), date(year, month, monthrange(year, month)[1])
        else:
            first, last = date(year, 1, 1), date(year, 12, 31)
    if first is None or last is None:
        raise _invalid_range(
            "a report needs a period or both from and to dates",
            "báo cáo cần kỳ báo cáo hoặc ngày bắt đầu và ngày kết thúc",
        )
    if last < first:
        raise _invalid_range("the to date is before the from date", "ngày kết thúc trước ngày bắt đầu")
    if (last - first).days >= MAX_REPORT_DAYS or not (first.year >= 2000 and last.year <= 2099):
        raise _invalid_range(
            f"a report covers at most {MAX_REPORT_DAYS} days between 2000 and 2099",
            f"báo cáo tối đa {MAX_REPORT_DAYS} ngày, trong các năm 2000–2099",
        )
    return DayRange(first=first, last=last)


class ReportFilter(BaseModel):
    """Which dossiers a report counts: one procedure, field, receiving unit or channel (each
    optional; all given must match)."""

    procedure: str | None = Field(default=None, max_length=40)
    field: str | None = Field(default=None, max_length=100)
    unit: str | None = Field(default=None, max_length=40)
    channel: Channel | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        r = ReportDossier.__table__.c
        found: list[ColumnElement[bool]] = []
        if self.procedure:
            found.append(r.procedure_code == self.procedure)
        if self.field:
            found.append(r.field_code == self.field)
        if self.unit:
            found.append(r.agency_code == self.unit)
        if self.channel is not None:
            found.append(r.channel == int(self.channel))
        return found


class ReportRow(BaseModel):
    """One group's counts (docs/reports.md §5 names each column)."""

    key: str
    label: str | None = None
    received: int = 0
    carried_over: int = 0
    new: int = 0
    new_online: int = 0
    finished: int = 0
    early: int = 0
    on_time: int = 0
    late: int = 0
    in_progress: int = 0
    within_due: int = 0
    overdue: int = 0
    supplement: int = 0
    withdrawn: int = 0
    refused: int = 0
    on_time_share: float | None = None
    """(early + on time) / finished; ``None`` when nothing finished."""
    online_share: float | None = None
    """new online / new; ``None`` when nothing new."""

    def with_shares(self) -> ReportRow:
        self.finished = self.early + self.on_time + self.late
        self.in_progress = self.within_due + self.overdue
        self.on_time_share = _share(self.early + self.on_time, self.finished)
        self.online_share = _share(self.new_online, self.new)
        return self


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


#: The bucket counters of a row, in :class:`Bucket` order.
BUCKET_FIELDS = {bucket: bucket.value for bucket in Bucket}
COUNT_FIELDS = ["received", "carried_over", "new", "new_online", *BUCKET_FIELDS.values()]


class Report(BaseModel):
    first: date = Field(serialization_alias="from")
    last: date = Field(serialization_alias="to")
    group_by: GroupBy
    as_of: datetime
    """Statuses stand as at the period's end, or now when that is earlier."""
    rule: str = "docs/reports.md §2 (NgayKetThucXuLy <= NgayHenTra, docs/portal.md §3.9)"
    rows: list[ReportRow]
    total: ReportRow


def _off_runs(rules: DayRules, window: DayRange) -> list[tuple[int, int]]:
    """Each non-working day around ``window`` with the first day of its run of days off.

    All days after a finished dossier's end day up to its due day are off exactly when the due
    day is off and its run starts no later than the day after the end day. A finished dossier's
    end day lies in the window; a due day more than a month past the window has working days
    before it (no run of days off is that long), so only these days matter.
    """
    days = [
        d.toordinal()
        for d in rules.calendar.days_off(window.first - timedelta(days=1), window.last + timedelta(days=31))
    ]
    runs: list[tuple[int, int]] = []
    for day in days:
        start = runs[-1][1] if runs and runs[-1][0] == day - 1 else day
        runs.append((day, start))
    return runs


def _bucket(period: Period, rules: DayRules, as_of: datetime, window: DayRange) -> ColumnElement[str]:
    """:func:`hub.reports.ontime.classify` as a ``CASE``."""
    r = ReportDossier.__table__.c
    ended = and_(r.end_at.is_not(None), r.end_at < period.end)
    runs = _off_runs(rules, window) or [(0, 0)]
    off = values(column("day", Integer), column("run_start", Integer), name="days_off").data(runs).cte()
    # The start of the run of days off holding the due day, looked up only when the due day is
    # off (the IN list is a cheap test: most due days are working days).
    off_run = select(off.c.run_start).where(off.c.day == r.due_day).scalar_subquery()
    early = and_(
        r.end_day < r.due_day,
        or_(r.due_day.not_in([day for day, _start in runs]), off_run > r.end_day + 1),
    )
    if rules.calendar_day_procedures:
        early = and_(
            r.end_day < r.due_day, or_(r.procedure_code.in_(sorted(rules.calendar_day_procedures)), early)
        )
    supplement_open = and_(
        r.supplement_from.is_not(None),
        r.supplement_from < period.end,
        or_(r.supplement_until.is_(None), r.supplement_until >= period.end),
    )
    return case(
        (and_(ended, r.end_kind == int(EndKind.REFUSED)), literal(Bucket.REFUSED.value)),
        (and_(ended, r.end_kind == int(EndKind.WITHDRAWN)), literal(Bucket.WITHDRAWN.value)),
        (and_(ended, r.due_at.is_not(None), r.end_at > r.due_at), literal(Bucket.LATE.value)),
        (and_(ended, early), literal(Bucket.EARLY.value)),
        (ended, literal(Bucket.ON_TIME.value)),
        (supplement_open, literal(Bucket.SUPPLEMENT.value)),
        (and_(r.due_at.is_not(None), r.due_at < as_of), literal(Bucket.OVERDUE.value)),
        else_=literal(Bucket.WITHIN_DUE.value),
    )


def _group(group_by: GroupBy) -> tuple[ColumnElement[str], ColumnElement[str | None]]:
    r = ReportDossier.__table__.c
    if group_by is GroupBy.PROCEDURE:
        return r.procedure_code, r.procedure_name
    if group_by is GroupBy.FIELD:
        return func.coalesce(r.field_code, ""), r.field_name
    if group_by is GroupBy.UNIT:
        return r.agency_code, literal(None)
    return func.cast(r.channel, Integer), literal(None)


def ontime_report(
    connection: Connection,
    window: DayRange,
    group_by: GroupBy,
    rules: DayRules,
    now: datetime,
    *,
    agency_code: str | None = None,
    filters: ReportFilter | None = None,
) -> Report:
    """Counts per group for the days of ``window`` (optionally one receiving agency, or the
    dossiers matching ``filters``)."""
    period = window.period()
    as_of = min(period.end, now)
    r = ReportDossier.__table__.c
    key, label = _group(group_by)
    scope = and_(r.received_at < period.end, or_(r.end_at.is_(None), r.end_at >= period.start))
    if agency_code is not None:
        scope = and_(scope, r.agency_code == agency_code)
    if filters is not None:
        scope = and_(scope, *filters.conditions())
    inner = (
        select(
            key.label("key"),
            label.label("label"),
            case((r.received_at < period.start, 1), else_=0).label("carried"),
            case((and_(r.received_at >= period.start, r.channel == int(Channel.ONLINE)), 1), else_=0).label(
                "online"
            ),
            _bucket(period, rules, as_of, window).label("bucket"),
        )
        .where(scope)
        .subquery()
    )
    i = inner.c
    # One row per (group, bucket, carried, online): the CASE runs once per dossier; the few
    # result rows are folded into one row per group here.
    statement = select(
        i.key, func.max(i.label).label("label"), i.bucket, i.carried, i.online, func.count().label("n")
    ).group_by(i.key, i.bucket, i.carried, i.online)
    by_key: dict[str, ReportRow] = {}
    for result in connection.execute(statement):
        key_text = str(result.key)
        row = by_key.setdefault(key_text, ReportRow(key=key_text))
        row.label = row.label or result.label
        row.received += result.n
        row.carried_over += result.n if result.carried else 0
        row.new += 0 if result.carried else result.n
        row.new_online += result.n if result.online else 0
        setattr(row, result.bucket, getattr(row, result.bucket) + result.n)
    rows = [by_key[k].with_shares() for k in sorted(by_key)]
    if group_by is GroupBy.CHANNEL:
        for row in rows:
            row.label = CHANNEL_LABELS.get(Channel(int(row.key)))
    total = ReportRow(
        key="total",
        label="Tổng cộng",
        **{name: sum(getattr(row, name) for row in rows) for name in COUNT_FIELDS},
    ).with_shares()
    return Report(
        first=window.first, last=window.last, group_by=group_by, as_of=as_of, rows=rows, total=total
    )


# --- the console's report page: weekly flow, overdue dossiers, filter choices -----------------


class WeekFlow(BaseModel):
    """Dossiers received (new) and finished (9/10, early, on time or late) in one week of a
    report's days (Monday to Sunday, clipped to the period)."""

    first: date
    last: date
    received: int = 0
    finished: int = 0


def _week_index(value: ColumnElement[datetime], starts: list[datetime]) -> ColumnElement[int]:
    """The index of the week holding ``value`` (``starts[i] <= value < starts[i + 1]``)."""
    return case(
        *((value < start, index - 1) for index, start in enumerate(starts[1:], start=1)),
        else_=len(starts) - 1,
    )


def weekly_flow(
    connection: Connection, window: DayRange, *, filters: ReportFilter | None = None
) -> list[WeekFlow]:
    """Received and finished dossiers per week of ``window``: two ``GROUP BY`` over
    ``report_dossiers`` whose sums are the report's ``new`` and ``finished`` totals."""
    weeks: list[WeekFlow] = []
    day = window.first
    while day <= window.last:
        last = min(day + timedelta(days=6 - day.weekday()), window.last)
        weeks.append(WeekFlow(first=day, last=last))
        day = last + timedelta(days=1)
    starts = [datetime.combine(week.first, time(), VN_TZ) for week in weeks]
    period = window.period()
    r = ReportDossier.__table__.c
    extra = filters.conditions() if filters is not None else []
    received_week = _week_index(r.received_at, starts).label("week")
    received = (
        select(received_week, func.count().label("n"))
        .where(r.received_at >= period.start, r.received_at < period.end, *extra)
        .group_by(received_week)
    )
    for row in connection.execute(received):
        weeks[row.week].received += row.n
    finished_week = _week_index(r.end_at, starts).label("week")
    finished = (
        select(finished_week, func.count().label("n"))
        .where(
            r.end_at >= period.start,
            r.end_at < period.end,
            r.received_at < period.end,
            r.end_kind == int(EndKind.FINISHED),
            *extra,
        )
        .group_by(finished_week)
    )
    for row in connection.execute(finished):
        weeks[row.week].finished += row.n
    return weeks


class OverdueDossier(BaseModel):
    """A dossier in the overdue bucket at the report's end (docs/reports.md §2.2): codes and
    dates only, no personal data."""

    code: str
    agency_code: str
    procedure_code: str
    procedure_name: str | None
    received_at: datetime
    due_at: datetime


def overdue_dossiers(
    connection: Connection,
    window: DayRange,
    rules: DayRules,
    now: datetime,
    *,
    filters: ReportFilter | None = None,
    limit: int = 200,
) -> list[OverdueDossier]:
    """The dossiers :func:`ontime_report` counts as overdue, the longest overdue first."""
    period = window.period()
    as_of = min(period.end, now)
    r = ReportDossier.__table__.c
    bucket = _bucket(period, rules, as_of, window)
    statement = (
        select(r.code, r.agency_code, r.procedure_code, r.procedure_name, r.received_at, r.due_at)
        .where(
            r.received_at < period.end,
            or_(r.end_at.is_(None), r.end_at >= period.start),
            bucket == Bucket.OVERDUE.value,
            *(filters.conditions() if filters is not None else []),
        )
        .order_by(r.due_at, r.code)
        .limit(limit)
    )
    return [OverdueDossier.model_validate(row, from_attributes=True) for row in connection.execute(statement)]


class FilterChoices(BaseModel):
    """The values the report filters offer: ``(code, name)`` pairs found in ``report_dossiers``."""

    procedures: list[tuple[str, str | None]]
    fields: list[tuple[str, str | None]]
    units: list[str]


def filter_choices(connection: Connection, limit: int = 500) -> FilterChoices:
    r = ReportDossier.__table__.c
    procedures = connection.execute(
        select(r.procedure_code, func.max(r.procedure_name))
        .group_by(r.procedure_code)
        .order_by(r.procedure_code)
        .limit(limit)
    )
    fields = connection.execute(
        select(r.field_code, func.max(r.field_name))
        .where(r.field_code.is_not(None))
        .group_by(r.field_code)
        .order_by(r.field_code)
        .limit(limit)
    )
    units = connection.execute(select(r.agency_code).distinct().order_by(r.agency_code).limit(limit))
    return FilterChoices(
        procedures=[(code, name) for code, name in procedures],
        fields=[(code, name) for code, name in fields],
        units=[code for (code,) in units],
    )
