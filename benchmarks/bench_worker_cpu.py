"""The worker's CPU per delivery, measured in-process: what a loaded machine cannot blur.

A :class:`hub.delivery.Worker` runs in this process against a fresh database (SQLite file or
PostgreSQL on 127.0.0.1) and the webhook sink (:mod:`hub.simulators.sink`, its own process, so
its CPU is not counted); N messages are inserted first, then drained. Reported: the process's
CPU time (``time.process_time``: every thread, the database driver's included) per delivered
message, and the wall time (which other processes on the machine stretch; the CPU time they do
not). The raw-client line is the same N POSTs from one aiohttp session, 64 at a time: the
floor of the HTTP work alone. The worker's deliveries running (of its 64 slots) are sampled
every 20 ms during the drain: how full it keeps its slots. Both run on ``--loop``: uvloop by
default, the loop ``hub worker`` runs (:func:`hub.runtime.event_loop_factory`), or asyncio's
own. As ``hub worker`` does once started, the heap is settled first
(:func:`hub.runtime.settle_heap`); the CPU time spent in the cyclic garbage collector (every
thread) is printed too.

``--profile PREFIX`` writes ``PREFIX-<backend>.txt``: the event loop thread's functions by CPU
time (:mod:`cProfile` timed by ``time.process_time``; the database threads are not in it).

``--store-only CLAIM`` times the store alone instead (no worker, no sink): claims of ``CLAIM``
messages (``claim_sync``) and their results written in batches of ``--batch-size``
(``complete_sync``), as CPU per message for each.

Example::

    .venv/bin/python -m benchmarks.bench_worker_cpu --backend both -n 4000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import logging
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import uvloop

from benchmarks.bench_delivery import (
    PAYLOAD,
    Backend,
    PgServerCpu,
    backend_names,
    enqueue_batch,
    make_backend,
    start_sink,
    stop_sink,
)
from connectors.settings import EndpointSettings
from hub.config import Settings, WorkerSettings
from hub.db.base import utcnow
from hub.db.session import Database
from hub.delivery import Worker
from hub.delivery.sql_store import SqlOutboxStore
from hub.delivery.store import Completion
from hub.outbox.transitions import AttemptOutcome
from hub.runtime import settle_heap

CONCURRENCY = 64
#: ``--loop`` choices: the event loop each drain runs on.
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}
_T = TypeVar("_T")


class _CollectorClock:
    """CPU seconds spent in the cyclic garbage collector, on whichever thread it ran
    (:data:`gc.callbacks`; a collection holds the GIL, so its start and stop are on one thread)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._started

    def __enter__(self) -> _CollectorClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self)


def _run(coroutine: Coroutine[Any, Any, _T], loop: str) -> _T:
    """``coroutine`` run to its end on a new event loop of the kind named ``loop``."""
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(coroutine)


async def _drain(
    db_url: str, sink_url: str, n: int, batch_size: int
) -> tuple[float, float, float, Any, list[int]]:
    """Drain ``n`` messages; returns CPU, event-loop CPU and wall seconds, the worker's stats and
    its deliveries running, sampled every 20 ms from its first delivery to its last."""
    settings = Settings(
        database_url=db_url,
        endpoints={"sink": EndpointSettings(kind="webhook", url=sink_url, max_in_flight=CONCURRENCY)},
        worker=WorkerSettings(concurrency=CONCURRENCY, batch_size=batch_size, heartbeat_seconds=15),
    )
    db = Database.connect(db_url, pool_size=4)
    worker = Worker(settings, db, process_bulk_jobs=False)
    stop = asyncio.Event()
    cpu0, loop0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
    task = asyncio.create_task(worker.run(stop))
    running: list[int] = []
    while worker.stats.delivered + worker.stats.dead < n or worker.ledger.unwritten:
        if task.done():
            task.result()
            raise RuntimeError("worker stopped early")
        await asyncio.sleep(0.02)
        if 0 < worker.stats.delivered + worker.stats.dead < n:
            running.append(worker.in_flight)
    cpu, loop, wall = time.process_time() - cpu0, time.thread_time() - loop0, time.perf_counter() - wall0
    stop.set()
    await task
    db.dispose()
    return cpu, loop, wall, worker.stats, running


