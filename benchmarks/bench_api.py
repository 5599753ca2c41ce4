"""HTTP API throughput: intake creates, status changes, citizen lookups and SMS replies against
``hub serve``-equivalent uvicorn in a separate process, N requests with C concurrent clients.

Usage::

    .venv/bin/python -m benchmarks.bench_api                       # SQLite, 500 requests, 16 clients
    .venv/bin/python -m benchmarks.bench_api --db postgresql+psycopg://postgres@127.0.0.1:5432/test -n 1000

The server runs in its own process (``hub serve --no-worker``) so client and server do not share
a GIL; the database is fresh (a temporary SQLite file, or a new PostgreSQL schema dropped at the
end). Prints requests per second, p50/p95 latency and the server's CPU time per request per
case (the last is the steadiest number on a shared machine); ``--cases intake`` or ``status``
stops after those. Batch intake: ``benchmarks.bench_e2e --table``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from hub.auth.keys import ApiKeyService
from hub.db.migrate import upgrade
from hub.db.session import Database
from schemas.timefmt import VN_TZ
from tests.cli.test_cli_commands import hub_env
from tests.sample_dossier import dossier_body

HUB = str(Path(sys.executable).with_name("hub"))
T0 = datetime.now(VN_TZ).replace(microsecond=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fresh_database(postgres_url: str | None, tmp: Path) -> Iterator[str]:
    """The URL of a fresh, migrated database: a new schema of the PostgreSQL at
    ``postgres_url`` (dropped on exit), else a SQLite file in ``tmp``."""
    schema = None
    if postgres_url:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(postgres_url)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = f"{postgres_url}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmp / 'hub.db'}"
    try:
        upgrade(url)
        yield url
    finally:
        if schema:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


async def drive(
    n: int, concurrency: int, call: Callable[[int], Awaitable[httpx.Response]]
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue = iter(range(n))

    async def client() -> None:
        for i in queue:
            started = time.perf_counter()
            response = await call(i)
            latencies.append(time.perf_counter() - started)
            if response.status_code >= 300:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process and of its live descendants (Linux /proc): the API
    processes of ``hub serve --processes N`` are children of the one started."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return own + sum(cpu_seconds(child) for child in children)


class Reporter:
    """Prints one line per case, with the server's CPU time per request since the last line."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.mark = cpu_seconds(server_pid)

    def __call__(self, name: str, n: int, elapsed: float, latencies: list[float]) -> None:
        q = statistics.quantiles(latencies, n=20)
        cpu = cpu_seconds(self.server_pid)
        used, self.mark = cpu - self.mark, cpu
        print(
            f"{name:16} {n:6d} req  {n / elapsed:8.1f} req/s  "
            f"p50 {q[9] * 1000:6.1f} ms  p95 {q[18] * 1000:6.1f} ms  "
            f"server CPU {used * 1000 / n:5.2f} ms/req",
            flush=True,
        )


async def bench(base: str, token: str, n: int, concurrency: int, cases: set[str], report: Reporter) -> None:
    day = T0.strftime("%y%m%d")
    codes = [f"000.00.18.H42-{day}-{i + 1:04d}" for i in range(n)]
    bodies = [{"dossier": dossier_body(code, received_at=T0)} for code in codes]
    auth = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=auth, limits=limits, timeout=60) as api:
        elapsed, lat = await drive(n, concurrency, lambda i: api.post("/api/v1/dossiers", json=bodies[i]))
        report("intake create", n, elapsed, lat)
        if "status" not in cases:
            return
        change = {"status": 4, "at": (T0 + timedelta(hours=1)).isoformat(), "handler": "Trần Thị Bình"}
        elapsed, lat = await drive(
            n, concurrency, lambda i: api.post(f"/api/v1/dossiers/{codes[i]}/status", json=change)
        )
        report("status change", n, elapsed, lat)
        if "lookup" not in cases:
            return
        params = {"id_number": "037099001234"}
        elapsed, lat = await drive(
            n, concurrency, lambda i: api.get(f"/api/v1/lookup/{codes[i]}", params=params)
        )
        report("lookup (json)", n, elapsed, lat)
        elapsed, lat = await drive(
            n, concurrency, lambda i: api.get("/tra-cuu", params={"MHS": codes[i], "SGT": "037099001234"})
        )
        report("lookup (html)", n, elapsed, lat)
        sms_headers = {"X-Gateway-Secret": "bench-secret"}
        elapsed, lat = await drive(
            n,
            concurrency,
            lambda i: api.post(
                "/api/v1/sms/inbound",
                data={"src": "+84912345678", "msgbody": f"HS {codes[i]}"},
                headers=sms_headers,
            ),
        )
        report("sms reply", n, elapsed, lat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="requests per case (at most 9999)")
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--db", help="PostgreSQL URL (default: a temporary SQLite file)")
    parser.add_argument("--processes", type=int, default=1, help="API processes (hub serve --processes)")
    parser.add_argument(
        "--cases",
        choices=["intake", "status", "lookup"],
        default="lookup",
        help="stop after intake creates, after status changes, or run everything (default)",
    )
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    with fresh_database(opts.db, tmp) as url:
        db = Database.connect(url)
        token = (
            ApiKeyService(db).create("bench", "source", actor="bench", agency_codes=["000.00.18.H42"]).token
        )
        db.dispose()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = hub_env(
            url,
            tmp,
            HUB_LOG_LEVEL="WARNING",
            HUB_LOOKUP__RATE_LIMIT_PER_MINUTE="0",
            HUB_LOOKUP__SMS_SHARED_SECRET="bench-secret",
            HUB_ENDPOINTS=json.dumps(
                {
                    "dvcqg": {"kind": "webhook", "url": "http://127.0.0.1:9/x"},
                    "lgsp": {"kind": "webhook", "url": "http://127.0.0.1:9/y"},
                }
            ),
            HUB_ROUTING=json.dumps(
                [{"kinds": ["dossier.sync", "dossier.progress"], "endpoints": ["dvcqg", "lgsp"]}]
            ),
        )
        server = subprocess.Popen(
            [HUB, "serve", "--no-worker", "--port", str(port), "--processes", str(opts.processes)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            backend = "postgresql" if opts.db else "sqlite"
            print(
                f"backend={backend} n={opts.n} concurrency={opts.concurrency} "
                f"(server: hub serve, {opts.processes} process(es), pid {server.pid}, outbox to 2 endpoints)",
                flush=True,
            )
            cases = (
                {"intake"}
                | ({"status"} if opts.cases != "intake" else set())
                | ({"lookup"} if opts.cases == "lookup" else set())
            )
            asyncio.run(bench(base, token, opts.n, opts.concurrency, cases, Reporter(server.pid)))
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
