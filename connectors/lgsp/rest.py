"""REST flavour of the LGSP document exchange (WSO2 API Manager conventions).

* OAuth2 client credentials (RFC 6749 §4.4): ``POST {base}/token`` with the form
  ``grant_type=client_credentials&client_id=…&client_secret=…`` (docs/portal.md §4.1). The
  token is cached until ``expires_in`` (minus a safety margin); one refresh is shared by all
  concurrent callers; a 401 from the API invalidates the token and the call is retried once.
* API paths ``{base}/{context}/{version}/Document/SyncDocument`` and
  ``…/Document/UpdateDocumentTraces`` (WSO2 ``/{api-context}/{version}``, §4.4; §4.2).
* Calls carry ``Authorization: <token_type> <access_token>`` (§4.1) and the hub message's
  stable id in a header (default ``X-Message-ID``) so the partner can drop redeliveries.
* Answers are ``MResult{Status, Message}`` (§4.2). HTTP statuses and transport failures map
  onto hub errors through :mod:`connectors.http_errors` after the LGSP's own rules (401 →
  refresh the token once, then :class:`~schemas.errors.SessionExpiredError`; 403 → not
  subscribed to the API).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from connectors.http import parse_retry_after
from connectors.http_errors import (
    Remote,
    busy_error,
    classify_status,
    describe,
    is_retry_later,
    map_transport_errors,
)
from schemas.errors import (
    HubError,
    PayloadTooLargeError,
    RemoteAuthenticationError,
    SessionExpiredError,
    TransportError,
)

TOKEN_ENDPOINT = Remote("LGSP token endpoint", "máy chủ cấp token của LGSP")
API = Remote("LGSP REST endpoint", "LGSP")

_E = TypeVar("_E", bound=HubError)


def _answered(error: _E, response: httpx.Response, request_summary: str) -> _E:
    """``error`` with the exchange that led to it attached: status, request and answer."""
    return describe(
        error,
        status_code=response.status_code,
        request_summary=request_summary,
        response_summary=response.content,
    )


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    token_type: str
    expires_at: float
    """Monotonic-clock instant after which the token is not used any more."""

    @property
    def authorization(self) -> str:
        return f"{self.token_type} {self.value}"


class OAuth2ClientCredentials:
    """A cached client-credentials token with single-flight refresh."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: httpx.Timeout,
        skew_seconds: float = 30,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout = timeout
        self._skew = skew_seconds
        self._scope = scope
        self._clock = clock
        self._current: AccessToken | None = None
        self._lock = asyncio.Lock()
        #: Number of tokens fetched (observability and tests).
        self.fetch_count = 0

    def _valid(self, token: AccessToken | None) -> bool:
        return token is not None and self._clock() < token.expires_at

    async def token(self) -> AccessToken:
        current = self._current
        if current is not None and self._valid(current):
            return current
        async with self._lock:
            if self._current is not None and self._valid(self._current):
                return self._current
            self._current = await self._fetch()
            return self._current

    def invalidate(self, token: AccessToken) -> None:
        """Drop ``token`` if it is still the cached one (another caller may have refreshed)."""
        if self._current is token:
            self._current = None

    async def _fetch(self) -> AccessToken:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        if self._scope:
            form["scope"] = self._scope
        request_summary = f"POST {self._token_url} grant_type=client_credentials"
        with map_transport_errors(TOKEN_ENDPOINT, request_summary=request_summary):
            response = await self._http.post(
                self._token_url, data=form, headers={"Accept": "application/json"}, timeout=self._timeout
            )
        self.fetch_count += 1
        status = response.status_code
        if status in (400, 401, 403):
            # RFC 6749 §5.2: invalid_client / unauthorized_client are answered 400 or 401.
            raise _answered(
                RemoteAuthenticationError(
                    f"LGSP token endpoint refused the client credentials (HTTP {status})",
                    message_vi=f"LGSP từ chối client_id/client_secret (HTTP {status})",
                ),
                response,
                request_summary,
            )
        if is_retry_later(status):
            raise busy_error(
                TOKEN_ENDPOINT,
                f"HTTP {status}",
                status_code=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                request_summary=request_summary,
                response=response.content,
            )
        try:
            body = response.json()
            value = str(body["access_token"])
            expires_in = float(body.get("expires_in", 3600))
            token_type = str(body.get("token_type") or "Bearer")
        except (ValueError, KeyError, TypeError) as exc:
            raise describe(
                TransportError(
                    f"LGSP token endpoint answered HTTP {status} without a usable access_token",
                    message_vi="phản hồi cấp token của LGSP không có access_token hợp lệ",
                ),
                status_code=status,
                request_summary=request_summary,
            ) from exc
        if token_type.lower() == "bearer":
            token_type = "Bearer"
        return AccessToken(value, token_type, self._clock() + max(0.0, expires_in - self._skew))


