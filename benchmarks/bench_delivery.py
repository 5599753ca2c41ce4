"""Delivery throughput, latency and memory: outbox → worker process → local HTTP sink.

Runs, for each backend (SQLite file, PostgreSQL on 127.0.0.1):

1. drain: enqueue N messages (batched insert), start the worker process(es) (``hub
   worker``, ``--workers``), time until all are delivered to the sink (a separate process) →
   deliveries/s, and the CPU time per delivery of the workers, the sink and, on PostgreSQL, the
   database's server processes (:class:`PgServerCpu`; *w*, *s* and *p* of docs/delivery.md §9.3);
2. paced: the worker running, a producer enqueues at a fixed rate (default: half the drained
   rate) in small transactions with NOTIFY → enqueue-to-arrival latency p50/p95/p99/max, and
   where it went (producer commit, queued until the worker started the delivery, sent), for
   all messages and the slowest 1 %; the worker polls at its default interval (``--poll``),
   so on SQLite as on PostgreSQL it must be woken by the commit;
3. memory (``--memory-n``, e.g. 100000): the worker's RSS sampled while draining;
4. scale-out (``--scale 1,2,4``, instead of 1-3): the drain repeated with 1, 2, 4 worker
   processes on a fresh database each → deliveries/s per process count and the speed-up
   (docs/deployment.md, "Several workers, several machines").

Also ``--transport httpx`` to measure httpx's own pool instead of the aiohttp transport.

Example::

    .venv/bin/python -m benchmarks.bench_delivery --backend postgresql -n 20000
    .venv/bin/python -m benchmarks.bench_delivery --backend both -n 20000 --memory-n 100000
    .venv/bin/python -m benchmarks.bench_delivery --backend postgresql -n 20000 --scale 1,2,4
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import func, insert, select, text

from hub.config import WorkerSettings
from hub.db.base import utcnow
from hub.db.migrate import upgrade
from hub.db.models import DeliveryAttempt, MessageState, OutboxMessage
from hub.db.session import Database
from hub.outbox.enqueue import NOTIFY_CHANNEL

#: The worker's own poll interval (``worker.poll_interval_seconds`` left at its default).
WORKER_POLL_SECONDS: float = WorkerSettings.model_fields["poll_interval_seconds"].default

PG_ADMIN_URL = os.environ.get("HUB_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PAYLOAD = {
    "MaHoSo": "H42.01-260101-0001",
    "TrangThai": 2,
    "TenNguoiNop": "Nguyễn Văn A",
    "DiaChi": "Phường Đông Thành, Thành phố Ninh Bình, Tỉnh Ninh Bình",
    "ThuTuc": "1.001234.000.00.00.H42",
    "NgayTiepNhan": "20260101083000",
}


@dataclass
class Backend:
    name: str
    url: str
    cleanup: Any


def make_backend(name: str, workdir: Path) -> Backend:
    if name == "sqlite":
        url = f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        upgrade(url)
        return Backend(name, url, lambda: None)
    db_name = f"hub_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
    url = PG_ADMIN_URL.rpartition("/")[0] + "/" + db_name

    def drop() -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name)))

    upgrade(url)
    return Backend(name, url, drop)


def start_sink(record: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.simulators.sink", "--port", "0", "--no-bodies", "--record", str(record)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/deliver"


def stop_sink(proc: subprocess.Popen[str], record: Path) -> dict[str, float]:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    arrivals: dict[str, float] = {}
    for line in record.read_text().splitlines():
        message_id, _dossier, _attempt, at = line.split("\t")
        arrivals.setdefault(message_id, float(at))
    return arrivals


def write_config(path: Path, url: str, args: argparse.Namespace) -> None:
    path.write_text(
        f"""
[worker]
concurrency = {args.concurrency}
batch_size = {args.batch_size}
lease_seconds = 60
heartbeat_seconds = 15
poll_interval_seconds = {args.poll}
completion_flush_seconds = {args.flush_ms / 1000}
shutdown_grace_seconds = 10

