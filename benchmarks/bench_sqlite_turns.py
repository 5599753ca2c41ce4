"""SQLite: how long a worker's write waits while another process floods the database with write
transactions (docs/delivery.md §9.3, "SQLite writers take turns").

A child process commits one ``Database.transaction()`` after another (an insert, the lock held
``--hold`` ms: about an intake transaction); this process makes ``-n`` writes through the
worker's store (``SqlOutboxStore.heartbeat_worker_sync``, one write transaction each) and prints,
per write, how many flood transactions committed while it waited, and its wait::

    .venv/bin/python -m benchmarks.bench_sqlite_turns -n 200

Counts depend little on the machine's load; waits do.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

import hub
from hub.db.migrate import upgrade
from hub.db.session import Database
from hub.delivery.sql_store import SqlOutboxStore
from hub.delivery.store import WorkerRegistration

_FLOOD = """
import sys, time
from pathlib import Path
import sqlalchemy as sa
from hub.db.session import Database

db = Database.connect(sys.argv[1])
stop, hold = Path(sys.argv[2]), float(sys.argv[3]) / 1000
while not stop.exists():
    with db.transaction() as session:
        session.execute(sa.text("INSERT INTO flood (who) VALUES ('api')"))
        time.sleep(hold)
"""


def _flooded(db: Database) -> int:
    with db.sessions() as session:
        return int(session.execute(sa.text("SELECT count(*) FROM flood")).scalar_one())


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=200, help="writes of the worker's store")
    parser.add_argument("--hold", type=float, default=1.0, help="ms each flood transaction holds the lock")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-turns-") as tmp:
        url = f"sqlite:///{tmp}/hub.db"
        upgrade(url)
        db = Database.connect(url)
        with db.transaction() as session:
            session.execute(sa.text("CREATE TABLE flood (id INTEGER PRIMARY KEY, who TEXT)"))
        stop = Path(tmp) / "stop"
        # The child imports the same hub as this process (``-c`` puts the working directory first).
        here = Path(hub.__file__).resolve().parents[1]
        flood = subprocess.Popen([sys.executable, "-c", _FLOOD, url, str(stop), str(args.hold)], cwd=here)
        store = SqlOutboxStore(db)
        counts: list[float] = []
        waits: list[float] = []
        try:
            while _flooded(db) < 20:
                time.sleep(0.05)
            started, first = time.monotonic(), _flooded(db)
            for n in range(args.n):
                before = _flooded(db)
                t0 = time.perf_counter()
                store.heartbeat_worker_sync(WorkerRegistration(id=f"w{n}", host="bench", pid=n))
                waits.append((time.perf_counter() - t0) * 1000)
                counts.append(_flooded(db) - before)
            elapsed, flooded = time.monotonic() - started, _flooded(db) - first
        finally:
            stop.touch()
            flood.wait(60)
            db.dispose()
    print(
        f"sqlite turns: {args.n} worker writes in {elapsed:.2f}s beside {flooded} flood transactions "
        f"({flooded / elapsed:,.0f}/s, {args.hold:g} ms each); flood transactions per worker write "
        f"p50 {statistics.median(counts):.0f} p99 {_quantile(counts, 0.99):.0f} max {max(counts):.0f}; "
        f"worker write p50 {statistics.median(waits):.1f} ms p99 {_quantile(waits, 0.99):.1f} ms "
        f"max {max(waits):.0f} ms",
        flush=True,
    )


if __name__ == "__main__":
    main()
