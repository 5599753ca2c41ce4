"""The hub's tuned async HTTP client factory.

httpx's default async pool collapses at high concurrency (about 250 requests/s at 64 in
flight on the reference box, against about 2,900 for aiohttp), so the hub's clients keep the
httpx API (connectors speak httpx) on an aiohttp-backed transport
(:class:`httpx_aiohttp.AiohttpTransport`) with keep-alive and limits sized for the worker.
``benchmarks/bench_delivery.py --transport httpx`` measures the plain httpx pool for
comparison.
"""

from __future__ import annotations

import asyncio
import enum
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from connectors.settings import EndpointSettings

#: Idle keep-alive connections are closed after this many seconds.
KEEPALIVE_SECONDS = 30.0
#: DNS answers are cached this long by the aiohttp connector.
DNS_CACHE_SECONDS = 300


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP-date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class TransportKind(enum.StrEnum):
    AIOHTTP = "aiohttp"
    """httpx API on an aiohttp connection pool (the default)."""
    HTTPX = "httpx"
    """httpx's own httpcore pool (kept for comparison and as a fallback)."""


class _AiohttpTransport(AiohttpTransport):
    """:class:`AiohttpTransport` with honest connection errors.

    httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` (connection refused, reset, DNS
    failure) to ``httpx.ConnectTimeout``; the retry policy treats timeouts as throttling
    (longer minimum delay), so a refused connection is re-raised as ``httpx.ConnectError``.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            cause = exc.__cause__
            if cause is None or isinstance(cause, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
                raise
            raise httpx.ConnectError(str(exc) or type(cause).__name__, request=request) from cause


def timeout_for(settings: EndpointSettings | None) -> httpx.Timeout:
    """Connect/read/write/pool timeouts from the endpoint settings."""
    if settings is None:
        return httpx.Timeout(30.0, connect=5.0)
    return httpx.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds)


def build_http_client(
    settings: EndpointSettings | None = None,
    *,
    max_connections: int | None = None,
    transport: TransportKind = TransportKind.AIOHTTP,
    verify: bool = True,
) -> httpx.AsyncClient:
    """An :class:`httpx.AsyncClient` for one endpoint (or a shared one when ``settings`` is None).

    ``max_connections`` defaults to the endpoint's ``max_in_flight`` so the pool never queues
    requests the worker already limits. The aiohttp session is created lazily inside the
    running event loop, so calling this does no I/O.
    """
    connections = max_connections or (settings.max_in_flight if settings else 100)
    limits = httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    timeout = timeout_for(settings)
    if transport is TransportKind.HTTPX:
        return httpx.AsyncClient(timeout=timeout, limits=limits, verify=verify, trust_env=False)

    def session_factory() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=connections,
            limit_per_host=connections,
            keepalive_timeout=KEEPALIVE_SECONDS,
            ttl_dns_cache=DNS_CACHE_SECONDS,
            ssl=httpx.create_ssl_context(verify=verify),
        )
        return aiohttp.ClientSession(connector=connector, trust_env=False)

    return httpx.AsyncClient(
        transport=_AiohttpTransport(client=session_factory, limits=limits),
        timeout=timeout,
        limits=limits,
        trust_env=False,
    )
