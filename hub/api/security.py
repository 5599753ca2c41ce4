"""Response headers every page needs, and which forwarded headers are believed (docs/security.md).

- :class:`SecurityHeadersMiddleware` adds to every response (OWASP HTTP Headers Cheat Sheet):
  ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (the lookup URL holds
  the ID number, ``SGT``), ``X-Frame-Options: DENY`` for old browsers, and a
  ``Content-Security-Policy`` unless the route set its own (the lookup page does:
  :data:`hub.lookup.page.PAGE_CSP`). The default policy allows nothing and no framing
  (``frame-ancestors 'none'``, CSP Level 2 §7.7); the interactive API docs, which load their
  scripts from a CDN, get only ``frame-ancestors 'none'``.
- ``X-Forwarded-For`` / ``-Proto`` are believed only from ``api.trusted_proxies`` (uvicorn's
  ``ProxyHeadersMiddleware``, which walks the list from the right and stops at the first
  untrusted address); the server's own handling is off (:func:`hub.runtime.api_server`).
- :class:`AuditClientMiddleware` names the caller (that address and its user agent) as where
  the audit rows a request writes come from (:mod:`hub.audit.context`).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from hub.api.http_middleware import HttpMiddleware
from hub.audit.context import acting_from, http_client
from hub.config import ApiSettings

#: Everything forbidden: what a JSON answer or an error page needs.
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: The interactive docs (Swagger UI, ReDoc) run CDN scripts: only framing is forbidden.
DOCS_CSP = "frame-ancestors 'none'"

_FIXED = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_CSP = b"content-security-policy"


class SecurityHeadersMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, *, docs_paths: tuple[str, ...] = ()) -> None:
        super().__init__(app)
        self.docs_paths = docs_paths

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        csp = (DOCS_CSP if path in self.docs_paths else DEFAULT_CSP).encode()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in _FIXED if name not in present]
                if _CSP not in present:
                    headers.append((_CSP, csp))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class AuditClientMiddleware(HttpMiddleware):
    """Audit rows written while serving a request name its client (docs/security.md, "Audit log")."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        agent = next((v for k, v in scope.get("headers", ()) if k == b"user-agent"), b"")
        with acting_from(http_client(client[0] if client else None, agent.decode("latin-1"))):
            await self.app(scope, receive, send)


def install_security_middleware(app: FastAPI, settings: ApiSettings) -> None:
    """Security headers on every response; forwarded headers only from trusted proxies."""
    docs = tuple(url for url in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if url)
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=docs)
    if settings.trusted_proxies:
        trusted = [str(network) for network in settings.trusted_proxies]
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted)
