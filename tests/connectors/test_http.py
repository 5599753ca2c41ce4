"""DirectPost: connector calls handed straight to the httpx transport (connectors/http.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connectors.base import Delivery
from connectors.http import DirectPost, TransportKind, build_http_client, send_fence, unfenced
from connectors.settings import EndpointSettings
from connectors.webhook import WebhookConnector
from schemas.errors import SendFencedError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def _serving(handle: Handler) -> AsyncIterator[str]:
    """A loopback aiohttp server answering ``POST /in`` with ``handle``; yields that URL."""
    app = web.Application()
    app.router.add_post("/in", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/in"))
    finally:
        await server.close()


@dataclass
class Receiver:
    """A loopback server that records each request and sets a cookie on every answer."""

    url: str = ""
    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def handle(request: web.Request) -> web.Response:
        state.seen.append((dict(request.headers), await request.read()))
        response = web.json_response({"ok": True}, headers={"X-Receipt-Id": f"r{len(state.seen)}"})
        response.set_cookie("portal_session", f"s{len(state.seen)}")
        return response

    async with _serving(handle) as url:
        state.url = url
        yield state


def delivery(n: int) -> Delivery:
    return Delivery(
        message_id=f"7d0c7f0e-1111-4c1e-9a39-00000000000{n}",
        endpoint="portal",
        kind="dossier.sync",
        payload={"n": n},
        headers={"X-Extra": "from-delivery"},
    )


@pytest.mark.parametrize("transport", list(TransportKind))
async def test_webhook_sends_keep_no_cookies_and_merge_headers(
    receiver: Receiver, transport: TransportKind
) -> None:
    """Connectors keep no cookie jar: a portal's cookie never rides on the next delivery."""
    settings = EndpointSettings(
        kind="webhook",  # type: ignore[arg-type]
        url=receiver.url,
        options={"headers": {"X-Extra": "configured", "X-Configured": "yes"}},
    )
    async with build_http_client(settings, transport=transport) as client:
        connector = WebhookConnector("portal", settings, client)
        first = await connector.deliver(delivery(1))
        second = await connector.deliver(delivery(2))
        assert not client.cookies
    assert (first.remote_reference, second.remote_reference) == ("r1", "r2")
    assert first.response_summary == 'HTTP 200 {"ok": true}'
    headers, body = receiver.seen[1]
    assert "Cookie" not in headers
    assert body == b'{"n":2}'
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Content-Length"] == str(len(body))
    assert headers["X-Message-Id"] == "7d0c7f0e-1111-4c1e-9a39-000000000002"
    assert headers["X-Extra"] == "from-delivery"  # the delivery's own headers win
    assert headers["X-Configured"] == "yes"


async def test_a_client_with_event_hooks_is_used_as_a_client(receiver: Receiver) -> None:
    """Nothing the caller's client does is skipped (here: its request hook)."""
    hooked: list[str] = []

    async def hook(request: httpx.Request) -> None:
        hooked.append(str(request.url))

    async with httpx.AsyncClient(event_hooks={"request": [hook]}) as client:
        response = await DirectPost(client, receiver.url, {"X-Fixed": "1"}).post(b"{}", {"X-Call": "2"})
    assert response.status_code == 200
    assert hooked == [receiver.url]
    assert receiver.seen[0][0]["X-Fixed"] == "1"
    assert receiver.seen[0][0]["X-Call"] == "2"


async def test_refused_connection_is_a_connect_error_not_a_timeout() -> None:
    """The retry policy waits longer after timeouts; a refused port is not one."""
    settings = EndpointSettings(kind="webhook", url="http://127.0.0.1:9/in")  # type: ignore[arg-type]
    async with build_http_client(settings) as client:
        with pytest.raises(httpx.ConnectError):
            await DirectPost(client, settings.url, {}).post(b"{}", {})


