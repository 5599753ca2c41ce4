"""The hub's one composition root: how every hub process starts and stops (docs/architecture.md).

In order: settings (given) → logging (:func:`hub.logging.configure_logging`, PII masked, with
the correlation id) → database connection and checks (:func:`open_database`: what cannot
heal — no such database, credentials refused, read-only, schema not migrated — stops the start
with one line; an unreachable server is tried 3 times over about 10 s) → telemetry
(:attr:`RunningHub.telemetry`: one Prometheus registry and, when ``tracing.enabled``, one
tracer, shared by the API and the worker of the process) → the HTTP API on uvicorn and/or the
delivery worker (:func:`start`; a worker-only process serves ``/metrics`` on
``metrics.worker_port`` when it is set) → signals (:func:`until_signalled`: the first SIGTERM
or SIGINT stops gracefully and the process exits 0, a second one forces the stop) → disposal of
the worker's connectors, the server, the tracer and the database. With ``api.processes`` above
1, :func:`run_processes` supervises that many API processes on one port (docs/deployment.md,
"Several API processes"). Once running, a database
outage is reported once per change of state and retried with backoff by every loop through the
shared :class:`~hub.db.availability.OutageReporter` of :attr:`RunningHub.health`, which
``/readyz`` reads.

``hub serve`` (API and worker), ``hub worker`` (worker only) and ``hub demo`` start the hub
here, and so do the tests and benchmarks (:func:`run_in_thread` runs it on an event loop of
its own in a background thread). Heavy libraries are imported only when a hub starts, so
importing this module costs nothing to light commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from schemas.errors import ConfigurationError, HubError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    import uvicorn
    from fastapi import FastAPI
    from opentelemetry.sdk.trace.export import SpanExporter

    from connectors.http import TransportKind
    from hub.config import Settings
    from hub.db.session import Database
    from hub.delivery.worker import Worker
    from hub.health import HubHealth
    from hub.services.outages import OutageRecorder
    from hub.telemetry.process import Telemetry

log = logging.getLogger("hub.runtime")

#: Exit statuses of :func:`run`: a requested (graceful) stop, and a stop forced by a second signal.
EXIT_OK = 0
EXIT_FORCED = 1
#: Connection pool of a process running the API (request threads), and of a worker-only process.
API_POOL_SIZE = 10
WORKER_POOL_SIZE = 4
#: While stopping, how often to check whether the stop was forced meanwhile.
FORCE_CHECK_SECONDS = 0.2
#: Seconds :func:`run_in_thread` waits for the hub to start or to stop.
THREAD_TIMEOUT_SECONDS = 60.0
#: A database unreachable at start is tried again after each of these pauses, then the hub
#: exits non-zero with one line (3 tries over about 10 s): an orchestrator restarting the
#: process, or an operator, sees the cause at once instead of a process that never works.
START_RETRY_PAUSES = (3.0, 6.0)
#: The collector's youngest generation is collected once this many container objects were made
#: and not freed since its last collection (Python's default: 700); see :func:`settle_heap`.
GC_YOUNG_THRESHOLD = 10_000


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a dependency on Linux and macOS: about a third
    less CPU per API request than asyncio's own loop, ``benchmarks/bench_api.py``); ``None``,
    asyncio's default, elsewhere."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - declared for every platform uvloop supports
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def setup_logging(level: str, *, json_logs: bool = True) -> None:
    """Masked logging for the whole process (Decree 13/2023: no personal data in logs)."""
    from hub.logging import configure_logging

    configure_logging(level, json_lines=json_logs)


def check_schema(db: Database) -> None:
    """Refuse to run on a database whose schema is not at the latest migration."""
    from hub.db.migrate import current_heads, expected_heads

    heads = expected_heads()
    with db.reader.connect() as connection:
        current = current_heads(connection)
    if current != heads:
        found = ", ".join(sorted(current)) or "empty"
        raise ConfigurationError(
            f"database schema is at {found}, expected {', '.join(sorted(heads))}: run 'hub db upgrade' first",
            message_vi="cơ sở dữ liệu chưa được cập nhật; hãy chạy 'hub db upgrade'",
        )


def check_database(db: Database) -> None:
    """The database answers, is at the latest migration and accepts writes."""
    from hub.db.availability import check_writable

    check_schema(db)
    # A write transaction (rolled back): on SQLite it waits its turn at the write lock like the
    # hub's other writers (docs/delivery.md §9.3), not in SQLite's busy handler, where a busy
    # worker of another process could starve it for the whole busy timeout.
    with db.writer_gate, db.engine.connect() as connection:
        check_writable(connection)


def open_database(
    settings: Settings,
    *,
    pool_size: int = API_POOL_SIZE,
    retry_pauses: tuple[float, ...] = START_RETRY_PAUSES,
) -> Database:
    """Connect to ``settings.database_url`` and check it (disposed again on failure).

    What cannot heal by waiting (no such database, credentials refused, read-only, schema not
    migrated) raises at once; an unreachable server is tried again after each of
    ``retry_pauses`` before giving up. Either way the error is one line
    (:func:`hub.db.availability.start_error`).
    """
    from hub.db.availability import check_sqlite_location, diagnose, start_error
    from hub.db.session import Database

    url = settings.database_url
    check_sqlite_location(url)
    db = Database.connect(url, pool_size=pool_size)
    started = time.monotonic()
    try:
        for tries, pause in enumerate((*retry_pauses, None), start=1):
            try:
                check_database(db)
                return db
            except HubError:
                raise
            except Exception as exc:  # noqa: BLE001  # diagnosed: retried or raised as one line
                diagnosis = diagnose(exc)
                if not diagnosis.heals or pause is None:
                    raise start_error(
                        diagnosis, url, tries=tries, seconds=time.monotonic() - started
                    ) from None
            time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover - the last try returns or raises
    except BaseException:
        db.dispose()
        raise


def listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: any free port), or a clear configuration error.

    ``reuse_port``: ``SO_REUSEPORT``, so that the API processes of :func:`run_processes` each
    listen on the same port and the kernel spreads the connections among them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - Windows
            sock.close()
            raise ConfigurationError(
                "several API processes need SO_REUSEPORT (Linux): set api.processes to 1",
                message_vi="nhiều tiến trình API cần SO_REUSEPORT (Linux): đặt api.processes = 1",
            )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            message_vi=f"không mở được cổng {host}:{port}",
        ) from None
    return sock


def api_server(app: FastAPI, sock: socket.socket, *, access_log: bool = True) -> uvicorn.Server:
    """The uvicorn server of the API on ``sock``; the runtime, not uvicorn, handles signals."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    # proxy_headers off: forwarded headers are believed only from api.trusted_proxies (hub/api/security.py)
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=access_log, lifespan="on", proxy_headers=False
    )
    server = uvicorn.Server(config)
    # uvicorn's own handling would re-raise the signal after its shutdown (exit status -15)
    # and would not stop the worker; :func:`until_signalled` does both.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    return server


