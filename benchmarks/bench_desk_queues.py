"""How long do the officer's desk and the clerk's queue take with many result papers?
(docs/signing.md §14.2)

Fills a fresh migrated database with ``--papers`` result papers (stored file + ``result_papers``
row; 10 % drafts spread over 20 officers and unassigned, 10 % approved, the rest issued) and
times :meth:`hub.services.result_papers.ResultPapers.waiting_for` (page 1 and a late page) and
:meth:`~hub.services.result_papers.ResultPapers.waiting_for_clerk`; prints the query plan of
the desk's page on SQLite.

Usage::

    .venv/bin/python -m benchmarks.bench_desk_queues                    # SQLite, 100000 papers
    .venv/bin/python -m benchmarks.bench_desk_queues --papers 20000 -n 50
    .venv/bin/python -m benchmarks.bench_desk_queues --db postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, text

from hub.db.base import utcnow
from hub.db.migrate import upgrade
from hub.db.models import PaperState, ResultPaperRow, StoredFile
from hub.db.session import Database
from hub.services.result_papers import ResultPapers

CODE = "000.00.18.H42-251125-0001"
OFFICERS = 20


def fill(db: Database, papers: int) -> None:
    start = utcnow() - timedelta(days=365)
    files: list[dict[str, object]] = []
    rows: list[dict[str, object]] = []
    for n in range(papers):
        at = start + timedelta(minutes=n)
        draft, approved, issued = f"d{n:08d}", f"a{n:08d}", f"i{n:08d}"
        kind = n % 10
        state = PaperState.DRAFT if kind == 0 else PaperState.APPROVED if kind == 1 else PaperState.ISSUED
        ids = [draft] + ([approved] if state is not PaperState.DRAFT else [])
        ids += [issued] if state is PaperState.ISSUED else []
        for file_id in ids:
            files.append(
                {
                    "id": file_id,
                    "dossier_code": CODE,
                    "filename": f"{file_id}.pdf",
                    "media_type": "application/pdf",
                    "sha256": "0" * 64,
                    "size": 1000,
                    "path": f"x/{file_id}",
                    "created_at": at,
                }
            )
        officer = (n // 10) % (OFFICERS + 1)
        rows.append(
            {
                "file_id": draft,
                "dossier_code": CODE,
                "name": f"Giấy chứng nhận {n}",
                "state": state.value,
                "assigned_to": f"officer{officer}" if officer < OFFICERS else None,
                "approved_file_id": approved if state is not PaperState.DRAFT else None,
                "signed_by": "user:officer0" if state is not PaperState.DRAFT else None,
                "signed_at": at if state is not PaperState.DRAFT else None,
                "issued_file_id": issued if state is PaperState.ISSUED else None,
                "created_at": at,
                "updated_at": at,
            }
        )
    with db.transaction() as session:
        for chunk in range(0, len(files), 5000):
            session.execute(insert(StoredFile), files[chunk : chunk + 5000])
        for chunk in range(0, len(rows), 5000):
            session.execute(insert(ResultPaperRow), rows[chunk : chunk + 5000])
        if db.is_postgres:
            session.execute(text("ANALYZE result_papers"))


def timed(label: str, call: Callable[[], object], n: int) -> None:
    call()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    print(f"{label:<40} median {statistics.median(times) * 1000:7.2f} ms   max {max(times) * 1000:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("-n", type=int, default=100, help="timed calls per query")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        db = Database.connect(url)
        try:
            started = time.perf_counter()
            fill(db, args.papers)
            print(
                f"filled {args.papers} papers in {time.perf_counter() - started:.1f} s",
                f"({db.engine.dialect.name})",
            )
            papers = ResultPapers(db)
            late = max(1, papers.waiting_for("officer3").pages - 1)
            timed("desk of officer3, page 1", lambda: papers.waiting_for("officer3"), args.n)
            timed(f"desk of officer3, page {late}", lambda: papers.waiting_for("officer3", page=late), args.n)
            timed("admin: every draft, page 1", lambda: papers.waiting_for(None), args.n)
            timed("clerk's queue, page 1", papers.waiting_for_clerk, args.n)
            if not db.is_postgres:
                with db.sessions() as session:
                    plan = session.execute(
                        text(
                            "EXPLAIN QUERY PLAN SELECT * FROM result_papers WHERE state = 'draft' AND "
                            "(assigned_to = 'officer3' OR assigned_to IS NULL) ORDER BY "
                            "assigned_to IS NULL, created_at DESC LIMIT 50"
                        )
                    ).all()
                print("plan:", "; ".join(str(row[-1]) for row in plan))
        finally:
            db.dispose()


if __name__ == "__main__":
    main()