[endpoints.sink]
kind = "webhook"
url = "{url}"
max_in_flight = {args.concurrency}
timeout_seconds = 30
""",
        encoding="utf-8",
    )


class Workers:
    """``count`` worker processes (``hub worker``, as an operator starts them) sharing the outbox."""

    def __init__(self, db_url: str, config: Path, transport: str, count: int) -> None:
        env = {
            **os.environ,
            "HUB_DATABASE_URL": db_url,
            "HUB_CONFIG_FILE": str(config),
            "HUB_LOG_LEVEL": "WARNING",
        }
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "hub", "worker", "--worker-id", f"bench{i}", "--transport", transport],
                env=env,
            )
            for i in range(count)
        ]

    def check(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}")

    def rss_kib(self) -> int:
        return sum(rss_kib(proc.pid) for proc in self.procs)

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(proc.pid) for proc in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.wait(60)


def enqueue_batch(db: Database, n: int, *, dossiers: int, start: int = 0) -> float:
    """Batched insert of ``n`` messages (1,000 rows per statement), like a bulk producer;
    returns the wall-clock time of the last commit."""
    committed = 0.0
    for offset in range(0, n, 1000):
        now = utcnow()
        rows = [
            {
                "message_id": str(uuid.uuid4()),
                "endpoint": "sink",
                "kind": "dossier.sync",
                "ordering_key": f"D{(start + i) % dossiers}",
                "dossier_code": f"H42.01-260101-{(start + i) % dossiers:06d}",
                "payload": PAYLOAD,
                "state": MessageState.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(offset, min(n, offset + 1000))
        ]
        with db.engine.begin() as conn:
            conn.execute(insert(OutboxMessage), rows)
            if db.is_postgres:
                conn.execute(text("SELECT pg_notify(:c, 'sink')"), {"c": NOTIFY_CHANNEL})
        committed = time.time()
    return committed


def delivered_count(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state == "delivered")
            )
            or 0
        )


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: ``application_name`` of the benchmark's own connections: not counted in the server's CPU.
BENCH_APPLICATION = "hub-bench"


def bench_url(url: str) -> str:
    """``url`` for the benchmark's own connections (on PostgreSQL named :data:`BENCH_APPLICATION`,
    so :class:`PgServerCpu` leaves their backends out)."""
    if not url.startswith("postgresql"):
        return url
    return f"{url}{'&' if '?' in url else '?'}application_name={BENCH_APPLICATION}"


class PgServerCpu:
    """The CPU time (utime + stime, Linux /proc) of the PostgreSQL server processes serving one
    database: every backend and autovacuum worker of it but the benchmark's own connections
    (docs/delivery.md §9.3, *p*). Backends come and go (a pool's overflow connections), so a
    thread samples them every ``interval`` seconds; one that lived between two samples is
    missed. The shared server processes (WAL writer, checkpointer) are not counted.
    The server must run on this host (127.0.0.1)."""

    def __init__(self, url: str, interval: float = 0.05) -> None:
        self._conn = psycopg.connect(url, autocommit=True, application_name=BENCH_APPLICATION)
        self._interval = interval
        self._lock = threading.Lock()
        #: pid → (CPU seconds when first seen, CPU seconds when last seen)
        self._seen: dict[int, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sample(first=True)

    def _pids(self) -> list[int]:
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND application_name IS DISTINCT FROM %s",
            (BENCH_APPLICATION,),
        ).fetchall()
        return [pid for (pid,) in rows]

    def sample(self, *, first: bool = False) -> None:
        """Read the CPU of every backend now serving the database; new ones count from zero
        (``first``: from what they have used so far)."""
        for pid in self._pids():
            try:
                used = cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            with self._lock:
                start = self._seen.get(pid, (used if first else 0.0, 0.0))[0]
                self._seen[pid] = (start, used)

    def __call__(self) -> float:
        """CPU seconds used since this meter was made (as far as sampled)."""
        self.sample()
        with self._lock:
            return sum(last - start for start, last in self._seen.values())

    @property
    def backends(self) -> int:
        """How many server processes were seen."""
        return len(self._seen)

    def start(self) -> PgServerCpu:
        """Sample on a thread of its own until :meth:`close`."""

        def loop() -> None:
            while not self._stop.wait(self._interval):
                with contextlib.suppress(psycopg.Error):
                    self.sample()

        self._thread = threading.Thread(target=loop, name="pg-cpu", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._conn.close()


def host_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole host, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def cpu_report(
    label: str,
    procs: dict[str, Callable[[], float]],
    before: dict[str, float],
    host0: tuple[float, float],
    wall: float,
) -> str:
    parts = [f"{name} {100 * (read() - before[name]) / wall:.0f}%" for name, read in procs.items()]
    busy, total = host_busy()
    parts.append(f"host {100 * (busy - host0[0]) / max(1.0, total - host0[1]):.0f}% of {os.cpu_count()} cpus")
    return f"[{label}] cpu: " + ", ".join(parts)


def wait_delivered(db: Database, n: int, workers: Workers, rss: list[int] | None) -> float:
    start = time.monotonic()
    while delivered_count(db) < n:
        workers.check()
        if rss is not None:
            rss.append(workers.rss_kib())
        time.sleep(0.25)
    return time.monotonic() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line: its module docstring, and ``--backend``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    return parser


def backend_names(args: argparse.Namespace) -> list[str]:
    return ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]


@dataclass
class BenchRun:
    """One measured run: its database connection, a sink recording arrivals, the workers' config."""

    backend: Backend
    args: argparse.Namespace
    db: Database
    sink: subprocess.Popen[str]
    record: Path
    config: Path
    cleanup: contextlib.ExitStack

    def start_workers(self) -> Workers:
        """``--workers`` worker processes on this run's config (stopped when the run ends)."""
        workers = Workers(self.backend.url, self.config, self.args.transport, self.args.workers)
        self.cleanup.callback(workers.stop)
        return workers

    def meters(self, workers: Workers) -> dict[str, Callable[[], float]]:
        """The CPU seconds of each process group, for :func:`cpu_report`."""
        return {"workers": workers.cpu_seconds, "sink": lambda: cpu_seconds(self.sink.pid)}

    def arrivals(self, workers: Workers) -> dict[str, float]:
        """Stop the workers, then the sink; its first arrival time of each message id."""
        workers.stop()
        return stop_sink(self.sink, self.record)


@contextlib.contextmanager
def bench_run(backend: Backend, args: argparse.Namespace, workdir: Path, name: str) -> Iterator[BenchRun]:
    record = workdir / f"arrivals-{uuid.uuid4().hex[:6]}.tsv"
    with contextlib.ExitStack() as cleanup:
        db = Database.connect(bench_url(backend.url), pool_size=2)
        cleanup.callback(db.dispose)
        sink, url = start_sink(record)
        cleanup.callback(sink.kill)  # no-op after the orderly stop (BenchRun.arrivals)
        config = workdir / f"{name}.toml"
        write_config(config, url, args)
        yield BenchRun(backend, args, db, sink, record, config, cleanup)


def drain(
    backend: Backend, args: argparse.Namespace, n: int, workdir: Path, *, memory: bool = False
) -> float:
    with bench_run(backend, args, workdir, "drain") as run:
        t0 = time.monotonic()
        enqueue_batch(run.db, n, dossiers=args.dossiers)
        enqueue_s = time.monotonic() - t0
        server = PgServerCpu(backend.url).start() if run.db.is_postgres else None
        if server is not None:
            run.cleanup.callback(server.close)
        workers = run.start_workers()
        started = time.monotonic()
        procs = run.meters(workers)
        if server is not None:
            procs["postgresql"] = server
        # CPU is counted from the first delivery: a worker's start (imports, connectors, its
        # registration) would otherwise be charged to the deliveries of a short drain.
        while (first := delivered_count(run.db)) == 0:
            workers.check()
            time.sleep(0.01)
        before = {name: read() for name, read in procs.items()}
        host0 = host_busy()
        counted_from = time.monotonic()
        rss: list[int] = []
        wait_delivered(run.db, n, workers, rss if memory else None)
        done = time.monotonic()
        elapsed = done - started
        used = {name: read() - before[name] for name, read in procs.items()}
        usage = cpu_report(f"{backend.name}/{args.transport}", procs, before, host0, done - counted_from)
        arrivals = run.arrivals(workers)
    times = sorted(arrivals.values())
    steady = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    label = "memory" if memory else "drain"
    print(
        f"[{backend.name}/{args.transport}] {label}: enqueued {n} in {enqueue_s:.2f}s "
        f"({n / enqueue_s:,.0f}/s); delivered {len(arrivals)} unique in {elapsed:.2f}s "
        f"→ {n / elapsed:,.0f} deliveries/s (wall, incl. worker start); "
        f"{steady:,.0f}/s first→last arrival"
    )
    print(usage)
    per_delivery = ", ".join(f"{name} {1000 * seconds / (n - first):.3f}" for name, seconds in used.items())
    backends = f" ({server.backends} PostgreSQL processes seen)" if server is not None else ""
    print(
        f"[{backend.name}/{args.transport}] CPU per delivery from the first one "
        f"({n - first} deliveries), ms: {per_delivery}{backends}"
    )
    if memory and rss:
        third = max(1, len(rss) // 3)
        print(
            f"[{backend.name}/{args.transport}] memory: worker RSS (all workers) MiB "
            f"min {min(rss) / 1024:.1f} "
            f"first-third median {statistics.median(rss[:third]) / 1024:.1f} "
            f"last-third median {statistics.median(rss[-third:]) / 1024:.1f} max {max(rss) / 1024:.1f} "
            f"({len(rss)} samples)"
        )
    return steady


@dataclass(frozen=True)
class Timeline:
    """One paced message's moments (wall clock, seconds): written by the producer (``created_at``),
    committed, its delivery started by the worker (the attempt's ``started_at``), arrived at the
    sink; and whether the previous message of its dossier had not arrived when it was committed."""

    created: float
    committed: float
    started: float
    arrived: float
    behind_predecessor: bool


_TIMELINE_COLUMNS = (
    OutboxMessage.seq,
    OutboxMessage.message_id,
    OutboxMessage.ordering_key,
    OutboxMessage.created_at,
)


def timelines(db: Database, commits: list[tuple[int, float]], arrivals: dict[str, float]) -> list[Timeline]:
    """Each delivered message's :class:`Timeline`; ``commits``: (messages sent so far, commit time)
    per producer transaction (one producer inserts in order, so the n-th seq is the n-th sent;
    the paced run's rows are the newest, after those of a drain on the same database)."""
    with db.engine.connect() as conn:
        rows = conn.execute(select(*_TIMELINE_COLUMNS).order_by(OutboxMessage.seq)).all()
        rows = rows[len(rows) - commits[-1][0] :]
        started = {
            seq: at
            for seq, at in conn.execute(
                select(DeliveryAttempt.message_seq, DeliveryAttempt.started_at).where(
                    DeliveryAttempt.outcome == "delivered"
                )
            )
        }
    result: list[Timeline] = []
    last_arrival: dict[str, float] = {}
    batch = 0
    for index, row in enumerate(rows):
        while commits[batch][0] <= index:
            batch += 1
        committed = commits[batch][1]
        arrived = arrivals.get(row.message_id)
        previous = last_arrival.get(row.ordering_key)
        if arrived is not None and row.seq in started:
            result.append(
                Timeline(
                    created=row.created_at.timestamp(),
                    committed=committed,
                    started=started[row.seq].timestamp(),
                    arrived=arrived,
                    behind_predecessor=previous is not None and previous > committed,
                )
            )
            last_arrival[row.ordering_key] = arrived
    return result


def latency_report(lines: list[Timeline]) -> str:
    """Percentiles of enqueue→arrival, and where the slowest 1 % spent their time."""
    total = [(t.arrived - t.created) * 1000 for t in lines]
    cut = percentile(total, 0.99)
    slow = [t for t, ms in zip(lines, total, strict=True) if ms >= cut]

    def median_ms(values: list[float]) -> float:
        return statistics.median(values) * 1000 if values else float("nan")

    def segments(of: list[Timeline]) -> str:
        return (
            f"commit {median_ms([t.committed - t.created for t in of]):.1f}, "
            f"queued {median_ms([t.started - t.committed for t in of]):.1f}, "
            f"sent {median_ms([t.arrived - t.started for t in of]):.1f}"
        )

    behind = sum(t.behind_predecessor for t in lines)
    slow_behind = sum(t.behind_predecessor for t in slow)
    return (
        f"enqueue→arrival p50 {percentile(total, 0.50):.1f} ms, p95 {percentile(total, 0.95):.1f}, "
        f"p99 {cut:.1f}, max {max(total):.1f}; medians (ms) all: {segments(lines)}; slowest 1 % "
        f"({len(slow)}): {segments(slow)}; behind their dossier's previous message: {behind} of "
        f"{len(lines)}, {slow_behind} of the slowest"
    )


def paced(backend: Backend, args: argparse.Namespace, rate: float, workdir: Path) -> None:
    with bench_run(backend, args, workdir, "paced") as run:
        db = run.db
        workers = run.start_workers()
        time.sleep(2.0)  # worker start-up (imports, LISTEN)
        procs = run.meters(workers)
        before = {name: read() for name, read in procs.items()}
        host0 = host_busy()
        total = int(rate * args.paced_seconds)
        tick = 0.01
        sent = 0
        commits: list[tuple[int, float]] = []
        start = time.monotonic()
        carry = 0.0
        while sent < total:
            carry += rate * tick
            batch = min(int(carry), total - sent)
            carry -= batch
            if batch:
                # Small producer transactions with NOTIFY, as the intake service commits them.
                committed = enqueue_batch(db, batch, dossiers=args.dossiers, start=sent)
                sent += batch
                commits.append((sent, committed))
            delay = start + (sent / rate) - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, tick))
        wait_delivered(db, total, workers, None)
        usage = cpu_report(f"{backend.name}/{args.transport}", procs, before, host0, time.monotonic() - start)
        arrivals = run.arrivals(workers)
        lines = timelines(db, commits, arrivals)
    print(
        f"[{backend.name}/{args.transport}] paced {rate:,.0f}/s for {args.paced_seconds}s ({total} msgs): "
        + latency_report(lines)
    )
    print(usage)


