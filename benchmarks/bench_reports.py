"""On-time report timings on a realistic year of one department (issue 12, docs/reports.md §6).

Generates ``--dossiers`` dossiers received over a year (six procedures in four fields, three
receiving units, 55% online; finished early, on time and late, refused, withdrawn, re-dated,
supplements answered or outstanding, some in progress: ``tests.reports.support.generate``),
stores them with their report rows (the intake projection, written in batches as the
migration's backfill does), and times each report: year, quarter and month, per grouping,
on SQLite and on PostgreSQL.

    PYTHONPATH=. python -m benchmarks.bench_reports --dossiers 30000 [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from hub.db.migrate import upgrade
from hub.db.models import DossierRow
from hub.db.session import Database
from hub.reports.calendar import WorkCalendar
from hub.reports.ontime import DayRules
from hub.reports.projection import rebuild
from hub.reports.query import GroupBy, day_range, ontime_report
from schemas.dossier import Dossier
from tests.reports.support import dossier_rows, generate

PERIODS = ("2025", "2025-Q4", "2025-11")
NOW = datetime(2025, 12, 31, 12, tzinfo=UTC)


def load(db: Database, dossiers: list[Dossier]) -> tuple[float, float]:
    """Insert the dossiers, then build their report rows; seconds for each."""
    started = time.perf_counter()
    rows = dossier_rows(dossiers)
    with db.transaction() as session:
        for start in range(0, len(rows), 2000):
            session.execute(insert(DossierRow), rows[start : start + 2000])
    inserted = time.perf_counter()
    with db.transaction() as session:
        rebuild(session.connection(), batch=2000)
    return inserted - started, time.perf_counter() - inserted


def measure(db: Database, rules: DayRules, repeat: int) -> list[tuple[str, str, int, float]]:
    results = []
    for period in PERIODS:
        window = day_range(period=period)
        for group_by in GroupBy:
            times = []
            for _ in range(repeat):
                with db.sessions() as session:
                    started = time.perf_counter()
                    report = ontime_report(session.connection(), window, group_by, rules, NOW)
                    times.append(time.perf_counter() - started)
            results.append((period, group_by.value, report.total.received, statistics.median(times)))
    return results


def run(name: str, url: str, dossiers: list[Dossier], rules: DayRules, repeat: int) -> None:
    upgrade(url)
    db = Database.connect(url, pool_size=2)
    try:
        insert_s, project_s = load(db, dossiers)
        print(
            f"\n{name}: {len(dossiers)} dossiers inserted in {insert_s:.1f} s, "
            f"report rows built in {project_s:.1f} s"
        )
        print(f"{'period':<9} {'group by':<10} {'dossiers':>9} {'median ms':>10}")
        for period, group_by, count, seconds in measure(db, rules, repeat):
            print(f"{period:<9} {group_by:<10} {count:>9} {seconds * 1000:>10.1f}")
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dossiers", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--pg", default="postgresql://postgres@127.0.0.1:5432/postgres", help="server (admin URL)"
    )
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    dossiers = generate(args.dossiers, 2025, seed=2025)
    print(
        f"generated {len(dossiers)} dossiers with {sum(len(d.steps) for d in dossiers)} steps "
        f"in {time.perf_counter() - started:.1f} s"
    )
    rules = DayRules(WorkCalendar.load())
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", dossiers, rules, args.repeat)
    if args.no_pg:
        return
    name = f"hub_bench_reports_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_url(args.pg).set(drivername="postgresql+psycopg", database=name)
        run("PostgreSQL", url.render_as_string(hide_password=False), dossiers, rules, args.repeat)
    finally:
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
