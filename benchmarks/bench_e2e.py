"""End to end: changes POSTed to ``hub serve --no-worker`` → a ``hub worker`` process → the
webhook sink (:mod:`hub.simulators.sink`, its own process); and, with ``--table``, ONE table of
that beside its parts and its peers, all measured in the same run on the same machine.

Default (e2e only)::

    .venv/bin/python -m benchmarks.bench_e2e --backend postgresql -n 3000
    .venv/bin/python -m benchmarks.bench_e2e --backend sqlite -n 3000 --batch 100

One row per case, ``--table``::

    .venv/bin/python -m benchmarks.bench_e2e --table -n 3000

Intake alone (single route, then batch), with 2 API processes (``hub serve --processes 2``)::

    .venv/bin/python -m benchmarks.bench_e2e --intake --api-processes 2 --backend postgresql -n 2000

Cases of the table:

* sink ceiling: a raw aiohttp client POSTing the same payload to the same sink (64 connections)
  — what the receiver and the loopback take, with no queue behind;
* procrastinate (``pip install -r requirements-bench.lock``, the ``bench`` extra): N jobs
  deferred in one batch, one worker process of concurrency 64 whose task POSTs the payload to
  the sink with one aiohttp session — a general-purpose PostgreSQL job queue doing the same
  work (PostgreSQL only; it has no SQLite backend);
* hub worker drain: N messages inserted, then 1 and 2 ``hub worker`` processes
  (:func:`benchmarks.bench_delivery.drain`);
* intake: N dossier creates through ``POST /api/v1/dossiers`` from 16 clients, and through
  ``POST /api/v1/dossiers/batch`` (``--batch`` per request, 4 clients);
* e2e: intake (single route, then batch) with a ``hub worker`` running: changes/s from the
  first request to the last arrival, and per change the latency from its request to its
  arrival at the sink (p50/p99).

Throughputs of the drains are first→last arrival at the sink (start-up excluded); each routes
one message per change (one endpoint). Client, server, worker, sink and database share the
machine's cores, so each number is a lower bound for a machine of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from benchmarks import bench_api
from benchmarks.bench_delivery import (
    PAYLOAD,
    WORKER_POLL_SECONDS,
    Backend,
    arg_parser,
    backend_names,
    drain,
    make_backend,
    percentile,
    start_sink,
    stop_sink,
)
from hub.auth.keys import ApiKeyService
from hub.db.models import DeliveryWorker, HubRun, MessageState, OutboxMessage
from hub.db.session import Database
from schemas.timefmt import VN_TZ
from tests.sample_dossier import dossier_body

HUB = str(Path(sys.executable).with_name("hub"))
T0 = datetime.now(VN_TZ).replace(microsecond=0)
#: Intake clients (as ``benchmarks.bench_api``), batch clients, sink-ceiling connections.
SINGLE_CLIENTS = 16
BATCH_CLIENTS = 4
SINK_CONNECTIONS = 64


def dossier(n: int) -> dict[str, object]:
    """A new dossier; codes ``<agency>-<day>-NNNN`` with the day moved on every 9,999."""
    day = (T0 - timedelta(days=n // 9999)).strftime("%y%m%d")
    return dossier_body(f"000.00.18.H42-{day}-{n % 9999 + 1:04d}", received_at=T0)


def write_config(path: Path, sink_url: str, *, poll: float) -> None:
    """One endpoint (the sink), every dossier message routed to it; the worker as
    ``benchmarks.bench_delivery`` runs it."""
    path.write_text(
        f"""
[worker]
concurrency = 64
batch_size = 100
lease_seconds = 60
heartbeat_seconds = 15
poll_interval_seconds = {poll}
completion_flush_seconds = 0.02
shutdown_grace_seconds = 10

[endpoints.sink]
kind = "webhook"
url = "{sink_url}"
max_in_flight = 64
timeout_seconds = 30

