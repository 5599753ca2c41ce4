"""The harness every simulator runs on: aiohttp.web on loopback, the shared faults, one control API.

A simulator subclasses :class:`Simulator`: it adds its protocol routes (:meth:`Simulator.add_routes`),
says what its records are (:meth:`Simulator.records_json`) and which protocol fault kinds it
knows (``protocol_faults``). The harness gives it

* a runner: :meth:`~Simulator.start` serves from a daemon thread with its own event loop (for
  sync callers), :meth:`~Simulator.start_async` inside the caller's loop; both bind loopback
  port 0 unless told otherwise, rebind the same port after a :meth:`~Simulator.stop` (an outage
  the client sees as "connection refused"), and keep the recorded state across restarts;
* the fault model (:mod:`hub.simulators.faults`) in :attr:`Simulator.faults`, with the shared
  transport faults carried out by :meth:`~Simulator.transport_fault` and
  :meth:`~Simulator.finish`, or by :meth:`~Simulator.faulted` around a whole handler;
* the control API, the same on every simulator:

  ``GET /_control/faults``      pending faults (``{"faults": [...]}``)
  ``PUT /_control/faults``      replace them with a JSON list of faults
  ``POST /_control/faults``     add one fault (201 ``{"added": fault}``; 422 when invalid)
  ``DELETE /_control/faults``   clear them (``{"cleared": true}``)
  ``GET /_control/records``     what the simulator recorded (its own JSON shape)
  ``GET /_control/calls``       calls seen per operation
  ``POST /_control/reset``      records, faults and counters cleared (``{"reset": true}``)

  plus whatever the simulator adds under ``/_control/`` (:meth:`Simulator.add_control_routes`).
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Self

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from hub.simulators.faults import Fault, FaultBook, FaultKind, UnknownFaultKindError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_FAULT_LIST = TypeAdapter(list[Fault])


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with UTF-8 text kept readable (Vietnamese messages unescaped)."""
    return web.json_response(
        data, status=status, headers=headers, dumps=lambda o: json.dumps(o, ensure_ascii=False)
    )


def drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the connection without writing an answer (the client sees a reset / empty reply)."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError  # aiohttp treats it as a closed connection; nothing is written


def _problems(exc: ValidationError | UnknownFaultKindError) -> str:
    """Why a fault sent to the control API was refused (answered 422)."""
    if isinstance(exc, UnknownFaultKindError):
        return str(exc)
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:20]
    )