def scale(name: str, args: argparse.Namespace, workdir: Path) -> None:
    """The drain with each process count of ``--scale``, each on a fresh database."""
    rates: dict[int, float] = {}
    for count in args.scale:
        backend = make_backend(name, workdir)
        try:
            rates[count] = drain(
                backend, argparse.Namespace(**{**vars(args), "workers": count}), args.n, workdir
            )
        finally:
            backend.cleanup()
    base = rates[args.scale[0]]
    print(f"[{name}/{args.transport}] scale-out, {args.n} messages, first→last arrival:")
    for count, rate in rates.items():
        print(f"  {count} worker process(es): {rate:,.0f} deliveries/s (x{rate / base:.2f})")


def _counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of process counts, e.g. 1,2,4")
    return counts


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("-n", type=int, default=20_000, help="messages in the drain run")
    parser.add_argument("--memory-n", type=int, default=0, help="messages in the memory run (0 = skip)")
    parser.add_argument("--rate", type=float, default=0, help="paced rate (default: half the drained rate)")
    parser.add_argument("--paced-seconds", type=float, default=20)
    parser.add_argument("--no-paced", action="store_true")
    parser.add_argument("--no-drain", action="store_true", help="only the paced run (needs --rate)")
    parser.add_argument("--concurrency", type=int, default=64, help="per worker process")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--scale", type=_counts, default=None, help="only the drain, with these worker process counts (1,2,4)"
    )
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--flush-ms", type=float, default=20)
    parser.add_argument(
        "--poll",
        type=float,
        default=WORKER_POLL_SECONDS,
        help="worker.poll_interval_seconds (default: the worker's own); new messages wake the worker",
    )
    parser.add_argument("--dossiers", type=int, default=10_000, help="distinct ordering keys")
    parser.add_argument("--transport", choices=["aiohttp", "httpx"], default="aiohttp")
    args = parser.parse_args()
    backends = backend_names(args)
    print(
        f"cpus={os.cpu_count()} python={sys.version.split()[0]} workers={args.scale or args.workers} "
        f"concurrency={args.concurrency} batch={args.batch_size} flush={args.flush_ms}ms poll={args.poll}s "
        f"dossiers={args.dossiers} transport={args.transport}"
    )
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        workdir = Path(tmp)
        for name in backends:
            if args.scale:
                scale(name, args, workdir)
                continue
            backend = make_backend(name, workdir)
            try:
                rate = 0.0 if args.no_drain else drain(backend, args, args.n, workdir)
                if not args.no_paced:
                    paced(backend, args, args.rate or max(1.0, rate / 2), workdir)
            finally:
                backend.cleanup()
            if args.memory_n:
                backend = make_backend(name, workdir)
                try:
                    drain(backend, args, args.memory_n, workdir, memory=True)
                finally:
                    backend.cleanup()


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