[[routing]]
kinds = ["dossier.sync", "dossier.progress"]
endpoints = ["sink"]
""",
        encoding="utf-8",
    )


def hub_env(url: str, config: Path, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=url,
        HUB_CONFIG_FILE=str(config),
        HUB_DATA_DIR=str(data_dir),
        HUB_LOG_LEVEL="WARNING",
    )
    return env


def api_runs(url: str) -> int:
    """Hub processes running on the database at ``url`` (their rows in ``hub_runs``)."""
    db = Database.connect(url, pool_size=1)
    try:
        with db.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).where(HubRun.stopped_at.is_(None))) or 0)
    finally:
        db.dispose()


@contextmanager
def api_server(url: str, config: Path, data_dir: Path, processes: int = 1) -> Iterator[str]:
    """``hub serve --no-worker --processes N`` in its own process; yields its base URL once
    every API process runs."""
    port = bench_api.free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            HUB,
            "serve",
            "--no-worker",
            "--port",
            str(port),
            *(["--processes", str(processes)] if processes > 1 else []),
        ],
        env=hub_env(url, config, data_dir),
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("hub serve did not start") from None
                time.sleep(0.1)
        if processes > 1:
            while api_runs(url) < processes:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("hub serve's API processes did not all start")
                time.sleep(0.2)
            time.sleep(2.0)  # the last one registers its run just before it listens
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)


@contextmanager
def hub_worker(url: str, config: Path, data_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    worker = subprocess.Popen([HUB, "worker", "--worker-id", "e2e"], env=hub_env(url, config, data_dir))
    try:
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)


def source_token(url: str) -> str:
    db = Database.connect(url, pool_size=1)
    try:
        return (
            ApiKeyService(db)
            .create(f"bench-{uuid.uuid4().hex[:6]}", "source", actor="bench", agency_codes=["000.00.18.H42"])
            .token
        )
    finally:
        db.dispose()


@dataclass
class Intake:
    """What posting the changes gave: per change its message ids and when its request began."""

    elapsed: float
    latencies: list[float] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    started: float = 0.0


async def post_changes(base: str, token: str, n: int, *, batch: int, clients: int) -> Intake:
    """Create ``n`` dossiers: one per request (``batch`` 1) or ``batch`` per batch request."""
    headers = {"Authorization": f"Bearer {token}"}
    groups = [list(range(i, min(n, i + batch))) for i in range(0, n, batch)]
    bodies = [
        ("/api/v1/dossiers", {"dossier": dossier(g[0])})
        if batch == 1
        else ("/api/v1/dossiers/batch", {"changes": [{"op": "upsert", "dossier": dossier(i)} for i in g]})
        for g in groups
    ]
    work = iter(bodies)
    result = Intake(elapsed=0.0)
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(
        base_url=base, headers=headers, connector=connector, timeout=timeout
    ) as api:

        async def client() -> None:
            for path, body in work:
                wall, started = time.time(), time.perf_counter()
                async with api.post(path, json=body) as response:
                    answer = await response.json()
                    if response.status >= 300:
                        raise RuntimeError(f"HTTP {response.status}: {str(answer)[:300]}")
                result.latencies.append(time.perf_counter() - started)
                for item in answer["results"] if batch > 1 else [answer]:
                    for message_id in item["message_ids"]:
                        result.sent_at[message_id] = wall

        result.started = time.time()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        result.elapsed = time.perf_counter() - started
    return result


def wait_for_worker(db: Database) -> None:
    """Until the worker has registered (its row in ``workers``), then its watch's start-up.

    A fixed pause of 2 s was too short on a loaded machine (the worker registered 8–10 s after
    its start at load 8–10): the first changes then waited for the worker's imports, and p50
    showed start-up rather than delivery."""
    deadline = time.monotonic() + 120
    while True:
        with db.engine.connect() as conn:
            if conn.scalar(select(func.count()).select_from(DeliveryWorker)):
                break
        if time.monotonic() > deadline:
            raise RuntimeError("e2e: the worker did not register within 2 minutes")
        time.sleep(0.1)
    time.sleep(1.0)  # LISTEN / the SQLite watch begin just after the registration


def delivered(db: Database) -> int:
    with db.engine.connect() as conn:
        count = conn.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.state == MessageState.DELIVERED.value)
        )
    return int(count or 0)


@dataclass
class Row:
    case: str
    unit: str
    values: dict[str, str] = field(default_factory=dict)


def intake_case(
    backend: Backend, workdir: Path, n: int, batch: int, processes: int = 1
) -> tuple[float, float, float]:
    """(changes/s, request p50 ms, request p95 ms) of ``n`` creates with no worker running, to
    ``processes`` API processes."""
    config = workdir / f"intake-{uuid.uuid4().hex[:6]}.toml"
    write_config(config, "http://127.0.0.1:9/unused", poll=WORKER_POLL_SECONDS)
    clients = SINGLE_CLIENTS if batch == 1 else BATCH_CLIENTS
    with api_server(backend.url, config, workdir / "data", processes) as base:
        token = source_token(backend.url)
        result = asyncio.run(post_changes(base, token, n, batch=batch, clients=clients))
    q = statistics.quantiles(result.latencies, n=20)
    rate = n / result.elapsed
    print(
        f"[{backend.name}] intake batch={batch} clients={clients} api processes={processes}: "
        f"{n} changes in {result.elapsed:.2f}s "
        f"→ {rate:,.0f} changes/s; request p50 {q[9] * 1000:.1f} ms p95 {q[18] * 1000:.1f} ms",
        flush=True,
    )
    return rate, q[9] * 1000, q[18] * 1000


def e2e_case(
    backend: Backend, workdir: Path, n: int, batch: int, processes: int = 1
) -> tuple[float, float, float]:
    """(changes/s request→arrival, latency p50 ms, p99 ms) with a worker draining meanwhile."""
    record = workdir / f"e2e-{uuid.uuid4().hex[:6]}.tsv"
    config = workdir / f"e2e-{uuid.uuid4().hex[:6]}.toml"
    clients = SINGLE_CLIENTS if batch == 1 else BATCH_CLIENTS
    sink, sink_url = start_sink(record)
    try:
        with ExitStack() as stack:
            db = Database.connect(backend.url, pool_size=1)
            stack.callback(db.dispose)
            write_config(config, sink_url, poll=WORKER_POLL_SECONDS)
            base = stack.enter_context(api_server(backend.url, config, workdir / "data", processes))
            stack.enter_context(hub_worker(backend.url, config, workdir / "data"))
            token = source_token(backend.url)
            wait_for_worker(db)
            result = asyncio.run(post_changes(base, token, n, batch=batch, clients=clients))
            deadline = time.monotonic() + 600
            while delivered(db) < n:
                if time.monotonic() > deadline:
                    raise RuntimeError("e2e: not everything was delivered in 10 minutes")
                time.sleep(0.2)
    finally:
        arrivals = stop_sink(sink, record)
    latencies = [(arrivals[m] - sent) * 1000 for m, sent in result.sent_at.items() if m in arrivals]
    last = max(arrivals.values())
    rate = n / (last - result.started)
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    print(
        f"[{backend.name}] e2e batch={batch} clients={clients}: {n} changes, {len(arrivals)} arrived; "
        f"{rate:,.0f} changes/s first request→last arrival; request→arrival p50 {p50:.0f} ms "
        f"p99 {p99:.0f} ms (intake alone took {result.elapsed:.2f}s)",
        flush=True,
    )
    return rate, p50, p99


async def _sink_ceiling(url: str, n: int) -> float:
    body = json.dumps(PAYLOAD, ensure_ascii=False).encode()
    work = iter(range(n))
    connector = aiohttp.TCPConnector(limit=SINK_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for i in work:
                headers = {"Content-Type": "application/json", "X-Message-Id": f"raw-{i}"}
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"sink answered {response.status}")

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(SINK_CONNECTIONS)))
        return n / (time.perf_counter() - started)


def sink_ceiling_case(workdir: Path, n: int) -> float:
    record = workdir / f"raw-{uuid.uuid4().hex[:6]}.tsv"
    sink, url = start_sink(record)
    try:
        rate = asyncio.run(_sink_ceiling(url, n))
    finally:
        stop_sink(sink, record)
    print(f"raw aiohttp → sink ({SINK_CONNECTIONS} connections): {n} POSTs → {rate:,.0f} req/s", flush=True)
    return rate


async def _procrastinate_drain(db_url: str, sink_url: str, n: int) -> None:
    import procrastinate  # the ``bench`` extra

    # Its warning about an app defined in ``__main__`` concerns workers in other processes
    # importing the tasks; this worker runs here.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=db_url))
    body = json.dumps(PAYLOAD, ensure_ascii=False).encode()
    holder: dict[str, aiohttp.ClientSession] = {}

    @app.task(name="deliver", queue="deliver")
    async def deliver(n: int) -> None:
        headers = {"Content-Type": "application/json", "X-Message-Id": f"job-{n}"}
        async with holder["session"].post(sink_url, data=body, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"sink answered {response.status}")

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        for offset in range(0, n, 1000):
            await deliver.batch_defer_async(*({"n": i} for i in range(offset, min(n, offset + 1000))))
        connector = aiohttp.TCPConnector(limit=SINK_CONNECTIONS)
        async with aiohttp.ClientSession(connector=connector) as session:
            holder["session"] = session
            await app.run_worker_async(
                queues=["deliver"], concurrency=SINK_CONNECTIONS, wait=False, install_signal_handlers=False
            )


@contextmanager
def fresh_backend(name: str, workdir: Path) -> Iterator[Backend]:
    """A migrated database of its own for one case, removed afterwards."""
    backend = make_backend(name, workdir)
    try:
        yield backend
    finally:
        backend.cleanup()


def procrastinate_case(workdir: Path, n: int) -> float:
    """First→last arrival rate of ``n`` procrastinate jobs, each one POST to the sink."""
    backend = make_backend("postgresql", workdir)
    record = workdir / f"procrastinate-{uuid.uuid4().hex[:6]}.tsv"
    sink, url = start_sink(record)
    try:
        db_url = backend.url.replace("postgresql+psycopg://", "postgresql://")
        started = time.monotonic()
        asyncio.run(_procrastinate_drain(db_url, url, n))
        wall = time.monotonic() - started
    finally:
        arrivals = stop_sink(sink, record)
        backend.cleanup()
    times = sorted(arrivals.values())
    rate = (len(times) - 1) / (times[-1] - times[0])
    print(
        f"procrastinate + aiohttp, 1 process, concurrency {SINK_CONNECTIONS}: {len(arrivals)} of {n} "
        f"delivered; {rate:,.0f}/s first→last arrival ({wall:.1f}s with deferring)",
        flush=True,
    )
    return rate


def drain_args(workers: int) -> argparse.Namespace:
    """The options of :func:`benchmarks.bench_delivery.drain` for the table's drains (its
    defaults; the poll is the worker's own: the messages are there before it starts)."""
    return argparse.Namespace(
        concurrency=64,
        batch_size=100,
        flush_ms=20.0,
        poll=WORKER_POLL_SECONDS,
        dossiers=10_000,
        transport="aiohttp",
        workers=workers,
    )


