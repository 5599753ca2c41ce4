"""A webhook receiver for tests, benchmarks and the demo, on the shared simulator harness.

It accepts ``POST`` on any path and records every arrival it answers 200 (message id, dossier
code and attempt from the ``X-Message-Id``/``X-Dossier-Code``/``X-Attempt`` headers the webhook
connector sends, arrival time, optionally the body). How it misbehaves comes from the shared
fault model (:mod:`hub.simulators.faults`, operation ``deliver``, message id = ``X-Message-Id``):
e.g. ``Fault(kind="status", status=503, attempts=2, times=None)`` answers the first two tries
of every message with 503, ``Fault(kind="latency", delay_seconds=0.5, times=None)`` slows
every answer. Control: the harness's ``/_control/…`` API; ``GET /_control/records`` lists the
arrivals.

``python -m hub.simulators.sink --port 0`` serves it in its own process (the bound port is
printed on the first line of stdout; ``--record FILE`` writes the arrivals on SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from hub.simulators.faults import Fault
from hub.simulators.harness import Simulator

MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(slots=True, frozen=True)
class Arrival:
    message_id: str
    dossier_code: str
    attempt: int
    at: float
    body: bytes = b""
    request_id: str = ""
    """The ``X-Request-ID`` received (the correlation id of the change that caused it)."""


def _message_id(request: web.Request) -> str:
    return request.headers.get("X-Message-Id", "")


class WebhookSink(Simulator):
    """The receiver; :attr:`url` is what a webhook endpoint is configured with."""

    name: ClassVar[str] = "webhook-sink"

    def __init__(self, *, record_bodies: bool = True, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port, max_body_bytes=MAX_BODY_BYTES)
        self.record_bodies = record_bodies
        self._lock = threading.Lock()
        self._arrivals: list[Arrival] = []

    @property
    def url(self) -> str:
        return f"{self.base_url}/deliver"

    def arrivals(self) -> list[Arrival]:
        """What was delivered (answered 200), in arrival order."""
        with self._lock:
            return list(self._arrivals)

    def records_json(self) -> list[dict[str, Any]]:
        return [
            {
                "message_id": a.message_id,
                "dossier_code": a.dossier_code,
                "attempt": a.attempt,
                "at": a.at,
                "body": a.body.decode("utf-8", "replace"),
            }
            for a in self.arrivals()
        ]

    def reset(self) -> None:
        with self._lock:
            self._arrivals.clear()
        super().reset()

    def status_answer(self, fault: Fault, operation: str) -> web.Response:
        return web.json_response({"ok": False}, status=fault.status)

    def add_routes(self, app: web.Application) -> None:
        deliver = self.faulted("deliver", self._deliver, key=_message_id)

        async def post(request: web.Request) -> web.StreamResponse:
            # Checked before reading: a client announcing a huge body is answered at once.
            if (request.content_length or 0) > self.max_body_bytes:
                response = web.json_response({"error": "body too large"}, status=413)
                response.force_close()
                return response
            return await deliver(request)

        app.router.add_post("/{path:.*}", post)
        app.router.add_route("*", "/{path:.*}", self._post_only)

    async def _post_only(self, request: web.Request) -> web.Response:
        return web.json_response({"error": "POST only"}, status=404)

    async def _deliver(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = request.headers
        try:
            attempt = int(headers.get("X-Attempt", "0") or 0)
        except ValueError:
            attempt = 0
        arrival = Arrival(
            message_id=_message_id(request),
            dossier_code=headers.get("X-Dossier-Code", ""),
            attempt=attempt,
            at=time.time(),
            body=body if self.record_bodies else b"",
            request_id=headers.get("X-Request-ID", ""),
        )
        with self._lock:
            self._arrivals.append(arrival)
        return web.json_response({"ok": True})


async def _serve(port: int, record_bodies: bool) -> list[Arrival]:
    sink = WebhookSink(record_bodies=record_bodies, port=port)
    await sink.start_async()
    print(sink.port, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sink.stop_async()
    return sink.arrivals()


def main() -> None:
    parser = argparse.ArgumentParser(description="Local webhook receiver for hub tests and benchmarks")
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
