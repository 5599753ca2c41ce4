"""RFC 3161 time-stamping client for signing (PAdES B-T and up).

Decree 68/2024 Art. 29 k4: where a time-stamp is required it comes from the server published by
the Government CA (``http://tsa.ca.gov.vn/``), which answers in 2 s – 2 min (docs/signing.md
§6.3). The client therefore has a long per-attempt timeout, bounded retries with exponential
backoff (tenacity), and a concurrency cap; one instance is shared by a whole batch so pyHanko's
cached "dummy" size-estimation response is reused and requests run concurrently.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from asn1crypto import tsp
from pydantic import BaseModel, Field
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from schemas.errors import TimestampUnavailableError

__all__ = ["HubTimeStamper", "TsaSettings"]

_log = logging.getLogger(__name__)


class TsaSettings(BaseModel):
    """TSA endpoint configuration (defaults sized for the Government TSA)."""

    url: str = "http://tsa.ca.gov.vn/"
    timeout_seconds: float = Field(default=180.0, gt=0)
    attempts: int = Field(default=3, ge=1, le=10)
    backoff_initial_seconds: float = Field(default=1.0, ge=0)
    backoff_max_seconds: float = Field(default=30.0, ge=0)
    max_concurrency: int = Field(default=128, ge=1)
    username: str | None = None
    password: str | None = Field(default=None, repr=False)


class HubTimeStamper(HTTPTimeStamper):
    """pyHanko ``HTTPTimeStamper`` with retries, a concurrency cap and hub errors.

    Safe to share across event loops: the semaphore is created per running loop.
    """

    def __init__(self, settings: TsaSettings) -> None:
        auth = (settings.username, settings.password or "") if settings.username else None
        super().__init__(settings.url, timeout=settings.timeout_seconds, auth=auth)
        self.settings = settings
        self._semaphores: dict[int, asyncio.Semaphore] = {}
        self._sessions: dict[int, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def _acquire_session(self) -> AsyncIterator[aiohttp.ClientSession]:
        """One pooled session per event loop (pyHanko's default builds a new session and SSL
        context per request, ~30 ms of CPU each). Close it with :meth:`aclose`."""
        loop_id = id(asyncio.get_running_loop())
        session = self._sessions.get(loop_id)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(ssl=_ssl_context(), limit=self.settings.max_concurrency)
            session = aiohttp.ClientSession(connector=connector)
            self._sessions[loop_id] = session
        yield session

    async def aclose(self) -> None:
        """Close the session bound to the running event loop (call before the loop ends)."""
        session = self._sessions.pop(id(asyncio.get_running_loop()), None)
        self._semaphores.pop(id(asyncio.get_running_loop()), None)
        if session is not None:
            await session.close()

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._semaphores.get(id(loop))
        if sem is None:
            sem = asyncio.Semaphore(self.settings.max_concurrency)
            self._semaphores[id(loop)] = sem
        return sem

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        s = self.settings
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(s.attempts),
                wait=wait_exponential(multiplier=s.backoff_initial_seconds, max=s.backoff_max_seconds),
                retry=retry_if_exception_type((TimestampRequestError, TimeoutError)),
                reraise=False,
            ):
                with attempt:
                    async with self._semaphore():
                        resp: tsp.TimeStampResp = await super().async_request_tsa_response(req)
                        return resp
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            _log.warning("TSA %s unavailable after %d attempts: %s", s.url, s.attempts, cause)
            raise TimestampUnavailableError(
                f"time-stamping authority {s.url} did not answer after {s.attempts} attempts: {cause}",
                message_vi=f"Máy chủ cấp dấu thời gian {s.url} không phản hồi sau {s.attempts} lần thử",
                details={"tsa_url": s.url},
            ) from cause
        raise AssertionError("unreachable")  # pragma: no cover


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """TLS ≥ 1.2 (Circular 15/2025 §2.1), system trust store; built once per process."""
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def make_timestamper(settings: TsaSettings | None) -> TimeStamper | None:
    return HubTimeStamper(settings) if settings is not None else None
