"""A local OpenID Connect provider for tests and demos: discovery, JWKS, authorize, token.

Not a real identity provider: there is no login form. The authorize endpoint signs in whoever
:attr:`OidcProvider.login_as` names (``None``: it answers ``error=access_denied``) and redirects
back with a one-time code; the token endpoint checks the client's credentials, the redirect URI
and the PKCE verifier (S256 only), refuses a code used before (``invalid_grant``) and returns an
ID token signed RS256 with the provider's key (joserfc). Tests bend the next ID token through
:attr:`OidcProvider.tamper`:

``{"claims": {...}}``       claims replaced or added (``None`` removes one)
``{"foreign_key": True}``   signed with a key that is not in the JWKS
``{"alg_none": True}``      an unsigned token (``alg: none``)

Served by the simulator harness (:mod:`hub.simulators.harness`): on loopback, stoppable to
play an outage, with the shared control API.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

from aiohttp import web
from jinja2 import Template
from joserfc import jwt
from joserfc.jwk import RSAKey

from hub.simulators.harness import Simulator, json_response, serve_until_cancelled

_CONSENT = Template(
    """<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><title>Test OIDC provider</title></head>
<body><form method="post" action="/authorize">{% for name, value in fields.items() %}
<input type="hidden" name="{{ name }}" value="{{ value }}">{% endfor %}
<p>{{ user }}</p><button type="submit" id="approve">Đồng ý</button></form></body></html>""",
    autoescape=True,
)


@dataclass(frozen=True, slots=True)
class _Grant:
    subject: str
    nonce: str
    challenge: str
    redirect_uri: str
    client_id: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class OidcProvider(Simulator):
    name: ClassVar[str] = "oidc-provider"

    def __init__(
        self,
        *,
        client_id: str = "motcua-hub",
        client_secret: str | None = "provider-client-secret",  # noqa: S107  # the test provider's
        redirect_uris: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port, max_body_bytes=64 * 1024)
        self.client_id = client_id
        self.client_secret = client_secret
        #: Redirect URIs registered for the client (empty: any, for a quick demo).
        self.redirect_uris = list(redirect_uris)
        #: Seconds since the epoch of the ID tokens' ``iat`` / ``exp``.
        self.clock = clock
        self.token_seconds = 300
        self.key = RSAKey.generate_key(2048, parameters={"kid": "hub-test-1", "use": "sig"})
        #: Identities by ``sub``: their claims.
        self.users: dict[str, dict[str, Any]] = {}
        #: The ``sub`` the authorize endpoint signs in (``None``: access denied).
        self.login_as: str | None = None
        #: Show a page where the user agrees (a form posted back to ``/authorize``) instead of
        #: redirecting at once: the browser then returns from a page of the provider's site.
        self.interactive = False
        #: How to bend the next ID token (see the module's docstring); cleared once used.
        self.tamper: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._codes: dict[str, _Grant] = {}
        self._used: set[str] = set()
        self.token_requests: list[dict[str, str]] = []

    @property
    def issuer(self) -> str:
        return self.base_url

    def add_user(self, subject: str, **claims: Any) -> None:
        self.users[subject] = claims

    def records_json(self) -> list[dict[str, str]]:
        with self._lock:
            return [dict(request) for request in self.token_requests]

    def reset(self) -> None:
        with self._lock:
            self._codes.clear()
            self._used.clear()
            self.token_requests.clear()
        super().reset()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/authorize", self._approve)
        app.router.add_post("/token", self._token)

    async def _discovery(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.base_url}/authorize",
                "token_endpoint": f"{self.base_url}/token",
                "jwks_uri": f"{self.base_url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        return json_response({"keys": [self.key.as_dict(private=False)]})

    async def _authorize(self, request: web.Request) -> web.Response:
        if self.interactive:  # a page of the provider's own, where the user agrees
            problem = self._check(request.query)
            if problem is not None:
                return problem
            html = _CONSENT.render(fields=dict(request.query), user=self.login_as or "")
            return web.Response(text=html, content_type="text/html")
        return self._authorize_now(request.query)

    async def _approve(self, request: web.Request) -> web.Response:
        form = await request.post()
        return self._authorize_now({key: str(value) for key, value in form.items()})

    def _check(self, query: Mapping[str, str]) -> web.Response | None:
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or (
            self.redirect_uris and redirect_uri not in self.redirect_uris
        ):
            return json_response({"error": "invalid_request", "error_description": "unknown client"}, 400)
        return None

    def _authorize_now(self, query: Mapping[str, str]) -> web.Response:
        problem = self._check(query)
        if problem is not None:
            return problem
        redirect_uri = query.get("redirect_uri", "")
        state = query.get("state", "")
        if (
            query.get("response_type") != "code"
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
            or "openid" not in query.get("scope", "").split()
        ):
            return _back(redirect_uri, error="invalid_request", state=state)
        if self.login_as is None:
            return _back(redirect_uri, error="access_denied", state=state)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(
                self.login_as, query.get("nonce", ""), query["code_challenge"], redirect_uri, self.client_id
            )
        return _back(redirect_uri, code=code, state=state)

    def _client_ok(self, request: web.Request, form: dict[str, str]) -> bool:
        header = request.headers.get("Authorization", "")
        if self.client_secret is None:
            return form.get("client_id") == self.client_id and not header
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.client_id and secrets.compare_digest(password, self.client_secret)

    async def _token(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        with self._lock:
            self.token_requests.append({"grant_type": form.get("grant_type", "")})
        if not self._client_ok(request, form):
            return json_response({"error": "invalid_client"}, 401)
        code = form.get("code", "")
        with self._lock:
            grant = self._codes.pop(code, None)
            used = code in self._used
            self._used.add(code)
        if form.get("grant_type") != "authorization_code" or grant is None or used:
            return json_response({"error": "invalid_grant"}, 400)
        verifier = form.get("code_verifier", "")
        if (
            _b64(hashlib.sha256(verifier.encode()).digest()) != grant.challenge
            or form.get("redirect_uri") != grant.redirect_uri
        ):
            return json_response({"error": "invalid_grant"}, 400)
        return json_response(
            {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": self.token_seconds,
                "id_token": self.id_token(grant.subject, grant.nonce),
            },
            headers={"Cache-Control": "no-store"},
        )

    def id_token(self, subject: str, nonce: str) -> str:
        """An ID token for ``subject`` (bent by :attr:`tamper`, which is then cleared)."""
        tamper, self.tamper = self.tamper, {}
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.client_id,
            "iat": now,
            "exp": now + self.token_seconds,
            "nonce": nonce,
            **self.users.get(subject, {}),
        }
        for name, value in tamper.get("claims", {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        if tamper.get("alg_none"):
            header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
            return f"{header}.{_b64(json.dumps(claims).encode())}."
        key = self.key
        if tamper.get("foreign_key"):
            key = RSAKey.generate_key(2048, parameters={"kid": "not-published"})
        return jwt.encode({"alg": "RS256", "kid": key.kid or ""}, claims, key)


def _back(redirect_uri: str, **params: str) -> web.Response:
    separator = "&" if "?" in redirect_uri else "?"
    return web.Response(status=302, headers={"Location": f"{redirect_uri}{separator}{urlencode(params)}"})


def _announce(simulator: Simulator) -> None:
    print(f"OIDC test provider: issuer {simulator.base_url}", flush=True)


def main() -> None:
    """``python -m hub.simulators.oidc``: try a ``[console.oidc]`` configuration locally (the
    provider signs in ``--user`` after an "agree" page)."""
    parser = argparse.ArgumentParser(description="Local OIDC provider to try [console.oidc] against")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", default="quantri", help="preferred_username of the identity signed in")
    parser.add_argument("--client-id", default="motcua-hub")
    parser.add_argument(
        "--client-secret-env", help="environment variable holding the client secret (unset: public client)"
    )
    args = parser.parse_args()
    secret = os.environ[args.client_secret_env] if args.client_secret_env else None
    provider = OidcProvider(port=args.port, client_id=args.client_id, client_secret=secret)
    provider.add_user(f"sub-{args.user}", preferred_username=args.user)
    provider.login_as = f"sub-{args.user}"
    provider.interactive = True
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_cancelled(provider, _announce))


if __name__ == "__main__":
    main()