class RunningHub:
    """A started hub: its settings, database, API application and delivery worker.

    Made by :func:`start`, which stops it on exit. :meth:`request_stop` asks every part to stop
    gracefully (the worker finishes or releases its in-flight deliveries, docs/delivery.md);
    :meth:`force_stop` stops without waiting.
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        worker_options: dict[str, Any] | None = None,
        span_exporter: SpanExporter | None = None,
    ) -> None:
        from hub.health import HubHealth

        self.settings = settings
        self.db = db
        #: Shared by the API's readiness probe and the worker (:mod:`hub.health`).
        self.health: HubHealth = HubHealth()
        #: Metrics and traces of this process, shared by its API and its worker (:mod:`hub.telemetry`).
        self.telemetry: Telemetry = build_telemetry(settings, db, span_exporter=span_exporter)
        self.metrics_port: int | None = None
        self._metrics_server: uvicorn.Server | None = None
        self._metrics_task: asyncio.Task[None] | None = None
        self.app: FastAPI | None = None
        self.base_url: str | None = None
        self.port: int | None = None
        self.worker: Worker | None = None
        self.forced = False
        self._forced = asyncio.Event()
        self._raised = False  # a part's failure was raised by :meth:`wait`
        self._server: uvicorn.Server | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._worker_stop = asyncio.Event()
        self._worker_task: asyncio.Task[None] | None = None
        #: ``worker_id`` / ``transport`` for :class:`~hub.delivery.worker.Worker` (its defaults otherwise).
        self._worker_options = dict(worker_options or {})
        #: This process's run and the database outages it saw (:mod:`hub.services.outages`).
        self.outages: OutageRecorder | None = None
        self._outages_stop = asyncio.Event()
        self._outages_task: asyncio.Task[None] | None = None
        #: The scheduled report exports, run in a worker process (docs/reports.md §10).
        self._exports_stop = asyncio.Event()
        self._exports_task: asyncio.Task[None] | None = None

    async def _start_outage_recorder(self, kind: str) -> None:
        """Register this run (recording the gap since the last run as a hub outage, if any)
        and keep recording its signs of life and the database outages it sees."""
        from hub.services.outages import OutageRecorder

        self.outages = recorder = OutageRecorder(self.db, self.settings.outages, self.health.database, kind)
        await asyncio.to_thread(recorder.start)
        self._outages_task = asyncio.create_task(recorder.run(self._outages_stop), name="hub-outages")

    async def _record_signing_config(self) -> None:
        """Audit the configured signing keys (:func:`record_signing_config`) once the database
        answers: an outage that heals, right after the start, delays it and the parts started
        after it; it does not stop the process (docs/delivery.md §13)."""
        from hub.db.availability import diagnose

        operation = "signing keys audit"
        while True:
            try:
                await asyncio.to_thread(record_signing_config, self.settings, self.db)
            except Exception as exc:
                if not diagnose(exc).heals:
                    raise
                await self.health.database.retry_later(operation, exc)
                continue
            self.health.database.succeeded(operation)
            return

    async def _stop_outage_recorder(self) -> None:
        if self._outages_task is None or self.outages is None:
            return
        self._outages_stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._outages_task
        await asyncio.to_thread(self.outages.stop)

    def _start_report_exports(self) -> None:
        """Run the scheduled report exports in this (worker) process, if any are configured."""
        reports = self.settings.reports
        if not reports.schedules or reports.schedule_check_seconds <= 0:
            return
        from hub.reports.schedules import run_periodically

        self._exports_task = asyncio.create_task(
            run_periodically(self.db, self.settings, self._exports_stop, reports.schedule_check_seconds),
            name="hub-report-exports",
        )

    async def _stop_report_exports(self) -> None:
        if self._exports_task is None:
            return
        self._exports_stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._exports_task

    # --- starting ----------------------------------------------------------------------------

    async def _start_api(
        self,
        sock: socket.socket,
        *,
        bootstrap_token: str | None,
        route_modules: tuple[str, ...] | None,
        access_log: bool,
    ) -> None:
        from hub.api.app import create_app

        extra: dict[str, Any] = {} if route_modules is None else {"route_modules": route_modules}
        self.app = create_app(
            self.settings,
            self.db,
            bootstrap_token=bootstrap_token,
            health=self.health,
            telemetry=self.telemetry,
            **extra,
        )
        host, port = sock.getsockname()[:2]
        self.port = int(port)
        self.base_url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        self._server = server = api_server(self.app, sock, access_log=access_log)
        self._server_task = asyncio.create_task(server.serve(sockets=[sock]), name="hub-api")
        while not server.started:
            if self._server_task.done():
                await self._server_task  # raises what stopped it
                raise ConfigurationError(f"the API did not start on {self.base_url}")
            await asyncio.sleep(0.01)
        log.info("API listening on %s", self.base_url)

    async def _start_metrics(self, sock: socket.socket) -> None:
        """``/metrics`` of a worker-only process, on a port of its own (scrape networks only)."""
        from hub.api.app import create_metrics_app

        self.metrics_port = int(sock.getsockname()[1])
        server = self._metrics_server = api_server(
            create_metrics_app(self.settings, self.telemetry), sock, access_log=False
        )
        self._metrics_task = asyncio.create_task(server.serve(sockets=[sock]), name="hub-metrics")
        while not server.started:
            if self._metrics_task.done():
                await self._metrics_task
                raise ConfigurationError("the metrics listener did not start")
            await asyncio.sleep(0.01)
        log.info("metrics on port %d", self.metrics_port)

    def _start_worker(self, settings: Settings) -> None:
        from hub.delivery.worker import Worker
        from hub.health import WorkerPulse

        self._worker_stop = asyncio.Event()
        pulse = self.health.worker = self.health.worker or WorkerPulse()
        self.worker = Worker(
            settings,
            self.db,
            outage=self.health.database,
            pulse=pulse,
            telemetry=self.telemetry,
            **self._worker_options,
        )
        self._worker_task = asyncio.create_task(self.worker.run(self._worker_stop), name="hub-worker")

    async def restart_worker(self, settings: Settings) -> None:
        """Stop the worker gracefully and start a new one with ``settings`` (a changed configuration)."""
        if self._worker_task is None:
            raise RuntimeError("this hub runs no delivery worker")
        self._worker_stop.set()
        await self._worker_task
        self.settings = settings
        self._start_worker(settings)

    # --- stopping ----------------------------------------------------------------------------

    def _tasks(self) -> list[asyncio.Task[None]]:
        parts = (self._server_task, self._worker_task, self._metrics_task)
        return [task for task in parts if task is not None]

    def request_stop(self) -> None:
        """Graceful stop: the API stops accepting, the worker stops claiming and drains."""
        self._worker_stop.set()
        for server in (self._server, self._metrics_server):
            if server is not None:
                server.should_exit = True

    def force_stop(self) -> None:
        """Stop now: open requests are dropped, in-flight deliveries abandoned (their leases
        expire and another worker takes them over, docs/delivery.md)."""
        self.forced = True
        self._forced.set()
        self.request_stop()
        for server in (self._server, self._metrics_server):
            if server is not None:
                server.force_exit = True
        if self._worker_task is not None:
            self._worker_task.cancel()

    async def wait(self) -> None:
        """Until every part has stopped. When one stops on its own (a failure), the others are
        asked to stop too, and the failure is raised."""
        tasks = self._tasks()
        if not tasks:
            return
        forced = asyncio.ensure_future(self._forced.wait())
        try:
            await asyncio.wait([*tasks, forced], return_when=asyncio.FIRST_COMPLETED)
        finally:
            forced.cancel()
        self.request_stop()
        await self._settle(tasks)
        for task in tasks:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                self._raised = True
                raise failure

    async def _settle(self, tasks: list[asyncio.Task[None]]) -> None:
        """Wait for ``tasks`` to end; once the stop is forced, cancel them until they do (a
        cancellation may land in a part's own clean-up, which then carries on)."""
        pending = set(tasks)
        while pending:
            _done, pending = await asyncio.wait(pending, timeout=FORCE_CHECK_SECONDS)
            if self.forced:
                for task in pending:
                    task.cancel()

    async def _close(self) -> None:
        self.request_stop()
        tasks = self._tasks()
        await self._settle(tasks)
        await self._stop_report_exports()
        await self._stop_outage_recorder()
        for task in tasks:
            failure = None if task.cancelled() else task.exception()
            if failure is not None and not self._raised:
                log.error("%s failed: %r", task.get_name(), failure)
        self.telemetry.tracing.shutdown()


def record_signing_config(settings: Settings, db: Database) -> None:
    """Audit a change of the configured signing keys since the last start (docs/security.md)."""
    from hub.services.key_bindings import record_config_snapshot

    record_config_snapshot(db, settings)


def build_telemetry(
    settings: Settings, db: Database, *, span_exporter: SpanExporter | None = None
) -> Telemetry:
    """One registry (with the database gauges) and, when ``tracing.enabled``, one tracer."""
    from hub.telemetry.metrics import HubMetrics
    from hub.telemetry.process import Telemetry
    from hub.telemetry.tracing import Tracing

    metrics = HubMetrics()
    metrics.watch_database(
        db,
        endpoints=sorted(settings.endpoints),
        dead_worker_seconds=settings.worker.dead_worker_seconds,
        cache_seconds=settings.metrics.database_cache_seconds,
    )
    return Telemetry(metrics, Tracing.start(settings.tracing, exporter=span_exporter))


@contextlib.asynccontextmanager
async def start(
    settings: Settings,
    *,
    api: bool = True,
    worker: bool = True,
    host: str | None = None,
    port: int | None = None,
    sock: socket.socket | None = None,
    worker_id: str | None = None,
    transport: TransportKind | None = None,
    bootstrap_token: str | None = None,
    route_modules: tuple[str, ...] | None = None,
    access_log: bool = True,
    span_exporter: SpanExporter | None = None,
    audit_signing_config: bool = True,
) -> AsyncIterator[RunningHub]:
    """Start the API (on ``sock``, else on ``host:port``, default ``settings.api``) and/or the
    delivery worker on a checked database; stop them gracefully and dispose of all on exit.

    ``span_exporter`` replaces the OTLP exporter when ``tracing.enabled`` (tests);
    ``audit_signing_config`` off: the configured signing keys are audited by another process
    (:func:`run_processes`: the first one)."""
    if not (api or worker):
        raise ConfigurationError("nothing to run: neither the API nor the worker")
    listening = None
    if api and sock is None:
        listening = sock = listen(host or settings.api.host, settings.api.port if port is None else port)
    try:
        pool_size = API_POOL_SIZE if api else WORKER_POOL_SIZE
        db = await asyncio.to_thread(open_database, settings, pool_size=pool_size)
    except BaseException:
        if listening is not None:
            listening.close()
        raise
    worker_options: dict[str, Any] = {"worker_id": worker_id}
    if transport is not None:
        worker_options["transport"] = transport
    hub = RunningHub(settings, db, worker_options=worker_options, span_exporter=span_exporter)
    metrics_sock = None
    try:
        await hub._start_outage_recorder(
            "+".join(part for part, on in (("api", api), ("worker", worker)) if on)
        )
        if audit_signing_config:
            await hub._record_signing_config()
        if api:
            assert sock is not None
            await hub._start_api(
                sock, bootstrap_token=bootstrap_token, route_modules=route_modules, access_log=access_log
            )
        if worker:
            hub._start_worker(settings)
            hub._start_report_exports()
        if not api and settings.metrics.enabled and settings.metrics.worker_port is not None:
            metrics_sock = listen(settings.metrics.worker_host, settings.metrics.worker_port)
            await hub._start_metrics(metrics_sock)
        yield hub
    finally:
        await hub._close()
        db.dispose()
        for opened in (sock, metrics_sock):
            if opened is not None:
                opened.close()


class _StopRequests:
    """The first stop request stops ``hub`` gracefully, the next one forces the stop."""

    def __init__(self, hub: RunningHub) -> None:
        self.hub = hub
        self.count = 0

    def __call__(self, what: str) -> None:
        self.count += 1
        if self.count == 1:
            log.info("%s received: stopping gracefully (send it again to force)", what)
            self.hub.request_stop()
        else:
            log.warning("%s received again: forcing the stop", what)
            self.hub.force_stop()


async def until_signalled(hub: RunningHub) -> int:
    """Run until SIGTERM/SIGINT (graceful; a second signal forces) or until a part stops on its own.

    Returns :data:`EXIT_OK`, or :data:`EXIT_FORCED` when a second signal forced the stop.
    """
    loop = asyncio.get_running_loop()
    stop = _StopRequests(hub)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signal.Signals(signum).name)
    try:
        await hub.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return _stopped(hub)


