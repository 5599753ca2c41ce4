"""Intake's own cost, without HTTP: CPU time and SQL statements per change of
:class:`hub.services.intake.IntakeService`, called in one thread (docs/architecture.md,
"Intake throughput"). The steadiest intake figure on a shared machine: no server, no client,
no thread hand-over.

Usage::

    .venv/bin/python -m benchmarks.bench_intake                  # SQLite, 1000 changes per case
    .venv/bin/python -m benchmarks.bench_intake --db postgresql+psycopg://postgres@127.0.0.1:5432/test

Cases: creates, status changes (to 4, processing), and status changes (to 5, supplement
requested) with an ``Idempotency-Key``; messages routed to two endpoints, as in
``benchmarks/bench_api.py``. Statements count every cursor execution (SQLite's ``BEGIN``
included, ``COMMIT`` not).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from benchmarks.bench_api import T0, dossier, fresh_database
from hub.config import load_settings
from hub.db.session import Database
from hub.services.intake import IntakeService
from schemas.changes import DossierUpsert, StatusChange

SCOPE = frozenset({"000.00.18.H42"})


def measure(name: str, db: Database, calls: list[Callable[[], object]]) -> None:
    executed = 0

    def count(*_args: Any) -> None:
        nonlocal executed
        executed += 1

    event.listen(db.engine, "before_cursor_execute", count)
    started = time.process_time()
    for call in calls:
        call()
    used = time.process_time() - started
    event.remove(db.engine, "before_cursor_execute", count)
    n = len(calls)
    print(f"{name:24} {n:6d}  {used * 1000 / n:5.2f} ms CPU/change  {executed / n:4.1f} statements/change")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="changes per case (at most 9999)")
    parser.add_argument("--db", help="PostgreSQL URL (default: a temporary SQLite file)")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    with fresh_database(opts.db, tmp) as url:
        os.environ.setdefault("HUB_DATA_DIR", str(tmp))
        settings = load_settings(
            endpoints={
                "dvcqg": {"kind": "webhook", "url": "http://127.0.0.1:9/x"},
                "lgsp": {"kind": "webhook", "url": "http://127.0.0.1:9/y"},
            },
            routing=[{"kinds": ["dossier.sync", "dossier.progress"], "endpoints": ["dvcqg", "lgsp"]}],
        )
        db = Database.connect(url)
        try:
            service = IntakeService(db, settings)
            day = T0.strftime("%y%m%d")
            codes = [f"000.00.18.H42-{day}-{i + 1:04d}" for i in range(opts.n)]
            creates = [DossierUpsert.model_validate({"dossier": dossier(code)}) for code in codes]
            processing = StatusChange.model_validate(
                {"status": 4, "at": (T0 + timedelta(hours=1)).isoformat(), "handler": "Trần Thị Bình"}
            )
            supplement = StatusChange.model_validate(
                {"status": 5, "at": (T0 + timedelta(hours=2)).isoformat(), "handler": "Trần Thị Bình"}
            )
            print(f"backend={'postgresql' if opts.db else 'sqlite'} n={opts.n} (IntakeService, one thread)")
            measure(
                "create",
                db,
                [lambda c=c: service.upsert_dossier(c, actor="bench", scope=SCOPE) for c in creates],
            )
            measure(
                "status → 4",
                db,
                [lambda c=c: service.change_status(c, processing, actor="bench", scope=SCOPE) for c in codes],
            )
            measure(
                "status → 5, with key",
                db,
                [
                    lambda c=c: service.change_status(
                        c, supplement, actor="bench", scope=SCOPE, idempotency_key=f"k-{c}"
                    )
                    for c in codes
                ],
            )
        finally:
            db.dispose()


if __name__ == "__main__":
    main()
