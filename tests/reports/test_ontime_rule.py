"""The on-time rule, case by case (docs/reports.md §2): one dossier, one period, one bucket."""

from __future__ import annotations

from datetime import datetime

import pytest

from hub.reports.calendar import CalendarData, WorkCalendar
from hub.reports.ontime import Bucket, DayRules, Period, classify, facts_of, in_scope
from schemas.dossier import Dossier
from schemas.status import DossierStatus as S
from tests.reports.support import at, dossier

MARCH = Period(start=at("2025-03-01", 0), end=at("2025-04-01", 0))
JANUARY = Period(start=at("2025-01-01", 0), end=at("2025-02-01", 0))
LATER = at("2025-06-01")
CALENDAR = WorkCalendar.load()
WORKING = DayRules(CALENDAR)
CALENDAR_DAYS = DayRules(CALENDAR, frozenset({"1.003901.H42"}))
#: A calendar that knows the fixed holidays but not the lunar ones of 2025.
NO_TET = DayRules(WorkCalendar.from_data(CalendarData(fixed=[{"month": 1, "day": 1}])))  # type: ignore[list-item]

R = at("2025-03-03", 8)  # Monday
DUE = at("2025-03-10", 17)  # Monday after


def done(*steps: tuple[S, datetime], due: datetime | None = DUE, **kw: object) -> Dossier:
    return dossier(1, R, due, [(S.PROCESSING, at("2025-03-03", 10)), *steps], **kw)  # type: ignore[arg-type]


CASES: list[tuple[str, Dossier, Bucket, Period, DayRules, datetime]] = [
    (
        "finished days before the due day",
        done((S.FINISHED, at("2025-03-06"))),
        Bucket.EARLY,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "finished on the due day before the hour",
        done((S.FINISHED, at("2025-03-10", 10))),
        Bucket.ON_TIME,
        MARCH,
        WORKING,
        LATER,
    ),
    ("finished exactly at the due time (<=)", done((S.FINISHED, DUE)), Bucket.ON_TIME, MARCH, WORKING, LATER),
    (
        "finished after the due time",
        done((S.FINISHED, at("2025-03-10", 17, 1))),
        Bucket.LATE,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "finished (9) on time and returned (10) late: 9 counts",
        done((S.FINISHED, at("2025-03-10", 10)), (S.RETURNED, at("2025-03-12"))),
        Bucket.ON_TIME,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "finished (9) late and returned (10): late",
        done((S.FINISHED, at("2025-03-11")), (S.RETURNED, at("2025-03-12"))),
        Bucket.LATE,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "outstanding supplement past the due date: paused, not overdue",
        done((S.SUPPLEMENT_REQUESTED, at("2025-03-05"))),
        Bucket.SUPPLEMENT,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "supplement answered without a new date: the old date stands, overdue",
        done((S.SUPPLEMENT_REQUESTED, at("2025-03-05")), (S.PROCESSING, at("2025-03-20"))),
        Bucket.OVERDUE,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "supplement requested in time, answered after the due date, re-dated at the answer",
        done(
            (S.SUPPLEMENT_REQUESTED, at("2025-03-05")),
            (S.PROCESSING, at("2025-03-12")),
            (S.FINISHED, at("2025-03-25", 10)),
            redates=[(at("2025-03-12"), DUE, at("2025-03-25", 17))],
        ),
        Bucket.ON_TIME,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "supplement requested after the due date: its re-dating does not erase the lateness",
        done(
            (S.SUPPLEMENT_REQUESTED, at("2025-03-11")),
            (S.PROCESSING, at("2025-03-12")),
            (S.FINISHED, at("2025-03-14")),
            redates=[(at("2025-03-12"), DUE, at("2025-03-25", 17))],
        ),
        Bucket.LATE,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "re-dated with an apology before the due date: the new date counts",
        done((S.FINISHED, at("2025-03-20", 10)), redates=[(at("2025-03-09"), DUE, at("2025-03-20", 17))]),
        Bucket.ON_TIME,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "re-dated with an apology after the due date passed: the missed date counts",
        done((S.FINISHED, at("2025-03-20", 10)), redates=[(at("2025-03-11"), DUE, at("2025-03-20", 17))]),
        Bucket.LATE,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "re-dated in time twice: the last date counts",
        done(
            (S.FINISHED, at("2025-03-27", 10)),
            redates=[
                (at("2025-03-09"), DUE, at("2025-03-20", 17)),
                (at("2025-03-19"), at("2025-03-20", 17), at("2025-03-27", 17)),
            ],
        ),
        Bucket.ON_TIME,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "refused at receipt",
        dossier(1, R, DUE, [(S.REFUSED, at("2025-03-03", 11))]),
        Bucket.REFUSED,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "withdrawn then stopped",
        done((S.WITHDRAWAL_REQUESTED, at("2025-03-04")), (S.STOPPED, at("2025-03-05"))),
        Bucket.WITHDRAWN,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "in progress, due after the period",
        done(due=at("2025-04-10", 17)),
        Bucket.WITHIN_DUE,
        MARCH,
        WORKING,
        LATER,
    ),
    ("in progress past the due date", done(), Bucket.OVERDUE, MARCH, WORKING, LATER),
    ("in progress, no due date", done(due=None), Bucket.WITHIN_DUE, MARCH, WORKING, LATER),
    (
        "finished, no due date",
        done((S.FINISHED, at("2025-03-20")), due=None),
        Bucket.ON_TIME,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "finished after the period end: in progress (overdue) at the period end",
        done((S.FINISHED, at("2025-04-05"))),
        Bucket.OVERDUE,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "period not over yet: overdue is judged now",
        done(due=at("2025-03-20", 17)),
        Bucket.WITHIN_DUE,
        MARCH,
        WORKING,
        at("2025-03-15", 12),
    ),
    (
        "working days: finished Friday, due Sunday, no working day left: on time",
        done((S.FINISHED, at("2025-03-07")), due=at("2025-03-09", 17)),
        Bucket.ON_TIME,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "calendar days (the procedure says so): finished Friday, due Sunday: early",
        done((S.FINISHED, at("2025-03-07")), due=at("2025-03-09", 17)),
        Bucket.EARLY,
        MARCH,
        CALENDAR_DAYS,
        LATER,
    ),
    (
        "working days: finished Friday, due Monday: one working day left, early",
        done((S.FINISHED, at("2025-03-07")), due=at("2025-03-10", 8)),
        Bucket.EARLY,
        MARCH,
        WORKING,
        LATER,
    ),
    (
        "Tết holidays (configured): finished before, due inside Tết: on time",
        dossier(1, at("2025-01-20"), at("2025-01-31", 17), [(S.FINISHED, at("2025-01-24"))]),
        Bucket.ON_TIME,
        JANUARY,
        WORKING,
        LATER,
    ),
    (
        "the same without Tết in the calendar: early",
        dossier(1, at("2025-01-20"), at("2025-01-31", 17), [(S.FINISHED, at("2025-01-24"))]),
        Bucket.EARLY,
        JANUARY,
        NO_TET,
        LATER,
    ),
]


