"""The SQL aggregate agrees with the per-dossier rule, on both backends (docs/reports.md §5)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import insert, select

from hub.db.models import DossierRow
from hub.db.session import Database
from hub.reports.models import ReportDossier
from hub.reports.ontime import Bucket, DayRules, classify, facts_of, in_scope, is_online
from hub.reports.projection import rebuild
from hub.reports.query import GroupBy, ReportRow, day_range, ontime_report
from schemas.dossier import Dossier
from tests.reports.support import dossier_rows, generate
from tests.reports.test_ontime_rule import CALENDAR, CALENDAR_DAYS, CASES, NO_TET, WORKING

NOW = datetime.fromisoformat("2025-11-20T10:00:00+07:00")


def _dataset() -> list[Dossier]:
    crafted = []
    for index, (_name, subject, *_rest) in enumerate(CASES):
        copy = subject.model_copy(deep=True)
        copy.code = f"000.00.99.H42-{subject.received_at:%y%m%d}-{index + 1:04d}"
        copy.agency_code = "000.00.99.H42"
        crafted.append(copy)
    return crafted + generate(700, 2025, seed=7)


def _store(db: Database, dossiers: list[Dossier]) -> None:
    with db.transaction() as session:
        session.execute(
            insert(DossierRow),
            dossier_rows(dossiers),
        )
        assert rebuild(session.connection(), batch=256) == len(dossiers)


def _expected(
    dossiers: list[Dossier], period_text: str, group_by: GroupBy, rules: DayRules
) -> dict[str, Counter[str]]:
    period = day_range(period=period_text).period()
    out: dict[str, Counter[str]] = {}
    for d in dossiers:
        facts = facts_of(d)
        if not in_scope(facts, period):
            continue
        key = {
            GroupBy.PROCEDURE: facts.procedure_code,
            GroupBy.FIELD: facts.field_code or "",
            GroupBy.UNIT: facts.agency_code,
            GroupBy.CHANNEL: str(facts.channel),
        }[group_by]
        counts = out.setdefault(key, Counter())
        counts["received"] += 1
        counts["carried_over" if facts.received_at < period.start else "new"] += 1
        counts["new_online"] += int(facts.received_at >= period.start and is_online(facts))
        counts[classify(facts, period, rules, NOW).value] += 1
    return out


def _counts(row: ReportRow) -> Counter[str]:
    fields = ["received", "carried_over", "new", "new_online", *(bucket.value for bucket in Bucket)]
    return Counter({name: getattr(row, name) for name in fields if getattr(row, name)})


def test_sql_counts_equal_the_rule_per_dossier(db: Database) -> None:
    dossiers = _dataset()
    _store(db, dossiers)
    checked = 0
    for rules in (WORKING, CALENDAR_DAYS, NO_TET):
        for period_text in ("2025-01", "2025-03", "2025-Q1", "2025-Q4", "2025"):
            for group_by in GroupBy:
                expected = _expected(dossiers, period_text, group_by, rules)
                with db.sessions() as session:
                    report = ontime_report(
                        session.connection(), day_range(period=period_text), group_by, rules, NOW
                    )
                got = {row.key: _counts(row) for row in report.rows}
                assert got == expected, (period_text, group_by, rules)
                total = sum(expected.values(), Counter())
                assert _counts(report.total) == total
                checked += 1
    assert checked == 3 * 5 * 4
    # the crafted cases cover every bucket in March
    with db.sessions() as session:
        march = ontime_report(session.connection(), day_range(period="2025-03"), GroupBy.UNIT, WORKING, NOW)
    crafted = next(row for row in march.rows if row.key == "000.00.99.H42")
    assert all(getattr(crafted, bucket.value) > 0 for bucket in Bucket)


def test_shares_and_labels(db: Database) -> None:
    dossiers = _dataset()
    _store(db, dossiers)
    with db.sessions() as session:
        report = ontime_report(session.connection(), day_range(period="2025"), GroupBy.CHANNEL, WORKING, NOW)
    labels = {row.key: row.label for row in report.rows}
    assert labels == {"1": "Trực tiếp", "2": "Trực tuyến", "3": "Bưu chính công ích"}
    total = report.total
    assert total.finished == total.early + total.on_time + total.late
    assert total.on_time_share == round((total.early + total.on_time) / total.finished, 4)
    assert total.online_share == round(total.new_online / total.new, 4)
    online = next(row for row in report.rows if row.key == "2")
    assert online.online_share == 1.0


@pytest.mark.parametrize("bad", ["2025-13", "25", "2025-Q5", "x"])
def test_bad_period_is_refused(bad: str) -> None:
    from schemas.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        day_range(period=bad)


def test_intake_keeps_the_report_row(db: Database) -> None:
    """A status change through intake updates the dossier's report row in its transaction."""
    from hub.services.intake import IntakeService
    from schemas.changes import DossierUpsert, DueDateChange, StatusChange
    from schemas.status import DossierStatus as S
    from tests.core.test_intake import settings
    from tests.reports.support import at, dossier

    service = IntakeService(db, settings())
    subject = dossier(5, at("2025-03-03", 8), at("2025-03-10", 17))
    service.upsert_dossier(DossierUpsert(dossier=subject), actor="t")
    service.change_status(
        subject.code, StatusChange(status=S.PROCESSING, at=at("2025-03-03", 10), handler="A"), actor="t"
    )
    service.redate(
        subject.code,
        DueDateChange(
            new_due_at=at("2025-03-20", 17), at=at("2025-03-11"), handler="A", reason="Xin lỗi, hẹn lại"
        ),
        actor="t",
    )
    service.change_status(
        subject.code, StatusChange(status=S.FINISHED, at=at("2025-03-19"), handler="A"), actor="t"
    )
    with db.sessions() as session:
        row = session.execute(select(ReportDossier).where(ReportDossier.code == subject.code)).scalar_one()
        report = ontime_report(session.connection(), day_range(period="2025-03"), GroupBy.UNIT, WORKING, NOW)
    assert row.end_at == at("2025-03-19")
    assert row.due_at == at("2025-03-10", 17)  # re-dated after the due date passed: not counted
    assert (report.total.late, report.total.received) == (1, 1)
    assert CALENDAR.is_working(at("2025-03-19").date())