def _stopped(hub: RunningHub) -> int:
    log.info("hub stopped%s", " (forced)" if hub.forced else "")
    return EXIT_FORCED if hub.forced else EXIT_OK


def settle_heap() -> None:
    """Once a hub process has started: what starting made (modules, classes, the ORM's and
    pydantic's schemas, settings, connectors) is frozen out of the cyclic garbage collector's
    reach (:func:`gc.freeze`), and its youngest generation is collected after
    :data:`GC_YOUNG_THRESHOLD` new objects rather than 700.

    The collector had cost a worker about a fifth of its CPU per delivery: each full collection
    walked the whole startup heap (140,000 objects in a worker, 250,000 in an API process: 80 to
    200 ms with the GIL held, stalling every request and delivery in flight), and the
    many short-lived objects of each delivery (tasks, futures, aiohttp's request and answer)
    set off a young collection every few deliveries. Objects are still freed by reference
    counting as soon as they are unused; only garbage in reference cycles waits longer (and
    cycles among the frozen objects are never collected: call this once per process).
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, GC_YOUNG_THRESHOLD), middle, old)


async def serve(settings: Settings, **options: Any) -> int:
    """Start the hub (see :func:`start` for ``options``) and run it until signalled."""
    async with start(settings, **options) as hub:
        settle_heap()
        return await until_signalled(hub)
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns


def run(
    settings: Settings,
    *,
    json_logs: bool = True,
    log_level: str | None = None,
    **options: Any,
) -> int:
    """The blocking entry of ``hub serve`` and ``hub worker``: logging, then :func:`serve`.

    Returns the process exit status.
    """
    setup_logging(log_level or settings.log_level, json_logs=json_logs)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(serve(settings, **options))


@contextlib.contextmanager
def run_in_thread(settings: Settings, **options: Any) -> Iterator[RunningHub]:
    """The hub (see :func:`start` for ``options``) on an event loop of its own in a background
    thread, for tests and benchmarks; stopped gracefully when the block ends."""
    ready: Future[tuple[RunningHub, asyncio.AbstractEventLoop, asyncio.Event]] = Future()
    finished: Future[None] = Future()

    async def main() -> None:
        release = asyncio.Event()
        async with start(settings, **options) as hub:
            ready.set_result((hub, asyncio.get_running_loop(), release))
            await release.wait()

    def thread_main() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001  # handed to the caller's thread, raised there
            (finished if ready.done() else ready).set_exception(exc)
            return
        finished.set_result(None)

    thread = threading.Thread(target=thread_main, name="hub-runtime", daemon=True)
    thread.start()
    hub, loop, release = ready.result(timeout=THREAD_TIMEOUT_SECONDS)
    try:
        yield hub
    finally:
        loop.call_soon_threadsafe(release.set)
        thread.join(THREAD_TIMEOUT_SECONDS)
        finished.result(timeout=0)


# --- several API processes -------------------------------------------------------------------

#: What the supervisor of :func:`run_processes` and its API processes say over their pipe.
READY, STOP = "ready", "stop"


def run_processes(
    settings: Settings,
    processes: int,
    *,
    json_logs: bool = True,
    log_level: str | None = None,
    worker: bool = True,
    host: str | None = None,
    port: int | None = None,
    **options: Any,
) -> int:
    """``hub serve`` with ``api.processes`` above 1: this process supervises ``processes`` API
    processes listening on one port (``SO_REUSEPORT``: the kernel spreads the connections).

    The first one starts alone and, when ``worker``, runs the delivery worker and audits the
    signing keys; once it listens the others start, API only. The children ignore SIGTERM and
    SIGINT (a terminal or an orchestrator may signal the whole group): the supervisor passes
    each signal on once, over a pipe — the first stops every child gracefully, a second forces
    — and a child whose supervisor died stops gracefully. A child stopping on its own stops
    the others; the exit status is the first failing child's (:data:`EXIT_FORCED` after a
    forced stop). Returns the process exit status (docs/deployment.md, "Several API processes").
    """
    setup_logging(log_level or settings.log_level, json_logs=json_logs)
    host = host or settings.api.host
    # Holds the port (a free one for port 0) from the start to the end; bound, never listening,
    # so it takes no connection.
    reserved = listen(host, settings.api.port if port is None else port, reuse_port=True)
    bound = int(reserved.getsockname()[1])
    spawn = multiprocessing.get_context("spawn")
    children: list[tuple[BaseProcess, Connection]] = []
    stops: list[str] = []

    def tell_children() -> None:
        for _child, pipe in children:
            with contextlib.suppress(OSError):  # already gone
                pipe.send(STOP)

    def on_signal(signum: int, _frame: object) -> None:
        stops.append(signal.Signals(signum).name)
        verb = "stopping every API process gracefully" if len(stops) == 1 else "forcing the stop"
        log.info("%s received: %s", stops[-1], verb)
        tell_children()

    def start_child(index: int) -> tuple[BaseProcess, Connection]:
        ours, theirs = spawn.Pipe()
        child = spawn.Process(
            target=_api_process,
            name=f"hub-api-{index + 1}",
            args=(settings, theirs, host, bound),
            kwargs={
                "json_logs": json_logs,
                "log_level": log_level,
                "worker": worker and index == 0,
                "audit_signing_config": index == 0,
                **options,
            },
        )
        child.start()
        theirs.close()
        children.append((child, ours))
        return child, ours

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        first, pipe = start_child(0)
        if not _ready(first, pipe):  # it said why (one line), or was stopped while starting
            first.join()
            return first.exitcode or EXIT_OK
        if not stops:
            for index in range(1, processes):
                start_child(index)
            log.info("starting %d more API processes on %s:%d", processes - 1, host, bound)
        failed = _supervise(children, stops, tell_children)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for child, pipe in children:
            child.join()
            pipe.close()
        reserved.close()
    if len(stops) > 1 or any(child.exitcode == EXIT_FORCED for child, _pipe in children):
        return EXIT_FORCED
    return failed


def _ready(child: BaseProcess, pipe: Connection) -> bool:
    """Wait until the first API process listens (``True``) or ends."""
    from multiprocessing.connection import wait

    while child.is_alive():
        wait([pipe, child.sentinel])
        with contextlib.suppress(EOFError, OSError):
            if pipe.poll() and pipe.recv() == READY:
                return True
    return False


def _supervise(
    children: list[tuple[BaseProcess, Connection]], stops: list[str], tell_children: Callable[[], None]
) -> int:
    """Until every child has ended; the first to end on its own stops the others. Logs when all
    of them listen. Returns the first non-zero exit status of a child ended on its own, else
    :data:`EXIT_OK`."""
    from multiprocessing.connection import wait

    failed = EXIT_OK
    running = {child.sentinel: child for child, _pipe in children}
    starting = [pipe for _child, pipe in children[1:]]  # the first one listens already
    while running:
        for ready in wait([*running, *starting]):
            if not isinstance(ready, int):  # READY, or the pipe's end (its child ended)
                pipe = starting.pop(starting.index(ready))  # type: ignore[arg-type]  # one of those given
                with contextlib.suppress(EOFError, OSError):
                    pipe.recv()
                if not starting and not stops:
                    log.info("all %d API processes listening", len(children))
                continue
            child = running.pop(ready)
            child.join()
            if not stops:
                log.error(
                    "%s stopped on its own (exit status %s): stopping the others", child.name, child.exitcode
                )
                stops.append(child.name)
                tell_children()
                failed = child.exitcode or 1
    return failed


def _api_process(
    settings: Settings,
    pipe: Connection,
    host: str,
    port: int,
    *,
    json_logs: bool,
    log_level: str | None,
    **options: Any,
) -> None:
    """One API process of :func:`run_processes` (the target of a spawned process)."""
    from hub.audit.context import acting_from, cli_client

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)  # stop requests come over ``pipe``
    setup_logging(log_level or settings.log_level, json_logs=json_logs)
    try:
        sock = listen(host, port, reuse_port=True)
        with acting_from(cli_client()), asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            status = runner.run(_serve_supervised(settings, pipe, sock=sock, **options))
    except HubError as exc:  # one line, as ``hub`` prints it (hub/cli.py)
        kind = "configuration error" if isinstance(exc, ConfigurationError) else "error"
        print(f"{kind}: {exc.message}", file=sys.stderr, flush=True)
        status = 2 if isinstance(exc, ConfigurationError) else 1
    sys.exit(status)


async def _serve_supervised(settings: Settings, pipe: Connection, **options: Any) -> int:
    """:func:`serve` taking its stop requests from the supervisor's ``pipe`` instead of signals;
    the supervisor's end closing (it died) asks for a graceful stop."""
    async with start(settings, **options) as hub:
        settle_heap()
        loop = asyncio.get_running_loop()
        stop = _StopRequests(hub)
        pipe.send(READY)

        def on_message() -> None:
            try:
                pipe.recv()
            except EOFError:
                loop.remove_reader(pipe.fileno())
                if stop.count == 0:
                    stop("the supervisor's end")
                return
            stop(f"{STOP} from the supervisor (pid {os.getppid()})")

        loop.add_reader(pipe.fileno(), on_message)
        try:
            await hub.wait()
        finally:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(pipe.fileno())
        return _stopped(hub)
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns
