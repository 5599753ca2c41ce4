"""The base of the hub's pure ASGI middleware (docs/architecture.md).

Each of them acts on HTTP requests only; lifespan (and any other) scopes go straight to the
wrapped application. :class:`HttpMiddleware` does that pass-through once.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    """Calls :meth:`http` for HTTP requests; passes every other scope to ``app`` unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError
