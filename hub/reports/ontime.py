"""The national on-time rule, written once (docs/reports.md §2).

Two steps, both here:

1. :func:`facts_of` reduces a dossier to the few times the rule needs (:class:`DossierFacts`):
   the receipt, the due date in force (re-dating rule, §2.3), the end of processing and how it
   ended (§2.2), the last supplement round (§2.4). Intake stores them in ``report_dossiers``
   (:mod:`hub.reports.projection`) so reports aggregate in SQL.
2. :func:`classify` puts one dossier in one bucket of a period: the SQL of
   :mod:`hub.reports.query` is the same decision as a ``CASE``, and the tests check that both
   agree on the same data.

The rule: a dossier is on time when ``NgayKetThucXuLy <= NgayHenTra`` (DVCQG indicators,
docs/portal.md §3.9; the on-time share is an indicator of Decision 766/QĐ-TTg's "Bộ chỉ số").
The end of processing is the time of the first status that ends it (3, 7, 8, 9; 10 only when
no 9 came first); while a supplement request is open, its date counts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from hub.reports.calendar import WorkCalendar
from schemas.dossier import Channel, Dossier
from schemas.status import DossierStatus
from schemas.timefmt import VN_TZ


class EndKind(enum.IntEnum):
    """How processing ended (stored as a small integer)."""

    FINISHED = 1
    """9 result ready / 10 returned."""
    REFUSED = 2
    """3 refused at receipt."""
    WITHDRAWN = 3
    """7 withdrawal requested / 8 stopped."""


_END_KIND = {
    DossierStatus.FINISHED: EndKind.FINISHED,
    DossierStatus.RETURNED: EndKind.FINISHED,
    DossierStatus.REFUSED: EndKind.REFUSED,
    DossierStatus.WITHDRAWAL_REQUESTED: EndKind.WITHDRAWN,
    DossierStatus.STOPPED: EndKind.WITHDRAWN,
}


class Bucket(enum.StrEnum):
    """Where a dossier stands at the end of a period; exactly one per dossier in scope."""

    EARLY = "early"
    ON_TIME = "on_time"
    LATE = "late"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    SUPPLEMENT = "supplement"
    WITHIN_DUE = "within_due"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class DossierFacts:
    """What the rule needs of one dossier (one ``report_dossiers`` row)."""

    code: str
    agency_code: str
    procedure_code: str
    procedure_name: str | None
    field_code: str | None
    field_name: str | None
    channel: int
    received_at: datetime
    due_at: datetime | None
    """The due date in force for the statistics (:func:`due_in_force`)."""
    end_at: datetime | None
    end_kind: EndKind | None
    supplement_from: datetime | None
    """Start of the last supplement round (status 5), ``None`` if none."""
    supplement_until: datetime | None
    """When the last round closed (papers in, or any later status); ``None`` while open."""

    @property
    def end_day(self) -> int | None:
        return local_day(self.end_at)

    @property
    def due_day(self) -> int | None:
        return local_day(self.due_at)


def local_day(value: datetime | None) -> int | None:
    """The Vietnam-time calendar date of ``value`` as a day number (``date.toordinal``)."""
    return None if value is None else value.astimezone(VN_TZ).date().toordinal()


def supplement_rounds(dossier: Dossier) -> list[tuple[datetime, datetime | None]]:
    """Periods spent in status 5, from the processing steps in time order (docs/portal.md §2.2:
    a supplement request moves to 5, the papers' arrival back to 2 or 4); a dossier in 5 with no
    step saying when (a full-record upsert) opens at its last supplement record, else at its
    receipt."""
    rounds: list[tuple[datetime, datetime | None]] = []
    opened: datetime | None = None
    for step in sorted(dossier.steps, key=lambda s: s.at):
        if step.status is DossierStatus.SUPPLEMENT_REQUESTED and opened is None:
            opened = step.at
        elif step.status is not DossierStatus.SUPPLEMENT_REQUESTED and opened is not None:
            rounds.append((opened, step.at))
            opened = None
    if opened is None and dossier.status is DossierStatus.SUPPLEMENT_REQUESTED:
        requests = [s.requested_at for s in dossier.supplements if s.new_due_at is None]
        opened = max(requests, default=dossier.received_at)
    if opened is not None:
        rounds.append((opened, None))
    return rounds


def due_in_force(dossier: Dossier, rounds: list[tuple[datetime, datetime | None]]) -> datetime | None:
    """The due date the statistics compare with (docs/reports.md §2.3).

    Re-dating records (``DanhSachHoSoBoSung`` with ``NgayHenTraTruoc``/``NgayHenTraMoi``) are
    taken in time order. The first date set is the appointment itself. A later one counts only
    when recorded no later than the due date then in force (an apology and new date, Mẫu 04,
    sent before the deadline passed) or when a supplement round began no later than that due
    date and before the re-dating (the supplement restarts the clock, Mẫu 02). A re-dating
    recorded after the deadline passed does not erase the lateness.
    """
    records = sorted(
        (s for s in dossier.supplements if s.new_due_at is not None), key=lambda s: s.requested_at
    )
    if not records:
        return dossier.due_at
    due = records[0].old_due_at
    for record in records:
        new = record.new_due_at
        assert new is not None
        if due is None or record.requested_at <= due:
            due = new
            continue
        current = due
        if any(start <= current and start <= record.requested_at for start, _ in rounds):
            due = new
    return due


def end_of_processing(dossier: Dossier) -> tuple[datetime | None, EndKind | None]:
    """When and how processing ended (docs/portal.md §3.9): the first ending status's time
    (``finished_at`` holds it for 3, 7, 8 and 9); ``returned_at`` only without a 9 before it."""
    kind = _END_KIND.get(dossier.status)
    if kind is None:
        return None, None
    ending = [
        step.at
        for step in dossier.steps
        if step.status.ends_processing and step.status is not DossierStatus.RETURNED
    ]
    at = dossier.finished_at or dossier.refused_at or min(ending, default=None) or dossier.returned_at
    if at is None:  # a closed status with no time at all (a bare upsert): its last known time
        at = max((s.at for s in dossier.steps), default=dossier.received_at)
    return at, kind


def facts_of(dossier: Dossier) -> DossierFacts:
    rounds = supplement_rounds(dossier)
    end_at, end_kind = end_of_processing(dossier)
    last = rounds[-1] if rounds else (None, None)
    return DossierFacts(
        code=dossier.code,
        agency_code=dossier.agency_code,
        procedure_code=dossier.procedure_code,
        procedure_name=dossier.procedure_name,
        field_code=dossier.field_code,
        field_name=dossier.field_name,
        channel=int(dossier.channel),
        received_at=dossier.received_at,
        due_at=due_in_force(dossier, rounds),
        end_at=end_at,
        end_kind=end_kind,
        supplement_from=last[0],
        supplement_until=last[1],
    )


@dataclass(frozen=True, slots=True)
class DayRules:
    """How days are counted: the calendar, and the procedures whose time limit is in calendar
    days (every other procedure counts working days, Decree 61/2018's default)."""

    calendar: WorkCalendar
    calendar_day_procedures: frozenset[str] = frozenset()

    def counts_working_days(self, procedure_code: str) -> bool:
        return procedure_code not in self.calendar_day_procedures

    def early(self, procedure_code: str, end_day: int, due_day: int) -> bool:
        """Finished before the due day with at least one day of the procedure's kind left: a
        day after the end day up to the due day that counts (a working day, or any day)."""
        if end_day >= due_day:
            return False
        if not self.counts_working_days(procedure_code):
            return True
        return any(self.calendar.is_working(date.fromordinal(d)) for d in range(end_day + 1, due_day + 1))


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` in time; reports count what stands at ``end`` (or now, if earlier)."""

    start: datetime
    end: datetime


def in_scope(facts: DossierFacts, period: Period) -> bool:
    """Handled in the period: received before its end and not ended before its start."""
    return facts.received_at < period.end and (facts.end_at is None or facts.end_at >= period.start)


def classify(facts: DossierFacts, period: Period, rules: DayRules, now: datetime) -> Bucket:
    """The bucket of a dossier in scope of ``period`` (docs/reports.md §2)."""
    if facts.end_at is not None and facts.end_at < period.end:
        if facts.end_kind is EndKind.REFUSED:
            return Bucket.REFUSED
        if facts.end_kind is EndKind.WITHDRAWN:
            return Bucket.WITHDRAWN
        if facts.due_at is not None and facts.end_at > facts.due_at:
            return Bucket.LATE
        end, due = facts.end_day, facts.due_day
        if end is not None and due is not None and rules.early(facts.procedure_code, end, due):
            return Bucket.EARLY
        return Bucket.ON_TIME
    if (
        facts.supplement_from is not None
        and facts.supplement_from < period.end
        and (facts.supplement_until is None or facts.supplement_until >= period.end)
    ):
        return Bucket.SUPPLEMENT
    as_of = min(period.end, now)
    if facts.due_at is not None and facts.due_at < as_of:
        return Bucket.OVERDUE
    return Bucket.WITHIN_DUE


def is_online(facts: DossierFacts) -> bool:
    return facts.channel == Channel.ONLINE
