"""Intake's own cost, without HTTP: CPU time and SQL statements per change of
:class:`hub.services.intake.IntakeService`, called in one thread (docs/architecture.md,
"Intake throughput"). The steadiest intake figure on a shared machine: no server, no client,
no thread hand-over.

Usage::

    .venv/bin/python -m benchmarks.bench_intake                  # SQLite, 1000 changes per case
    .venv/bin/python -m benchmarks.bench_intake --db postgresql+psycopg://postgres@127.0.0.1:5432/test

The heap is settled first (:func:`hub.runtime.settle_heap`), as ``hub serve`` does once started,
so the cyclic garbage collector costs what it costs there (batch creates: 0.15 ms of CPU per
change with it, 0.19–0.20 without, 2026-12-07).

Cases: creates, status changes (to 4, processing), and status changes (to 5, supplement
requested) with an ``Idempotency-Key``; then the same creates and status changes through
``apply_batch`` in batches of ``--batch`` (as ``POST /api/v1/dossiers/batch``); messages routed
to two endpoints, as in ``benchmarks/bench_api.py``. ``--profile``: cProfile's top functions
(by own time) after each case. Statements count every cursor execution (SQLite's ``BEGIN``
included, ``COMMIT`` not).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event

from benchmarks.bench_api import T0, fresh_database
from hub.config import load_settings
from hub.db.session import Database
from hub.runtime import settle_heap
from hub.services.intake import IntakeBatch, IntakeService
from schemas.changes import DossierUpsert, StatusChange
from tests.sample_dossier import dossier_body

SCOPE = frozenset({"000.00.18.H42"})


def _body(code: str) -> dict[str, object]:
    """A new dossier ``code`` as intake receives it (received at the run's ``T0``)."""
    return dossier_body(code, received_at=T0)


def measure(
    name: str, db: Database, calls: list[Callable[[], object]], *, changes: int = 0, profile: bool = False
) -> None:
    """CPU time and statements per change of ``calls`` (``changes`` in all: one per call unless
    given), and with ``profile`` cProfile's top functions."""
    profiler = cProfile.Profile() if profile else None
    executed = 0

    def count(*_args: Any) -> None:
        nonlocal executed
        executed += 1

    event.listen(db.engine, "before_cursor_execute", count)
    started = time.process_time()
    if profiler is not None:
        profiler.enable()
    for call in calls:
        call()
    if profiler is not None:
        profiler.disable()
    used = time.process_time() - started
    event.remove(db.engine, "before_cursor_execute", count)
    n = changes or len(calls)
    print(f"{name:24} {n:6d}  {used * 1000 / n:5.2f} ms CPU/change  {executed / n:4.1f} statements/change")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="changes per case (at most 9999)")
    parser.add_argument("--db", help="PostgreSQL URL (default: a temporary SQLite file)")
    parser.add_argument("--batch", type=int, default=100, help="changes per batch of the batch cases")
    parser.add_argument("--profile", action="store_true", help="cProfile's top functions per case")
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
            creates = [DossierUpsert.model_validate({"dossier": _body(code)}) for code in codes]
            processing = StatusChange.model_validate(
                {"status": 4, "at": (T0 + timedelta(hours=1)).isoformat(), "handler": "Trần Thị Bình"}
            )
            supplement = StatusChange.model_validate(
                {"status": 5, "at": (T0 + timedelta(hours=2)).isoformat(), "handler": "Trần Thị Bình"}
            )
            settle_heap()  # as ``hub serve`` does once started: the collector's share as it is there
            print(f"backend={'postgresql' if opts.db else 'sqlite'} n={opts.n} (IntakeService, one thread)")
            profile = opts.profile
            measure(
                "create",
                db,
                [partial(service.upsert_dossier, c, actor="bench", scope=SCOPE) for c in creates],
                profile=profile,
            )
            measure(
                "status → 4",
                db,
                [partial(service.change_status, c, processing, actor="bench", scope=SCOPE) for c in codes],
                profile=profile,
            )
            measure(
                "status → 5, with key",
                db,
                [
                    partial(
                        service.change_status,
                        c,
                        supplement,
                        actor="bench",
                        scope=SCOPE,
                        idempotency_key=f"k-{c}",
                    )
                    for c in codes
                ],
                profile=profile,
            )
            batch_case(service, db, opts)
        finally:
            db.dispose()


def batch_case(service: IntakeService, db: Database, opts: argparse.Namespace) -> None:
    """Creates, then status changes (to 4), in batches of ``opts.batch`` (dossiers of the next
    day: codes apart from the single cases')."""
    later = (T0 + timedelta(days=1)).strftime("%y%m%d")
    codes = [f"000.00.18.H42-{later}-{i + 1:04d}" for i in range(opts.n)]
    groups = [codes[i : i + opts.batch] for i in range(0, len(codes), opts.batch)]
    at = (T0 + timedelta(hours=1)).isoformat()
    creates = [
        IntakeBatch.model_validate({"changes": [{"op": "upsert", "dossier": _body(c)} for c in group]})
        for group in groups
    ]
    statuses = [
        IntakeBatch.model_validate(
            {
                "changes": [
                    {"op": "status", "code": c, "status": 4, "at": at, "handler": "Trần Thị Bình"}
                    for c in group
                ]
            }
        )
        for group in groups
    ]
    for name, batches in (
        (f"batch ×{opts.batch} create", creates),
        (f"batch ×{opts.batch} status → 4", statuses),
    ):
        measure(
            name,
            db,
            [partial(service.apply_batch, b, actor="bench", scope=SCOPE) for b in batches],
            changes=len(codes),
            profile=opts.profile,
        )


if __name__ == "__main__":
    main()
