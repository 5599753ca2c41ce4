"""Webhook connector and HTTP client factory against a real loopback server."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import pytest
from aiohttp import web

from connectors.base import Connector, Delivery
from connectors.http import TransportKind, build_http_client
from connectors.registry import build_connector
from connectors.settings import EndpointSettings
from connectors.webhook import WebhookConnector
from hub.db.models import MessageState
from hub.db.session import Database
from hub.delivery import Worker
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.sink import WebhookSink
from schemas.errors import (
    BusinessRejectionError,
    EndpointBusyError,
    EndpointTimeoutError,
    RemoteAuthenticationError,
    TransportError,
)

from .helpers import attempts, make_settings, message, put, until

E = TypeVar("E", bound=BaseException)


def delivery(message_id: str = "7d0c7f0e-1111-4c1e-9a39-000000000001") -> Delivery:
    return Delivery(
        message_id=message_id,
        endpoint="portal",
        kind="dossier.sync",
        payload={"MaHoSo": "H42.01-260101-0001", "ChuHoSo": "Trần Thị Bình"},
        dossier_code="H42.01-260101-0001",
        attempt=2,
    )


async def failed_delivery(settings: EndpointSettings, error: type[E]) -> pytest.ExceptionInfo[E]:
    """Deliver :func:`delivery` with a webhook connector on ``settings``; it must raise ``error``."""
    client = build_http_client(settings)
    try:
        with pytest.raises(error) as caught:
            await WebhookConnector("portal", settings, client).deliver(delivery())
    finally:
        await client.aclose()
    return caught


@pytest.mark.parametrize("transport", list(TransportKind))
async def test_posts_json_with_stable_headers(sink: WebhookSink, transport: TransportKind) -> None:
    settings = EndpointSettings(kind="webhook", url=sink.url)  # type: ignore[arg-type]
    client = build_http_client(settings, transport=transport)
    try:
        connector = build_connector("portal", settings, client)
        assert isinstance(connector, WebhookConnector)
        assert isinstance(connector, Connector)
        receipt = await connector.deliver(delivery())
    finally:
        await client.aclose()
    assert receipt.status_code == 200
    assert "7d0c7f0e-1111-4c1e-9a39-000000000001" in receipt.request_summary
    [arrival] = sink.arrivals()
    assert arrival.message_id == "7d0c7f0e-1111-4c1e-9a39-000000000001"
    assert arrival.dossier_code == "H42.01-260101-0001"
    assert arrival.attempt == 2
    assert arrival.body.decode() == '{"MaHoSo":"H42.01-260101-0001","ChuHoSo":"Trần Thị Bình"}'


@pytest.mark.parametrize(
    ("status", "error", "retry_after"),
    [
        (503, EndpointBusyError, None),
        (429, EndpointBusyError, 7.0),
        (408, EndpointBusyError, None),
        (401, RemoteAuthenticationError, None),
        (403, RemoteAuthenticationError, None),
        (400, BusinessRejectionError, None),
        (422, BusinessRejectionError, None),
    ],
)
async def test_answers_map_to_hub_errors(
    sink: WebhookSink, status: int, error: type[Exception], retry_after: float | None
) -> None:
    sink.faults.add(
        kind=FaultKind.STATUS, status=status, retry_after="7" if retry_after else None, times=None
    )
    settings = EndpointSettings(kind="webhook", url=sink.url)  # type: ignore[arg-type]
    caught = await failed_delivery(settings, error)
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert getattr(caught.value, "retry_after", None) == retry_after
    assert f"HTTP {status}" in caught.value.response_summary  # type: ignore[attr-defined]


async def test_connection_refused_is_retryable(sink: WebhookSink) -> None:
    url = sink.url
    await sink.stop_async()
    settings = EndpointSettings(kind="webhook", url=url, connect_timeout_seconds=1)  # type: ignore[arg-type]
    caught = await failed_delivery(settings, TransportError)
    assert caught.value.retryable
    assert not isinstance(caught.value, EndpointTimeoutError)


async def test_slow_answer_is_a_timeout(sink: WebhookSink) -> None:
    sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=2.0, times=None)])
    settings = EndpointSettings(kind="webhook", url=sink.url, timeout_seconds=0.2)  # type: ignore[arg-type]
    caught = await failed_delivery(settings, TransportError)
    assert isinstance(caught.value, EndpointTimeoutError)
    assert caught.value.message_vi


async def test_sink_refuses_oversized_and_malformed_requests(sink: WebhookSink) -> None:
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", sink.port)
    writer.write(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: nope\r\n\r\n")
    await writer.drain()
    # aiohttp answers an unparseable request line with HTTP/1.0 (the request's version is unknown)
    assert (await reader.readline()).split(b" ", 2)[:2] in ([b"HTTP/1.1", b"400"], [b"HTTP/1.0", b"400"])
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", sink.port)
    writer.write(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 999999999\r\n\r\n")
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.1 413")
    writer.close()
    assert sink.arrivals() == []


async def test_worker_stores_what_the_receiver_echoes_masked(db: Database, database_url: str) -> None:
    """A receiver echoing the citizen's ID and phone number: the attempt log keeps them masked."""
    echo = "công dân CCCD 037190001234, SĐT 0912345678"

    async def receiver(request: web.Request) -> web.Response:
        await request.read()
        if request.headers.get("X-Dossier-Code") == "D-OK":
            return web.json_response({"ok": True, "note": echo})
        return web.json_response({"error": f"{echo} không hợp lệ"}, status=422)

    app = web.Application()
    app.router.add_post("/deliver", receiver)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    settings = make_settings(database_url, {"portal": f"http://{host}:{port}/deliver"})
    delivered, rejected = put(db, "portal", "D-OK"), put(db, "portal", "D-BAD")
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(settings, db, worker_id="w0").run(stop))
    try:
        await until(
            lambda: (
                message(db, delivered).state == MessageState.DELIVERED
                and message(db, rejected).state == MessageState.DEAD
            )
        )
    finally:
        stop.set()
        await task
        await runner.cleanup()
    for seq in (delivered, rejected):
        [attempt] = attempts(db, seq)
        stored = f"{attempt.request_summary} {attempt.response_summary} {attempt.error}"
        assert "037190001234" not in stored
        assert "0912345678" not in stored
        assert "*********234" in (attempt.response_summary or "")
