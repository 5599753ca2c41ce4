"""The report service: the configured day rules, and one read-only transaction per report."""

from __future__ import annotations

from datetime import datetime

from hub.config import Settings
from hub.db.session import Database
from hub.reports.calendar import WorkCalendar
from hub.reports.ontime import DayRules
from hub.reports.query import (
    DayRange,
    FilterChoices,
    GroupBy,
    OverdueDossier,
    Report,
    ReportFilter,
    WeekFlow,
    filter_choices,
    ontime_report,
    overdue_dossiers,
    weekly_flow,
)
from hub.reports.usage import UsageReport, usage_report
from schemas.timefmt import now_utc


def day_rules(settings: Settings) -> DayRules:
    """The calendar and calendar-day procedures of ``[reports]`` (docs/reports.md §4)."""
    return DayRules(
        calendar=WorkCalendar.load(settings.reports.calendar_file),
        calendar_day_procedures=frozenset(settings.reports.calendar_day_procedures),
    )


class ReportService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._rules = day_rules(settings)

    @property
    def rules(self) -> DayRules:
        return self._rules

    def ontime(
        self,
        window: DayRange,
        group_by: GroupBy,
        *,
        agency_code: str | None = None,
        filters: ReportFilter | None = None,
        now: datetime | None = None,
    ) -> Report:
        with self._db.sessions() as session:
            return ontime_report(
                session.connection(),
                window,
                group_by,
                self._rules,
                now or now_utc(),
                agency_code=agency_code,
                filters=filters,
            )

    def weekly(self, window: DayRange, *, filters: ReportFilter | None = None) -> list[WeekFlow]:
        """Received and finished per week (the console's chart, docs/reports.md §9)."""
        with self._db.sessions() as session:
            return weekly_flow(session.connection(), window, filters=filters)

    def overdue(
        self,
        window: DayRange,
        *,
        filters: ReportFilter | None = None,
        now: datetime | None = None,
        limit: int = 200,
    ) -> list[OverdueDossier]:
        """The dossiers the report counts as overdue (docs/reports.md §2.2)."""
        with self._db.sessions() as session:
            return overdue_dossiers(
                session.connection(), window, self._rules, now or now_utc(), filters=filters, limit=limit
            )

    def choices(self) -> FilterChoices:
        with self._db.sessions() as session:
            return filter_choices(session.connection())

    def usage(self, window: DayRange, *, now: datetime | None = None) -> UsageReport:
        """The usage report (docs/reports.md §8)."""
        return usage_report(self._db, window, now or now_utc())
