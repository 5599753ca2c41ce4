"""The hub's tuned async HTTP client factory.

httpx's default async pool collapses at high concurrency (about 250 requests/s at 64 in
flight on the reference box, against about 2,900 for aiohttp), so the hub's clients keep the
httpx API (connectors speak httpx) on an aiohttp-backed transport
(:class:`httpx_aiohttp.AiohttpTransport`) with keep-alive and limits sized for the worker.
``benchmarks/bench_delivery.py --transport httpx`` measures the plain httpx pool for
comparison.

**The send fence** (docs/delivery.md §12.2): a caller may run a request under
:func:`send_fence`, a callable answering "may I still send?". Both transports ask it once the
connection is in hand, right before the request's first byte is written — aiohttp's in the
request's own :meth:`~aiohttp.ClientRequest.send` and body writer, httpcore's through its
``trace`` extension when the request headers are about to go — and a "no" stops the request
there with :class:`~schemas.errors.SendFencedError` (the connection is closed, nothing was
written). Waits for a pooled connection, a connect, a TLS handshake or a token fetch all lie
before that check, so a process frozen in one of them and resumed later asks again.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import httpx
import yarl
from aiohttp.abc import AbstractStreamWriter
from aiohttp.connector import Connection
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

from connectors.settings import EndpointSettings
from schemas.errors import SendFencedError

#: Idle keep-alive connections are closed after this many seconds.
KEEPALIVE_SECONDS = 30.0
#: DNS answers are cached this long by the aiohttp connector.
DNS_CACHE_SECONDS = 300
#: Parsed URLs kept per transport (a connector posts to a handful of addresses).
_URL_CACHE_SIZE = 256


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


#: The running task's "may I still send?" (:func:`send_fence`); ``None``: always.
_FENCE: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar("send_fence", default=None)


class send_fence:  # used as a function: ``with send_fence(may_send):``
    """Every request made in this block (in this task) is written only if ``may_send()`` still
    answers ``True`` once its connection is in hand; otherwise :class:`SendFencedError`.

    ``may_send`` must be cheap and synchronous: it runs between the connection and the write.
    (A class, not a generator context manager: the worker enters one per delivery.)
    """

    __slots__ = ("_may_send", "_token")

    def __init__(self, may_send: Callable[[], bool]) -> None:
        self._may_send = may_send

    def __enter__(self) -> None:
        self._token = _FENCE.set(self._may_send)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        _FENCE.reset(self._token)


class unfenced:  # used as a function: ``with unfenced():``
    """Requests made in this block are not fenced: a login or token fetch shared by every
    waiting delivery must not fail for all of them because one delivery's lease ran out (the
    delivery's own request is still fenced once the block is left)."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _FENCE.set(None)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        _FENCE.reset(self._token)


def _fenced() -> SendFencedError | None:
    """The error to stop the current request with, or ``None`` when it may go."""
    may_send = _FENCE.get()
    if may_send is None or may_send():
        return None
    return SendFencedError(
        "not sent: the delivery's lease can no longer be trusted",
        message_vi="không gửi: quyền giữ thông điệp không còn tin cậy được",
    )


def check_send_fence() -> None:
    """Raise :class:`SendFencedError` if the current :func:`send_fence` says no."""
    error = _fenced()
    if error is not None:
        raise error


class _FencedClientRequest(aiohttp.ClientRequest):
    """aiohttp's request, asking the send fence with the connection in hand.

    ``send`` is called once the pool gave a connection and before anything is written (a
    request without a body writes its headers inside it); a request with a body is written by
    ``write_bytes`` (its own task before Python 3.12, so it asks again there). A "no" in
    ``write_bytes`` leaves the buffered headers unwritten, fails the response with the error
    and closes the connection.
    """

    async def send(self, conn: Connection) -> aiohttp.ClientResponse:
        check_send_fence()  # the caller closes the connection
        return await super().send(conn)

    async def write_bytes(
        self, writer: AbstractStreamWriter, conn: Connection, content_length: int | None = None
    ) -> None:
        error = _fenced()
        if error is not None:
            if conn.protocol is not None:
                conn.protocol.set_exception(error)
            conn.close()
            return
        await super().write_bytes(writer, conn, content_length)


class _FencedHTTPTransport(httpx.AsyncHTTPTransport):
    """httpx's own pool, asking the send fence when httpcore is about to write the headers."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if _FENCE.get() is not None:
            request.extensions = {
                **request.extensions,
                "trace": _fence_trace(request.extensions.get("trace")),
            }
        return await super().handle_async_request(request)


_HEADERS_GO = frozenset({"http11.send_request_headers.started", "http2.send_request_headers.started"})


def _fence_trace(
    inner: Callable[[str, dict[str, Any]], Awaitable[None]] | None,
) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
    async def trace(event: str, info: dict[str, Any]) -> None:
        if inner is not None:
            await inner(event, info)
        if event in _HEADERS_GO:
            check_send_fence()

    return trace


class TransportKind(enum.StrEnum):
    AIOHTTP = "aiohttp"
    """httpx API on an aiohttp connection pool (the default)."""
    HTTPX = "httpx"
    """httpx's own httpcore pool (kept for comparison and as a fallback)."""