async def _raw(sink_url: str, n: int) -> tuple[float, float]:
    body = json.dumps(PAYLOAD, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    count = iter(range(n))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def client() -> None:
            for i in count:
                call = {**headers, "X-Message-Id": f"raw-{i}"}
                async with session.post(sink_url, data=body, headers=call) as answer:
                    await answer.read()

        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return time.process_time() - cpu0, time.perf_counter() - wall0


def _store_only(url: str, n: int, claim: int, batch_size: int) -> tuple[float, float, float, float]:
    """CPU seconds of claiming ``n`` messages ``claim`` at a time, and of writing their results:
    this process's, then (PostgreSQL) the database server's for each (:class:`PgServerCpu`)."""
    db = Database.connect(url, pool_size=2)
    store = SqlOutboxStore(db)
    server = PgServerCpu(url) if db.is_postgres else None
    claiming = writing = server_claiming = server_writing = 0.0
    done = claims = 0
    try:
        while done < n:
            claims += 1
            server_start = server() if server is not None else 0.0
            start = time.process_time()
            claimed = store.claim_sync({"sink": claim}, f"bench:{claims}#{claims}", 60)
            middle = time.process_time()
            server_middle = server() if server is not None else 0.0
            if not claimed:
                raise RuntimeError("nothing left to claim")
            now = utcnow()
            results = [
                Completion(m.seq, m.lease_token, m.attempt_no, AttemptOutcome.DELIVERED, now, now, m.manual)
                for m in claimed
            ]
            middle_end = time.process_time()
            for offset in range(0, len(results), batch_size):
                store.complete_sync(results[offset : offset + batch_size], "bench")
            claiming += middle - start
            writing += time.process_time() - middle_end
            if server is not None:
                server_claiming += server_middle - server_start
                server_writing += server() - server_middle
            done += len(claimed)
    finally:
        if server is not None:
            server.close()
        db.dispose()
    return claiming, writing, server_claiming, server_writing


def run(backend: Backend, args: argparse.Namespace, workdir: Path) -> None:
    if args.store_only:
        db = Database.connect(backend.url, pool_size=2)
        enqueue_batch(db, args.n, dossiers=args.dossiers)
        db.dispose()
        claiming, writing, server_claiming, server_writing = _store_only(
            backend.url, args.n, args.store_only, args.batch_size
        )
        print(
            f"[{backend.name}] store only, {args.n} messages: claiming {1000 * claiming / args.n:.4f} ms "
            f"and writing results {1000 * writing / args.n:.4f} ms CPU per message "
            f"(claims of {args.store_only}, batches of {args.batch_size})"
        )
        if backend.name == "postgresql":
            print(
                f"[{backend.name}] PostgreSQL server CPU per message: claiming "
                f"{1000 * server_claiming / args.n:.4f} ms, "
                f"writing results {1000 * server_writing / args.n:.4f} ms"
            )
        return
    record = workdir / f"arrivals-{backend.name}.tsv"
    sink, url = start_sink(record)
    try:
        db = Database.connect(backend.url, pool_size=2)
        enqueue_batch(db, args.n, dossiers=args.dossiers)
        db.dispose()
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        if profiler is not None:
            profiler.enable()
        settle_heap()  # as ``hub worker`` does once started
        with _CollectorClock() as collector:
            cpu, loop, wall, stats, running = _run(
                _drain(backend.url, url, args.n, args.batch_size), args.loop
            )
        if profiler is not None:
            profiler.disable()
            out = Path(f"{args.profile}-{backend.name}.txt")
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(45)
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(60)
            out.write_text(text.getvalue(), encoding="utf-8")
            print(f"profile written to {out} (cProfile slows the drain: its CPU figure is not comparable)")
        print(
            f"[{backend.name}] worker drain of {args.n}: {1000 * cpu / args.n:.3f} ms CPU per delivery "
            f"of which {1000 * loop / args.n:.3f} ms on the event loop's thread "
            f"and {1000 * collector.seconds / args.n:.3f} ms in the garbage collector "
            f"({cpu:.2f} s CPU, {wall:.2f} s wall → {args.n / wall:,.0f}/s wall, {args.loop}); {stats}"
        )
        if running:
            full = sum(1 for busy in running if busy == CONCURRENCY) / len(running)
            print(
                f"[{backend.name}] slots busy while draining: mean {statistics.fmean(running):.1f} "
                f"of {CONCURRENCY}, all {CONCURRENCY} in {100 * full:.0f} % of {len(running)} samples"
            )
        if args.raw:
            cpu, wall = _run(_raw(url, args.n), args.loop)
            print(
                f"[raw aiohttp] {args.n} POSTs: {1000 * cpu / args.n:.3f} ms CPU per request "
                f"({wall:.2f} s wall → {args.n / wall:,.0f}/s wall, {args.loop})"
            )
    finally:
        stop_sink(sink, record)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("-n", type=int, default=4000)
    parser.add_argument("--dossiers", type=int, default=10_000, help="distinct ordering keys")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--raw", action="store_true", help="also time the raw aiohttp client")
    parser.add_argument(
        "--loop",
        choices=sorted(LOOPS),
        default="uvloop",
        help="event loop of the drain and the raw client (default uvloop, as 'hub worker' runs)",
    )
    parser.add_argument("--profile", metavar="PREFIX", help="write a profile to PREFIX-<backend>.txt")
    parser.add_argument(
        "--store-only", type=int, metavar="CLAIM", help="time the store's claims and results alone"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="hub-bench-cpu-") as tmp:
        for name in backend_names(args):
            backend = make_backend(name, Path(tmp))
            try:
                run(backend, args, Path(tmp))
            finally:
                with contextlib.suppress(Exception):
                    backend.cleanup()


if __name__ == "__main__":
    main()
