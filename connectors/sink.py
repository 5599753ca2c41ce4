"""A small, fast HTTP/1.1 receiver for tests, benchmarks and the demo.

It accepts ``POST`` on any path, records every arrival (message id, dossier code, attempt,
arrival time, optionally the body) and answers with a configurable status. Control:

* ``POST /_control`` with JSON ``{"status": 503, "retry_after": "2", "delay": 0.5,
  "fail_first": 3}`` changes how later requests are answered (``fail_first``: answer the
  first N requests of each message id with ``status``, then 200);
* ``GET /_arrivals`` returns the recorded arrivals as JSON; ``POST /_reset`` clears them.

Plain :mod:`asyncio` protocol, keep-alive, no framework: a receiver that costs far less CPU
than the worker under test. Run ``python -m connectors.sink --port 0`` to serve it in its own
process (the bound port is printed on the first line of stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import signal
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    413: "Payload Too Large",
    429: "Too Many Requests",
}


@dataclass(slots=True)
class Arrival:
    message_id: str
    dossier_code: str
    attempt: int
    at: float
    body: bytes = b""


@dataclass(slots=True)
class SinkBehaviour:
    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0
    fail_first: int = 0


@dataclass
class SinkState:
    record_bodies: bool = True
    behaviour: SinkBehaviour = field(default_factory=SinkBehaviour)
    arrivals: list[Arrival] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)


class _SinkProtocol(asyncio.Protocol):
    def __init__(self, state: SinkState) -> None:
        self.state = state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer.extend(data)
        if not self.busy:
            self._process()

    def _process(self) -> None:
        while self.transport is not None and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER_BYTES:
                    self._reply(400, b'{"error":"headers too large"}', close=True)
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            method, _, rest = head[0].partition(" ")
            path = rest.rpartition(" ")[0] or rest
            headers: dict[str, str] = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                self._reply(400, b'{"error":"bad content-length"}', close=True)
                return
            if length > MAX_BODY_BYTES:
                self._reply(413, b'{"error":"body too large"}', close=True)
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            close = headers.get("connection", "").lower() == "close"
            delayed = self._handle(method, path, headers, body, close)
            if delayed is not None:
                self.busy = True
                asyncio.get_running_loop().call_later(delayed[0], self._send_delayed, *delayed[1:])
                return

    def _send_delayed(self, status: int, body: bytes, extra: str, close: bool) -> None:
        self.busy = False
        self._reply(status, body, extra=extra, close=close)
        self._process()

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, close: bool
    ) -> tuple[float, int, bytes, str, bool] | None:
        state = self.state
        if path.startswith("/_"):
            self._control(method, path, body, close)
            return None
        if method != "POST":
            self._reply(404, b'{"error":"POST only"}', close=close)
            return None
        message_id = headers.get("x-message-id", "")
        behaviour = state.behaviour
        count = state.seen.get(message_id, 0) + 1
        state.seen[message_id] = count
        failing = behaviour.status != 200 and (behaviour.fail_first == 0 or count <= behaviour.fail_first)
        status = behaviour.status if failing else 200
        if status == 200:
            state.arrivals.append(
                Arrival(
                    message_id=message_id,
                    dossier_code=headers.get("x-dossier-code", ""),
                    attempt=int(headers.get("x-attempt", "0") or 0),
                    at=time.time(),
                    body=body if state.record_bodies else b"",
                )
            )
        extra = f"Retry-After: {behaviour.retry_after}\r\n" if failing and behaviour.retry_after else ""
        answer = b'{"ok":true}' if status == 200 else b'{"ok":false}'
        if behaviour.delay > 0:
            return behaviour.delay, status, answer, extra, close
        self._reply(status, answer, extra=extra, close=close)
        return None

    def _control(self, method: str, path: str, body: bytes, close: bool) -> None:
        state = self.state
        if path == "/_arrivals":
            data = [
                {
                    "message_id": a.message_id,
                    "dossier_code": a.dossier_code,
                    "attempt": a.attempt,
                    "at": a.at,
                    "body": a.body.decode("utf-8", "replace"),
                }
                for a in state.arrivals
            ]
            self._reply(200, json.dumps(data).encode(), close=close)
        elif path == "/_reset" and method == "POST":
            state.arrivals.clear()
            state.seen.clear()
            self._reply(200, b"{}", close=close)
        elif path == "/_control" and method == "POST":
            try:
                options: dict[str, Any] = json.loads(body or b"{}")
                state.behaviour = SinkBehaviour(
                    status=int(options.get("status", 200)),
                    retry_after=options.get("retry_after"),
                    delay=float(options.get("delay", 0.0)),
                    fail_first=int(options.get("fail_first", 0)),
                )
            except (ValueError, TypeError):
                self._reply(400, b'{"error":"bad control body"}', close=close)
                return
            self._reply(200, b"{}", close=close)
        else:
            self._reply(404, b'{"error":"unknown control path"}', close=close)

    def _reply(self, status: int, body: bytes, *, extra: str = "", close: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        reason = _REASONS.get(status, "Status")
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}"
            f"{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
        )
        self.transport.write(head.encode("latin-1") + body)
        if close:
            self.transport.close()


class Sink:
    """The receiver; start it in a running loop, or in a thread with :func:`sink_in_thread`."""

    def __init__(self, *, record_bodies: bool = True) -> None:
        self.state = SinkState(record_bodies=record_bodies)
        self._server: asyncio.Server | None = None
        self._protocols: weakref.WeakSet[_SinkProtocol] = weakref.WeakSet()
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        loop = asyncio.get_running_loop()

        def factory() -> _SinkProtocol:
            protocol = _SinkProtocol(self.state)
            self._protocols.add(protocol)
            return protocol

        self._server = await loop.create_server(factory, host, port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            close_clients = getattr(self._server, "close_clients", None)  # Python ≥ 3.13
            if close_clients is not None:
                close_clients()
            else:
                for protocol in list(self._protocols):
                    if protocol.transport is not None:
                        protocol.transport.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/deliver"

    def configure(self, **behaviour: Any) -> None:
        self.state.behaviour = SinkBehaviour(**behaviour)


class ThreadedSink:
    """A :class:`Sink` served by its own event loop in a daemon thread (for sync tests)."""

    def __init__(self, *, record_bodies: bool = True, port: int = 0) -> None:
        self.sink = Sink(record_bodies=record_bodies)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sink", daemon=True)
        self._thread.start()
        self._port = port
        self.start()

    def start(self) -> None:
        """(Re)start listening, on the same port after a :meth:`stop`."""
        port = self.sink.port or self._port
        asyncio.run_coroutine_threadsafe(self.sink.start(port=port), self._loop).result(10)

    def stop(self) -> None:
        """Stop listening (connections refused), keeping what was recorded."""
        asyncio.run_coroutine_threadsafe(self.sink.stop(), self._loop).result(10)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        return self.sink.url

    def configure(self, **behaviour: Any) -> None:
        self._loop.call_soon_threadsafe(functools.partial(self.sink.configure, **behaviour))

    def arrivals(self) -> list[Arrival]:
        future = asyncio.run_coroutine_threadsafe(_copy(self.sink.state.arrivals), self._loop)
        return future.result(10)


async def _copy(items: list[Arrival]) -> list[Arrival]:
    return list(items)


@contextlib.contextmanager
def sink_in_thread(*, record_bodies: bool = True) -> Iterator[ThreadedSink]:
    sink = ThreadedSink(record_bodies=record_bodies)
    try:
        yield sink
    finally:
        sink.close()


async def _serve(port: int, record_bodies: bool) -> list[Arrival]:
    sink = Sink(record_bodies=record_bodies)
    bound = await sink.start(port=port)
    print(bound, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sink.stop()
    return sink.state.arrivals


def main() -> None:
    parser = argparse.ArgumentParser(description="Local HTTP receiver for hub tests and benchmarks")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", help="write arrivals (tab-separated) to this file on SIGTERM")
    parser.add_argument("--no-bodies", action="store_true", help="do not keep request bodies")
    args = parser.parse_args()
    arrivals = asyncio.run(_serve(args.port, not args.no_bodies))
    if args.record:
        with open(args.record, "w", encoding="utf-8") as handle:
            for a in arrivals:
                handle.write(f"{a.message_id}\t{a.dossier_code}\t{a.attempt}\t{a.at:.6f}\n")


if __name__ == "__main__":
    main()