def drain_case(backend: Backend, workdir: Path, n: int, workers: int) -> float:
    return drain(backend, drain_args(workers), n, workdir)


def table(args: argparse.Namespace, workdir: Path) -> None:
    n = args.n
    names = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    rows: list[Row] = []
    raw = Row("raw aiohttp client → sink, 64 connections (ceiling)", "req/s")
    raw.values = dict.fromkeys(names, f"{sink_ceiling_case(workdir, n):,.0f}")
    rows.append(raw)
    peer = Row("procrastinate 3 + aiohttp, 1 process, concurrency 64", "jobs/s")
    if "postgresql" in names:
        try:
            peer.values["postgresql"] = f"{procrastinate_case(workdir, n):,.0f}"
        except ImportError:
            peer.values["postgresql"] = "(not installed)"
    rows.append(peer)
    drain1 = Row("hub worker drain, 1 process", "deliveries/s")
    drain2 = Row("hub worker drain, 2 processes", "deliveries/s")
    api = f", {args.api_processes} API processes" if args.api_processes > 1 else ""
    single = Row(f"intake POST /dossiers, {SINGLE_CLIENTS} clients{api}", "changes/s (req p95)")
    batched = Row(
        f"intake POST /dossiers/batch ×{args.batch}, {BATCH_CLIENTS} clients{api}", "changes/s (req p95)"
    )
    e2e1 = Row("e2e single → worker → sink", "changes/s (p50/p99 ms)")
    e2eb = Row(f"e2e batch ×{args.batch} → worker → sink", "changes/s (p50/p99 ms)")
    rows += [drain1, drain2, single, batched, e2e1, e2eb]
    for name in names:
        for count, row in ((1, drain1), (2, drain2)):
            with fresh_backend(name, workdir) as backend:
                row.values[name] = f"{drain_case(backend, workdir, n, count):,.0f}"
        for batch, row in ((1, single), (args.batch, batched)):
            with fresh_backend(name, workdir) as backend:
                rate, _p50, p95 = intake_case(backend, workdir, n, batch, args.api_processes)
                row.values[name] = f"{rate:,.0f} ({p95:.0f} ms)"
        for batch, row in ((1, e2e1), (args.batch, e2eb)):
            with fresh_backend(name, workdir) as backend:
                rate, p50, p99 = e2e_case(backend, workdir, n, batch, args.api_processes)
                row.values[name] = f"{rate:,.0f} ({p50:.0f}/{p99:.0f})"
    print()
    load = os.getloadavg()[0]
    print(f"n={n} per case, cpus={os.cpu_count()}, python {sys.version.split()[0]}, load {load:.1f}")
    header = ["case", "unit", *names]
    lines = [[row.case, row.unit, *(row.values.get(name, "–") for name in names)] for row in rows]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    for line in [header, ["-" * w for w in widths], *lines]:
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) + " |")


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("-n", type=int, default=3000, help="changes (messages, jobs) per case")
    parser.add_argument("--batch", type=int, default=100, help="changes per batch request")
    parser.add_argument("--table", action="store_true", help="every case and peer, one table")
    parser.add_argument(
        "--single", action="store_true", help="e2e: the single route (default: batch requests of --batch)"
    )
    parser.add_argument(
        "--api-processes", type=int, default=1, help="API processes of hub serve (its --processes)"
    )
    parser.add_argument("--intake", action="store_true", help="only the intake cases (single, batch)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-e2e-") as tmp:
        workdir = Path(tmp)
        if args.table:
            table(args, workdir)
            return
        for name in backend_names(args):
            if args.intake:
                for batch in (1, args.batch):
                    with fresh_backend(name, workdir) as backend:
                        intake_case(backend, workdir, args.n, batch, args.api_processes)
                continue
            with fresh_backend(name, workdir) as backend:
                e2e_case(backend, workdir, args.n, 1 if args.single else args.batch, args.api_processes)


if __name__ == "__main__":
    main()