@pytest.mark.parametrize(
    ("case", "subject", "bucket", "period", "rules", "now"), CASES, ids=[c[0] for c in CASES]
)
def test_bucket(
    case: str, subject: Dossier, bucket: Bucket, period: Period, rules: DayRules, now: datetime
) -> None:
    facts = facts_of(subject)
    assert in_scope(facts, period)
    assert classify(facts, period, rules, now) is bucket


def test_scope_received_after_or_ended_before_the_period() -> None:
    assert not in_scope(facts_of(dossier(1, at("2025-04-01", 0), None)), MARCH)
    ended = dossier(1, at("2025-02-03"), at("2025-02-10"), [(S.FINISHED, at("2025-02-28", 23, 59))])
    assert not in_scope(facts_of(ended), MARCH)
    carried = dossier(1, at("2025-02-03"), at("2025-02-10"), [(S.FINISHED, at("2025-03-01", 0))])
    assert in_scope(facts_of(carried), MARCH)


def test_fixed_holiday_on_a_weekend_moves_to_the_next_working_day() -> None:
    # 01/05/2027 is a Saturday: Monday 03/05/2027 is off (Labour Code 2019 Art. 111(3)).
    assert not CALENDAR.is_working(at("2027-05-03").date())
    assert CALENDAR.is_working(at("2027-05-04").date())


def test_swapped_saturday_is_a_working_day() -> None:
    assert CALENDAR.is_working(at("2025-04-26").date())
    assert not CALENDAR.is_working(at("2025-05-02").date())
