"""Async REST/JSON client of the DVCQG adapter (docs/portal.md §3.1, §3.2, §3.8).

* Login: POST ``{adapter_url}{login_path}`` with ``{"username", "password"}``; the token is
  accepted only when ``session`` is present and ``error_code`` is a success code (§3.1).
* Data calls: POST ``{adapter_url}{data_path}`` with the envelope
  ``{"session", "madonvi", "service", …}``; an optional routing header (``dstcode``) on every call.
* The session is cached and renewed when its configured lifetime ends or when the portal answers
  with an authentication error: the client logs in again (one login at a time, even under a
  burst) and retries the call once; a second authentication error raises
  :class:`~schemas.errors.SessionExpiredError`.

Calls go through :class:`connectors.http.DirectPost` (URL and fixed headers prepared once per
path). Answers go through :func:`connectors.dvcqg.responses.classify_response`, transport failures
through :func:`connectors.http_errors.map_transport_errors`; the client never returns httpx
objects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from connectors.dvcqg.lookup import DossierLookup
from connectors.dvcqg.mapping import wire_to_dossier
from connectors.dvcqg.options import DvcqgOptions
from connectors.dvcqg.responses import PORTAL, Outcome, PortalAnswer, classify_response
from connectors.dvcqg.wire import WireDossier, WireProgress
from connectors.http import DirectPost, unfenced
from connectors.http_errors import describe, map_transport_errors
from schemas.errors import (
    BusinessRejectionError,
    EndpointBusyError,
    HubError,
    RemoteAuthenticationError,
    SessionExpiredError,
    TransportError,
)

logger = logging.getLogger(__name__)

SERVICE_SYNC = "DongBoHoSoMC"
SERVICE_PROGRESS = "CapNhatTienDoHoSoMC"
SERVICE_LOOKUP = "TraCuuHoSo"


class DvcqgClient:
    """One adapter URL with one account; safe to share between concurrent deliveries."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str,
        password: str,
        options: DvcqgOptions,
        http: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._username = username
        self._password = password
        self.options = options
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout or httpx.Timeout(30, connect=5))
        self._clock = clock
        self._targets: dict[str, DirectPost] = {}
        self._session: str | None = None
        self._session_expires = 0.0
        self._generation = 0
        self._login_lock = asyncio.Lock()
        self._login_attempts = 0
        self._login_error: HubError | None = None
        #: Number of successful logins (observability; tests check one login per expiry).
        self.login_count = 0

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def url(self, path: str) -> str:
        return self._base + path

    def _target(self, path: str) -> DirectPost:
        """The prepared POST to ``path`` (a handful per portal: login, data, progress, share)."""
        target = self._targets.get(path)
        if target is None:
            fixed = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"}
            if self.options.routing_header_value:
                fixed[self.options.routing_header_name] = self.options.routing_header_value
            target = self._targets[path] = DirectPost(self._http, self.url(path), fixed)
        return target

    # --- session ----------------------------------------------------------------------------

    def expire_session(self) -> None:
        """Forget the cached token (operators' "log in again" and tests)."""
        self._session = None

    async def _current_session(self) -> tuple[str, int]:
        if self._session is not None and self._clock() < self._session_expires:
            return self._session, self._generation
        attempts_seen = self._login_attempts
        async with self._login_lock:
            # Another task may have logged in while this one waited.
            if self._session is not None and self._clock() < self._session_expires:
                return self._session, self._generation
            # ... or failed to: share that failure instead of queueing up more logins.
            if self._login_attempts != attempts_seen and self._login_error is not None:
                raise self._login_error
            try:
                with unfenced():  # shared by every waiting delivery (connectors/http.py)
                    token = await self._login_with_retry()
            except HubError as exc:
                self._login_error = exc
                raise
            finally:
                self._login_attempts += 1  # completed attempts, success or not
            self._login_error = None
            self._session = token
            self._session_expires = self._clock() + self.options.session_ttl_seconds
            self._generation += 1
            return token, self._generation

    def _invalidate(self, generation: int) -> None:
        """Drop the token the failed call used, unless a newer one replaced it already."""
        if generation == self._generation:
            self._session = None

    async def login(self) -> str:
        """Force a new login and cache the token."""
        self._invalidate(self._generation)
        token, _ = await self._current_session()
        return token

    async def _login_with_retry(self) -> str:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.options.login_attempts),
            wait=wait_exponential(multiplier=self.options.login_backoff_seconds, max=10),
            retry=retry_if_exception_type((TransportError, EndpointBusyError)),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._login_once()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _login_once(self) -> str:
        path = self.options.login_path
        summary = f"POST {path} login user={self._username}"
        body = {"username": self._username, "password": self._password}
        try:
            answer = await self._post(path, body, {}, summary)
        except BusinessRejectionError as exc:
            raise describe(
                self._auth_refused(exc.message),
                status_code=exc.status_code,
                request_summary=exc.request_summary,
                response_summary=exc.response_summary,
            ) from exc
        if answer.outcome is not Outcome.OK or answer.session is None:
            raise describe(
                self._auth_refused(f"login answered {answer.outcome.value} without a session token"),
                status_code=answer.status_code,
                request_summary=summary,
            )
        self.login_count += 1
        logger.info("DVCQG login succeeded for %s at %s", self._username, self._base)
        return answer.session

    @staticmethod
    def _auth_refused(why: str) -> RemoteAuthenticationError:
        return RemoteAuthenticationError(
            f"DVCQG portal refused the hub's credentials: {why}",
            message_vi="Cổng DVCQG từ chối tài khoản kết nối của hệ thống",
        )

    # --- calls -----------------------------------------------------------------------------

    async def _post(
        self, path: str, body: Mapping[str, Any], headers: Mapping[str, str], request_summary: str
    ) -> PortalAnswer:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        with map_transport_errors(PORTAL, request_summary=request_summary):
            response = await self._target(path).post(content, headers)
        return classify_response(
            response.status_code,
            response.headers,
            response.content,
            self.options,
            request_summary=request_summary,
        )

    async def call(
        self,
        service: str,
        params: Mapping[str, Any],
        *,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
        request_summary: str = "",
    ) -> PortalAnswer:
        """One data call in the session envelope; re-login once on an authentication error."""
        target = path or self.options.data_path
        summary = request_summary or f"POST {target} service={service}"
        for attempt in (1, 2):
            token, generation = await self._current_session()
            envelope = {"session": token, "madonvi": self.options.madonvi, "service": service, **params}
            answer = await self._post(target, envelope, headers or {}, summary)
            if answer.outcome is not Outcome.SESSION_EXPIRED:
                return answer
            logger.info("DVCQG session rejected on %s (attempt %d); logging in again", service, attempt)
            self._invalidate(generation)
        raise describe(
            SessionExpiredError(
                "DVCQG portal rejected a fresh session; will retry later",
                message_vi="Cổng DVCQG từ chối phiên làm việc vừa cấp; sẽ thử lại sau",
            ),
            status_code=answer.status_code,
            request_summary=summary,
            response_summary=answer.summary,
        )

    # --- services (§3.2) -------------------------------------------------------------------

    async def sync_dossiers(
        self,
        records: list[WireDossier],
        *,
        updating: bool,
        headers: Mapping[str, str] | None = None,
        request_summary: str = "",
    ) -> PortalAnswer:
        """``DongBoHoSoMC`` with ``isUpdating`` "True" (update) or "False" (create)."""
        return await self.call(
            SERVICE_SYNC,
            {"isUpdating": "True" if updating else "False", "data": [r.wire() for r in records]},
            headers=headers,
            request_summary=request_summary,
        )

    async def push_progress(
        self,
        records: list[WireProgress],
        *,
        headers: Mapping[str, str] | None = None,
        request_summary: str = "",
    ) -> PortalAnswer:
        """``CapNhatTienDoHoSoMC`` (one chunk; the connector splits, §3.4)."""
        return await self.call(
            SERVICE_PROGRESS,
            {"data": [r.wire() for r in records]},
            path=self.options.progress_path,
            headers=headers,
            request_summary=request_summary,
        )

    async def lookup_raw(self, dossier_code: str) -> list[dict[str, Any]]:
        """``TraCuuHoSo``: the portal's records for ``dossier_code`` (empty when unknown)."""
        answer = await self.call(
            SERVICE_LOOKUP,
            {"mahoso": dossier_code},
            request_summary=f"POST {self.options.data_path} service={SERVICE_LOOKUP} MaHoSo={dossier_code}",
        )
        return answer.result

    async def lookup_dossier(self, dossier_code: str) -> DossierLookup:
        """``TraCuuHoSo`` as our schema, for reconciliation."""
        rows = await self.lookup_raw(dossier_code)
        if not rows:
            return DossierLookup(code=dossier_code, found=False)
        try:
            wire = WireDossier.model_validate({k: v for k, v in rows[0].items() if k in _WIRE_KEYS})
            return DossierLookup(code=dossier_code, found=True, dossier=wire_to_dossier(wire))
        except ValidationError as exc:
            # The portal knows the dossier but its record does not fit our schema; report where
            # (field paths and rules only: the values may be personal data).
            problem = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:20]
            )
            return DossierLookup(code=dossier_code, found=True, problem=problem)
        except HubError as exc:
            return DossierLookup(code=dossier_code, found=True, problem=exc.message)

    async def query(self, service: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """A reference-data ("chia sẻ") query; returns the ``result`` rows."""
        path = self.options.share_path or self.options.data_path
        answer = await self.call(
            service, dict(params or {}), path=path, request_summary=f"POST {path} service={service}"
        )
        return answer.result


_WIRE_KEYS = frozenset(field.alias or name for name, field in WireDossier.model_fields.items())