@dataclass
class HeldReceiver:
    """A loopback server that holds each request until the test lets it go."""

    url: str = ""
    arrived: list[str] = field(default_factory=list)
    first_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    let_go: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def held_receiver() -> AsyncIterator[HeldReceiver]:
    state = HeldReceiver()

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        state.arrived.append(request.headers["X-Message-Id"])
        state.first_arrived.set()
        await state.let_go.wait()
        return web.json_response({"ok": True})

    async with _serving(handle) as url:
        state.url = url
        yield state
        state.let_go.set()


@pytest.mark.parametrize("transport", list(TransportKind))
async def test_the_send_fence_is_asked_again_once_the_pool_gives_a_connection(
    held_receiver: HeldReceiver, transport: TransportKind
) -> None:
    """A delivery that passed the fence and then waited for a pooled connection asks again
    before writing: a "no" by then sends nothing (docs/delivery.md §12.2)."""
    settings = EndpointSettings(kind="webhook", url=held_receiver.url, max_in_flight=1)
    answers: list[bool] = []
    asked = asyncio.Event()
    allowed = True

    def may_send() -> bool:
        answers.append(allowed)
        asked.set()
        return allowed

    async def fenced_delivery() -> None:
        with send_fence(may_send):
            await connector.deliver(delivery(2))

    async with build_http_client(settings, transport=transport) as client:
        connector = WebhookConnector("portal", settings, client)
        first = asyncio.create_task(connector.deliver(delivery(1)))  # holds the only connection
        await held_receiver.first_arrived.wait()
        second = asyncio.create_task(fenced_delivery())
        await asked.wait()  # it passed the fence and now waits for the pool
        allowed = False  # its lease ran out meanwhile
        held_receiver.let_go.set()
        assert (await first).status_code == 200
        with pytest.raises(SendFencedError):
            await second
        assert answers[0] is True
        assert answers[-1] is False
        # The pool is whole: the next delivery goes out on it.
        with send_fence(lambda: True):
            assert (await connector.deliver(delivery(3))).status_code == 200
    assert held_receiver.arrived == [delivery(1).message_id, delivery(3).message_id]


async def test_a_fence_saying_no_as_the_body_is_written_sends_nothing(held_receiver: HeldReceiver) -> None:
    """aiohttp writes a request's body in a task of its own (before Python 3.12), a loop turn
    after ``send``: the fence is asked there too, and a "no" then leaves the buffered headers
    unwritten, fails the request and closes the connection."""
    settings = EndpointSettings(kind="webhook", url=held_receiver.url, max_in_flight=1)
    answers: list[bool] = []

    def may_send() -> bool:
        answers.append(len(answers) < 2)  # yes to DirectPost and to send(), no to the body writer
        return answers[-1]

    held_receiver.let_go.set()
    async with build_http_client(settings, transport=TransportKind.AIOHTTP) as client:
        connector = WebhookConnector("portal", settings, client)
        with send_fence(may_send), pytest.raises(SendFencedError):
            await connector.deliver(delivery(1))
        assert answers == [True, True, False]
        assert (await connector.deliver(delivery(2))).status_code == 200
    assert held_receiver.arrived == [delivery(2).message_id]


@pytest.mark.parametrize("transport", list(TransportKind))
async def test_a_shared_login_is_not_fenced_by_one_delivery(
    receiver: Receiver, transport: TransportKind
) -> None:
    """A login or token fetch made for every waiting delivery goes out even when the delivery
    that happens to make it may not send (``unfenced``); that delivery's own request does not."""
    settings = EndpointSettings(kind="webhook", url=receiver.url)
    async with build_http_client(settings, transport=transport) as client:
        post = DirectPost(client, receiver.url, {})
        with send_fence(lambda: False):
            with unfenced():
                assert (await post.post(b"{}", {"X-Call": "login"})).status_code == 200
            with pytest.raises(SendFencedError):
                await post.post(b"{}", {"X-Call": "delivery"})
    assert [headers["X-Call"] for headers, _body in receiver.seen] == ["login"]