class _AiohttpTransport(AiohttpTransport):
    """:class:`AiohttpTransport` with honest connection errors and a short per-request path.

    httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` (connection refused, reset, DNS
    failure) to ``httpx.ConnectTimeout``; the retry policy treats timeouts as throttling
    (longer minimum delay), so a refused connection is re-raised as ``httpx.ConnectError``.

    Per request it hands aiohttp the URL and headers as aiohttp takes them (a parsed URL cached
    per address, plain header pairs, one ``ClientTimeout`` per timeout setting) and reads the
    answer whole before returning it: the hub's connectors never stream, and reading through
    httpx's async byte stream cost more CPU than the read itself.
    """

    def __init__(self, *, client: Callable[[], aiohttp.ClientSession], limits: httpx.Limits) -> None:
        super().__init__(client=client, limits=limits)
        self._urls: dict[str, yarl.URL] = {}
        self._timeouts: dict[tuple[float | None, float | None, float | None], aiohttp.ClientTimeout] = {}

    def _session(self) -> aiohttp.ClientSession:
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        return self.client

    def _url(self, url: httpx.URL) -> yarl.URL:
        text = str(url)
        parsed = self._urls.get(text)
        if parsed is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            parsed = self._urls[text] = yarl.URL(text, encoded=True)
        return parsed

    def _timeout(self, extensions: Mapping[str, Any]) -> aiohttp.ClientTimeout:
        given = extensions.get("timeout") or {}
        key = (given.get("connect"), given.get("read"), given.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            # As httpx-aiohttp maps them: connect → socket connect, read → socket read, pool → connect.
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                sock_connect=key[0], sock_read=key[1], connect=key[2]
            )
        return timeout

    async def post_bytes(
        self, url: yarl.URL, headers: Mapping[str, str], content: bytes, client_timeout: aiohttp.ClientTimeout
    ) -> PostAnswer:
        """One POST straight on the aiohttp session (no httpx request or response built); the
        errors are httpx's, as :meth:`handle_async_request` raises them."""
        with _httpx_errors(None):
            async with self._session().request(
                "POST",
                url,
                headers=headers,
                data=content,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=client_timeout,
            ) as answer:
                body = await answer.read()
        return PostAnswer(answer.status, answer.headers, body)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _httpx_errors(request):
            async with self._session().request(
                request.method,
                self._url(request.url),
                headers=_header_pairs(request.headers),
                data=_body(request),
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=self._timeout(request.extensions),
                server_hostname=request.extensions.get("sni_hostname"),
            ) as answer:
                body = await answer.read()
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode()
        return httpx.Response(
            answer.status, headers=answer.raw_headers, content=body, request=request, extensions=extensions
        )


class _httpx_errors:  # used as a function: ``with _httpx_errors(request):``
    """aiohttp's errors as httpx's (httpx-aiohttp's mapping), a refused connection as
    ``httpx.ConnectError`` rather than the ``ConnectTimeout`` that mapping makes of it.

    A class, not a generator context manager: it wraps every request, and costs nothing unless
    something is raised.
    """

    __slots__ = ("_request",)

    def __init__(self, request: httpx.Request | None) -> None:
        self._request = request

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if not isinstance(exc, Exception):
            return
        mapped = _as_httpx(exc, self._request)
        if mapped is not exc:
            raise mapped


def _as_httpx(exc: Exception, request: httpx.Request | None) -> Exception:
    """What :func:`map_aiohttp_exceptions` makes of ``exc`` (``exc`` itself if nothing), refined."""
    try:
        with map_aiohttp_exceptions():
            raise exc
    except httpx.ConnectTimeout as mapped:
        cause = mapped.__cause__
        if cause is None or isinstance(cause, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
            return mapped
        error = httpx.ConnectError(str(mapped) or type(cause).__name__)
        if request is not None:
            error.request = request
        error.__cause__ = cause
        return error
    except Exception as other:  # noqa: BLE001  # mapped or not, it is what the caller raises
        return other


@dataclass(frozen=True, slots=True)
class PostAnswer:
    """What :meth:`DirectPost.post` returns: the answer, read whole."""

    status_code: int
    headers: Mapping[str, str]
    """Case-insensitive (aiohttp's or httpx's headers)."""
    content: bytes


def _header_pairs(headers: httpx.Headers) -> list[tuple[str, str]]:
    """The headers as sent by the caller, names in their own case (some portals' servers compare
    them case-sensitively; ``Headers.multi_items`` would lower-case them)."""
    encoding = headers.encoding
    return [(name.decode(encoding), value.decode(encoding)) for name, value in headers.raw]


def _body(request: httpx.Request) -> bytes | httpx.AsyncByteStream | None:
    """The request body as aiohttp takes it: bytes when read, else the stream (never empty bytes)."""
    try:
        return request.content or None
    except httpx.RequestNotRead:
        request.headers.pop("transfer-encoding", None)  # aiohttp chunks the stream itself
        return request.stream  # type: ignore[return-value]


def timeout_for(settings: EndpointSettings | None) -> httpx.Timeout:
    """Connect/read/write/pool timeouts from the endpoint settings."""
    if settings is None:
        return httpx.Timeout(30.0, connect=5.0)
    return httpx.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds)


