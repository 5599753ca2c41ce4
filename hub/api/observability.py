"""The correlation id and the server span of every API request (docs/deployment.md §6).

:class:`RequestTelemetryMiddleware` (pure ASGI, outermost of the hub's own): binds the
request's correlation id (:func:`hub.telemetry.correlation.from_headers`) for the handler, the
services and the outbox rows they write, answers it as ``X-Request-ID`` on every response
(errors included), and, when tracing is on, runs the request in a server span named after the
route template (``POST /api/v1/dossiers/{code}/status``: never the raw path, whose dossier codes
would make every span name unique).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.http_middleware import HttpMiddleware
from hub.telemetry import correlation
from hub.telemetry.tracing import Tracing, set_attributes

_HEADER = correlation.HEADER.lower().encode("latin-1")


class RequestTelemetryMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, *, tracing: Tracing) -> None:
        super().__init__(app)
        self.tracing = tracing

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        cid = correlation.from_headers(headers.get("x-request-id"), headers.get("traceparent"))
        encoded = cid.encode("latin-1")
        status: list[int] = []

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER]
                message["headers"] = [*kept, (_HEADER, encoded)]
            await send(message)

        token = correlation.bind(cid)
        try:
            method: str = scope.get("method", "")
            attributes = {"http.request.method": method, "hub.correlation_id": cid}
            with self.tracing.server_span(method, headers, attributes) as span:
                try:
                    await self.app(scope, receive, answer)
                finally:
                    if span is not None:
                        route = getattr(scope.get("route"), "path", None)
                        if route:
                            span.update_name(f"{method} {route}")
                            set_attributes(span, {"http.route": route})
                        if status:
                            set_attributes(span, {"http.response.status_code": status[0]})
        finally:
            correlation.reset(token)


def install_request_telemetry(app: FastAPI, tracing: Tracing) -> None:
    """Added last, so it wraps the hub's other middleware and the error handlers."""
    app.add_middleware(RequestTelemetryMiddleware, tracing=tracing)
