"""Does a citizen lookup's time tell whether a dossier code exists? (docs/security.md §3)

Times :meth:`hub.lookup.service.LookupService.lookup` with a wrong ID number for a dossier with
many processing steps, for an unknown code and for a malformed one (and, for reference, the
right ID number), on a fresh migrated database. The three "not found" medians should be about
equal; before the change the big dossier answered about 25 times slower than an unknown code.

Usage::

    .venv/bin/python -m benchmarks.bench_lookup                  # SQLite, 300 steps, 2000 lookups
    .venv/bin/python -m benchmarks.bench_lookup --steps 1000 -n 500
    .venv/bin/python -m benchmarks.bench_lookup --db postgresql+psycopg://postgres@127.0.0.1:5432/bench

The per-code limit is off here (it would answer 429 after a few wrong numbers); the unit test
``tests/lookup/test_lookup_security.py`` counts the work instead of timing it.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from hub.config import load_settings
from hub.db.migrate import upgrade
from hub.db.session import Database
from hub.lookup.owner_hash import OwnerIdHasher
from hub.lookup.service import LookupService
from hub.services.intake import IntakeService
from schemas.changes import DossierUpsert
from schemas.dossier import Dossier, Owner
from schemas.errors import NotFoundError
from schemas.status import DossierStatus
from schemas.timefmt import now_vn
from tests.lookup.support import many_steps
from tests.sample_dossier import CODE, make_dossier

OWNER_ID = "037099001234"


def big_dossier(steps: int) -> Dossier:
    t0 = now_vn() - timedelta(days=3)
    return make_dossier(
        CODE,
        received_at=t0,
        owner=Owner(name="Nguyễn Văn An", id_number=OWNER_ID),
        status=DossierStatus.PROCESSING,
        steps=many_steps(steps, t0),
    )


def median_ms(call: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        with contextlib.suppress(NotFoundError):
            call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--steps", type=int, default=300, help="processing steps of the known dossier")
    parser.add_argument("-n", type=int, default=2000, help="lookups per case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        settings = load_settings(
            database_url=url,
            data_dir=tmp,
            lookup={"owner_id_key": "bench-key-0123456789abcdef", "failed_attempts_per_code_per_hour": 0},
        )
        db = Database.connect(url)
        try:
            IntakeService(db, settings).upsert_dossier(
                DossierUpsert(dossier=big_dossier(args.steps)), actor="bench"
            )
            lookup = LookupService(db, settings.lookup, OwnerIdHasher.from_settings(settings)).lookup
            cases = {
                f"known code ({args.steps} steps), wrong ID": lambda: lookup(CODE, "037099009999"),
                "unknown code": lambda: lookup("000.00.18.H42-251125-0002", "037099009999"),
                "malformed code": lambda: lookup("no-such-code", "037099009999"),
                f"known code ({args.steps} steps), right ID": lambda: lookup(CODE, OWNER_ID),
            }
            for call in cases.values():  # warm up caches and the connection pool
                median_ms(call, 20)
            results = {name: median_ms(call, args.n) for name, call in cases.items()}
        finally:
            db.dispose()
    base = results["unknown code"]
    print(f"{'case':42} {'median ms':>10} {'× unknown':>10}")
    for name, value in results.items():
        print(f"{name:42} {value:10.3f} {value / base:10.2f}")


if __name__ == "__main__":
    main()