class Simulator(abc.ABC):
    """Base of every simulator: its routes, the shared faults and control API, and the runner."""

    #: Protocol fault kinds this simulator carries out itself (beyond :class:`FaultKind`).
    protocol_faults: ClassVar[frozenset[str]] = frozenset()
    #: Thread name of the background server (logs, debugging).
    name: ClassVar[str] = "simulator"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = 16 * 1024 * 1024,
        hang_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port = host, port
        self.max_body_bytes = max_body_bytes
        self.hang_seconds = hang_seconds
        self.faults = FaultBook(self.protocol_faults, clock=clock)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- what a simulator provides ------------------------------------------------------------

    @abc.abstractmethod
    def add_routes(self, app: web.Application) -> None:
        """Register the protocol's routes."""

    @abc.abstractmethod
    def records_json(self) -> Any:
        """What ``GET /_control/records`` answers."""

    def add_control_routes(self, app: web.Application) -> None:  # noqa: B027  # optional hook
        """Simulator-specific control routes under ``/_control/`` (none by default)."""

    def reset(self) -> None:
        """Forget records, faults and counters (subclasses clear their own state, then call this)."""
        self.faults.reset()

    def status_answer(self, fault: Fault, operation: str) -> web.Response:
        """The body of a ``status`` fault's answer (plain text unless the protocol says otherwise)."""
        return web.Response(status=fault.status, text=f"HTTP {fault.status} (simulated)")

    # --- carrying out faults ------------------------------------------------------------------

    async def transport_fault(
        self, request: web.Request, fault: Fault | None, operation: str
    ) -> web.StreamResponse | None:
        """Carry out the shared part of ``fault``: an answer that replaces the call, or ``None`` to go on.

        ``latency`` waits and goes on; ``timeout`` holds and closes; ``drop`` closes; ``status``
        answers the error (after ``delay_seconds``). Protocol kinds wait ``delay_seconds`` and go
        on: the simulator carries them out; ``drop_after`` is carried out by :meth:`finish`.
        """
        if fault is None:
            return None
        if fault.kind == FaultKind.TIMEOUT:
            await asyncio.sleep(fault.delay_seconds or self.hang_seconds)
            return drop_connection(request)
        if fault.delay_seconds:
            await asyncio.sleep(fault.delay_seconds)
        if fault.kind == FaultKind.DROP:
            return drop_connection(request)
        if fault.kind == FaultKind.STATUS:
            answer = self.status_answer(fault, operation)
            if fault.retry_after:
                answer.headers["Retry-After"] = fault.retry_after
            return answer
        return None

    def finish(
        self, request: web.Request, response: web.StreamResponse, fault: Fault | None
    ) -> web.StreamResponse:
        """The processed call's answer, or a dropped connection under a ``drop_after`` fault."""
        if fault is not None and fault.kind == FaultKind.DROP_AFTER:
            return drop_connection(request)
        return response

    def faulted(
        self, operation: str, handler: Handler, *, key: Callable[[web.Request], str | None] | None = None
    ) -> Handler:
        """``handler`` under the shared faults of ``operation`` (message id from ``key``)."""

        async def run(request: web.Request) -> web.StreamResponse:
            fault = self.faults.take(operation, key(request) if key else None)
            early = await self.transport_fault(request, fault, operation)
            if early is not None:
                return early
            return self.finish(request, await handler(request), fault)

        return run

    # --- the application ----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        control = [
            web.get("/_control/faults", self._harness_get_faults),
            web.put("/_control/faults", self._harness_put_faults),
            web.post("/_control/faults", self._harness_add_fault),
            web.delete("/_control/faults", self._harness_clear_faults),
            web.get("/_control/records", self._harness_records),
            web.get("/_control/calls", self._harness_calls),
            web.post("/_control/reset", self._harness_reset),
        ]
        app.add_routes(control)
        self.add_control_routes(app)
        self.add_routes(app)
        return app

    async def _harness_get_faults(self, request: web.Request) -> web.Response:
        return json_response({"faults": [f.model_dump(mode="json") for f in self.faults.pending()]})

    async def _harness_put_faults(self, request: web.Request) -> web.Response:
        try:
            self.faults.replace(_FAULT_LIST.validate_json(await request.read()))
        except (ValidationError, UnknownFaultKindError) as exc:
            return json_response({"error": _problems(exc)}, 422)
        return await self._harness_get_faults(request)

    async def _harness_add_fault(self, request: web.Request) -> web.Response:
        try:
            fault = Fault.model_validate_json(await request.read())
            self.faults.add(fault)
        except (ValidationError, UnknownFaultKindError) as exc:
            return json_response({"error": _problems(exc)}, 422)
        return json_response({"added": fault.model_dump(mode="json")}, 201)

    async def _harness_clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return json_response({"cleared": True})

    async def _harness_records(self, request: web.Request) -> web.Response:
        return json_response(self.records_json())

    async def _harness_calls(self, request: web.Request) -> web.Response:
        return json_response(self.faults.calls())

    async def _harness_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return json_response({"reset": True})

    # --- the runner ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the bound server."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start_async(self) -> Self:
        """Serve inside the running event loop (same port again after :meth:`stop_async`)."""
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self.port = runner.addresses[0][1]
        self._runner = runner
        log.debug("%s listening on %s", self.name, self.base_url)
        return self

    async def stop_async(self) -> None:
        """Stop listening and close open connections; recorded state is kept."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def start(self) -> Self:
        """Serve from a daemon thread with its own event loop (same port again after :meth:`stop`)."""
        ready = threading.Event()
        failure: list[Exception] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except Exception as exc:  # noqa: BLE001  # e.g. the port is taken; re-raised by the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            pending = asyncio.all_tasks(loop)  # e.g. handlers held by a timeout fault
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        thread = threading.Thread(target=run, name=self.name, daemon=True)
        thread.start()
        if not ready.wait(30):
            raise TimeoutError(f"{self.name} did not start within 30 s")
        if failure:
            thread.join(5)
            raise failure[0]
        self._loop, self._thread = loop, thread
        return self

    def stop(self) -> None:
        """Stop the background server (see :meth:`start`)."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.start_async()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()


async def serve_until_cancelled(simulator: Simulator, announce: Callable[[Simulator], None]) -> None:
    """Serve in the current loop until cancelled (Ctrl-C of a ``hub simulate …`` command)."""
    await simulator.start_async()
    announce(simulator)
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop_async()