class HubHttpClient(httpx.AsyncClient):
    """An :class:`httpx.AsyncClient` that names its transport, for :class:`DirectPost`.

    Everything else is httpx's client: the LGSP connectors and any ad-hoc call use it as such.
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self.direct_transport = transport


class DirectPost:
    """POSTs to one URL through the client's transport (httpx's transport API), not its Client layer.

    Per call the httpx client would merge the URL with its base, build a cookie jar request,
    merge default headers and extract cookies from the answer: about half of a worker's CPU per
    delivery (``benchmarks/bench_e2e.py``). A connector's calls need none of it — fixed
    addresses, no cookies, no redirects, no auth flow — so the URL, the fixed headers and the
    timeouts are prepared once here. On the hub's aiohttp transport each call goes straight to
    its aiohttp session — no :class:`httpx.Request` or :class:`httpx.Response` is built, which
    cost about a fifth of the worker's event-loop CPU per delivery (``benchmarks/bench_worker_cpu.py``); on
    httpx's own pool it builds only its :class:`httpx.Request`. Either way the answer is a
    :class:`PostAnswer` read whole, the errors are httpx's (so :mod:`connectors.http_errors`
    maps them as before), and the client's timeouts apply.

    A client not made by :func:`build_http_client` (one with event hooks, a test's own client)
    is used as a client: nothing it does is skipped.
    """

    def __init__(self, http: httpx.AsyncClient, url: str, headers: Mapping[str, str]) -> None:
        self.url = httpx.URL(url)
        self._http = http
        self._headers = dict(headers)
        self._extensions = {"timeout": http.timeout.as_dict()}
        transport = http.direct_transport if isinstance(http, HubHttpClient) else None
        self._transport = None if any(http.event_hooks.values()) else transport
        #: On the hub's aiohttp transport: the aiohttp session takes the call directly (URL and
        #: timeouts prepared here; aiohttp adds ``Host`` and ``Content-Length`` itself).
        self._aiohttp = self._transport if isinstance(self._transport, _AiohttpTransport) else None
        if self._aiohttp is not None:
            self._yarl_url = self._aiohttp._url(self.url)
            self._client_timeout = self._aiohttp._timeout(self._extensions)

    async def post(self, content: bytes, headers: Mapping[str, str]) -> PostAnswer:
        """``content`` with the fixed headers and ``headers`` (these win); the answer read whole.

        Under :func:`send_fence` the fence is asked here too (nothing to build for a request that
        will not go) and again by the transport once the connection is in hand.
        """
        check_send_fence()
        merged = {**self._headers, **headers}
        if self._aiohttp is not None:
            return await self._aiohttp.post_bytes(self._yarl_url, merged, content, self._client_timeout)
        if self._transport is None:
            response = await self._http.post(self.url, content=content, headers=merged)
            return PostAnswer(response.status_code, response.headers, response.content)
        request = httpx.Request(
            "POST", self.url, headers=merged, content=content, extensions=self._extensions
        )
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return PostAnswer(response.status_code, response.headers, response.content)


def build_http_client(
    settings: EndpointSettings | None = None,
    *,
    max_connections: int | None = None,
    transport: TransportKind = TransportKind.AIOHTTP,
    verify: bool = True,
) -> HubHttpClient:
    """An httpx client for one endpoint (or a shared one when ``settings`` is None).

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
        pool = _FencedHTTPTransport(verify=verify, limits=limits, trust_env=False)
        return HubHttpClient(transport=pool, timeout=timeout, limits=limits, trust_env=False)

    def session_factory() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=connections,
            limit_per_host=connections,
            keepalive_timeout=KEEPALIVE_SECONDS,
            ttl_dns_cache=DNS_CACHE_SECONDS,
            ssl=httpx.create_ssl_context(verify=verify),
        )
        # Connectors keep no cookies (DirectPost); the httpx client keeps its own jar for the rest.
        return aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            request_class=_FencedClientRequest,
        )

    return HubHttpClient(
        transport=_AiohttpTransport(client=session_factory, limits=limits),
        timeout=timeout,
        limits=limits,
        trust_env=False,
    )