@dataclass(frozen=True, slots=True)
class RestReply:
    status_code: int
    body: dict[str, Any]
    request_summary: str


class LgspRestClient:
    """POSTs JSON records to the WSO2-fronted LGSP API."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_base: str,
        auth: OAuth2ClientCredentials,
        *,
        timeout: httpx.Timeout,
        message_id_header: str = "X-Message-ID",
        max_response_bytes: int = 1024 * 1024,
    ) -> None:
        self._http = http
        self._api_base = api_base.rstrip("/")
        self.auth = auth
        self._timeout = timeout
        self._message_id_header = message_id_header
        self._max_response_bytes = max_response_bytes

    def url(self, path: str) -> str:
        return f"{self._api_base}/{path.lstrip('/')}"

    async def _send(
        self, url: str, body: bytes, token: AccessToken, message_id: str, request_summary: str
    ) -> httpx.Response:
        with map_transport_errors(API, request_summary=request_summary):
            return await self._http.post(
                url,
                content=body,
                headers={
                    "Authorization": token.authorization,
                    "Content-Type": "application/json; charset=utf-8",
                    "Accept": "application/json",
                    self._message_id_header: message_id,
                },
                timeout=self._timeout,
            )

    async def post(self, path: str, body: bytes, *, message_id: str, summary: str) -> RestReply:
        url = self.url(path)
        request_summary = f"POST {url} {self._message_id_header}={message_id} {summary}"
        try:
            token = await self.auth.token()
            response = await self._send(url, body, token, message_id, request_summary)
            if response.status_code == 401:
                # Expired or revoked before our clock said so: refresh once (RFC 6750 §3.1).
                self.auth.invalidate(token)
                token = await self.auth.token()
                response = await self._send(url, body, token, message_id, request_summary)
        except HubError as exc:
            describe(exc, request_summary=request_summary, keep_existing=True)
            raise
        status = response.status_code
        if len(response.content) > self._max_response_bytes:
            raise _answered(
                PayloadTooLargeError("LGSP REST response too large"),
                response,
                request_summary,
            )
        if status == 401:
            raise _answered(
                SessionExpiredError(
                    "LGSP rejected a freshly issued access token (HTTP 401)",
                    message_vi="LGSP từ chối token vừa cấp (HTTP 401)",
                ),
                response,
                request_summary,
            )
        if status == 403:
            raise _answered(
                RemoteAuthenticationError(
                    "LGSP refused access to the API (HTTP 403: not subscribed or not allowed)",
                    message_vi="LGSP không cho phép truy cập API (HTTP 403)",
                ),
                response,
                request_summary,
            )
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        message = parsed.get("Message") if isinstance(parsed, dict) else None
        error = classify_status(
            status,
            API,
            headers=response.headers,
            request_summary=request_summary,
            response=response.content,
            detail=str(message or ""),
        )
        if error is not None:
            raise error
        if not isinstance(parsed, dict):
            raise _answered(
                TransportError(
                    f"LGSP REST answer (HTTP {status}) is not a JSON object",
                    message_vi="phản hồi của LGSP không phải JSON hợp lệ",
                ),
                response,
                request_summary,
            )
        return RestReply(status, parsed, request_summary)
