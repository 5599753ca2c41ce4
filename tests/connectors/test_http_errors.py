"""The connectors' shared HTTP error seam (``connectors/http_errors.py``), all four kinds at once.

One real aiohttp server on loopback plays every portal: it answers the calls a connector makes
before the delivery (DVCQG login, LGSP OAuth2 token) and then answers the delivery itself as
the test says: a status and a body, or no answer at all until the test ends (a hung portal).
The connectors run on the hub's own HTTP client (``connectors.http.build_http_client``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from connectors.base import Delivery, excerpt
from connectors.http import build_http_client
from connectors.http_errors import Remote, classify_status
from connectors.registry import build_connector
from connectors.settings import EndpointKind, EndpointSettings, RetrySettings
from hub.delivery.retry import RetryPolicy
from schemas.errors import (
    EndpointBusyError,
    EndpointTimeoutError,
    HubError,
    PermanentError,
    RemoteAuthenticationError,
    SoapFaultError,
)
from tests.connectors.lgsp.lgsp_factories import sync_delivery

KINDS = list(EndpointKind)
#: The sample dossier's owner ID and phone (tests.connectors.lgsp.lgsp_factories.make_dossier).
ID_NUMBER = "037190001234"
PHONE = "0912345678"
#: A partner's answer echoing the citizen's personal data (Decree 13/2023: never stored as is).
ECHO = f"Hồ sơ của công dân CCCD {ID_NUMBER}, SĐT {PHONE} không hợp lệ"


@dataclass
class Answer:
    """How the fake portal answers the delivery call."""

    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    """Answer nothing until the test ends (the client's timeout must fire)."""


class FakePortal:
    """Login and token calls succeed; every other POST gets :attr:`answer`."""

    def __init__(self) -> None:
        self.answer = Answer()
        self.release = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        if request.path.endswith("/token"):
            return web.json_response({"access_token": "tok-1", "expires_in": 3600, "token_type": "bearer"})
        if request.path.endswith("/mapi/login"):
            return web.json_response({"error_code": 0, "message": "ok", "session": "S-1"})
        answer = self.answer
        if answer.hang:
            await self.release.wait()
        return web.Response(
            status=answer.status, body=answer.body, content_type=answer.content_type, headers=answer.headers
        )


@pytest.fixture
async def portal() -> AsyncIterator[FakePortal]:
    fake = FakePortal()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.url = f"http://{host}:{port}"
    yield fake
    fake.release.set()
    await runner.cleanup()


def settings_for(kind: EndpointKind, base: str, **overrides: Any) -> EndpointSettings:
    common: dict[str, Any] = {"kind": kind, "timeout_seconds": 5, "connect_timeout_seconds": 2, **overrides}
    if kind is EndpointKind.WEBHOOK:
        return EndpointSettings(url=f"{base}/hook", **common)
    if kind is EndpointKind.DVCQG:
        return EndpointSettings(
            url=base,
            username="hub",
            password=SecretStr("hub-secret"),
            options={"madonvi": "000.00.18.H42", "enrich_from_catalog": False, "login_backoff_seconds": 0.01},
            **common,
        )
    if kind is EndpointKind.LGSP_REST:
        return EndpointSettings(url=base, client_id="hub", client_secret=SecretStr("s3cret"), **common)
    return EndpointSettings(url=f"{base}/soap", username="hub", password=SecretStr("hub-secret"), **common)


def delivery() -> Delivery:
    return sync_delivery(message_id="7d0c7f0e-1111-4c1e-9a39-000000000001", endpoint="portal")


async def failed_delivery(portal: FakePortal, kind: EndpointKind, **overrides: Any) -> HubError:
    """Deliver once through a fresh connector; return the hub error it raised."""
    settings = settings_for(kind, portal.url, **overrides)
    async with build_http_client(settings) as http:
        connector = build_connector("portal", settings, http)
        try:
            with pytest.raises(HubError) as caught:
                await connector.deliver(delivery())
        finally:
            await connector.aclose()
    return caught.value


# --- a. a timeout is throttling, whatever the endpoint kind --------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_timeout_gets_the_throttle_minimum(portal: FakePortal, kind: EndpointKind) -> None:
    portal.answer = Answer(hang=True)
    error = await failed_delivery(portal, kind, timeout_seconds=0.3)
    assert isinstance(error, EndpointTimeoutError), repr(error)
    assert "timed out" in error.message
    assert error.request_summary
    policy = RetryPolicy(RetrySettings(schedule_seconds=[1.0], jitter_ratio=0, throttle_min_seconds=30))
    decision = policy.decide(1, error)
    assert decision.retry
    assert decision.delay == 30  # the schedule alone would say 1 s


# --- b. 408 and 425 are "try later" everywhere ------------------------------------------------------


@pytest.mark.parametrize("status", [408, 425])
@pytest.mark.parametrize("kind", KINDS)
async def test_408_and_425_are_retryable(portal: FakePortal, kind: EndpointKind, status: int) -> None:
    portal.answer = Answer(
        status=status, body=b"try later", content_type="text/plain", headers={"Retry-After": "7"}
    )
    error = await failed_delivery(portal, kind)
    assert isinstance(error, EndpointBusyError), repr(error)
    assert error.retryable
    assert error.status_code == status
    assert error.retry_after == 7
    policy = RetryPolicy(RetrySettings(retry_after_min_seconds=1, throttle_min_seconds=30))
    assert policy.decide(1, error).delay == 7  # Retry-After honoured; not throttling


@pytest.mark.parametrize("kind", KINDS)
async def test_other_4xx_is_permanent(portal: FakePortal, kind: EndpointKind) -> None:
    portal.answer = Answer(status=422, body=b"unprocessable", content_type="text/plain")
    error = await failed_delivery(portal, kind)
    assert isinstance(error, PermanentError), repr(error)
    assert error.status_code == 422


# --- c. what the partner echoes is stored masked ---------------------------------------------------


def assert_masked(*texts: str | None) -> None:
    for text in texts:
        assert text is not None
        assert ID_NUMBER not in text
        assert PHONE not in text


@pytest.mark.parametrize("kind", KINDS)
async def test_rejection_summaries_are_masked(portal: FakePortal, kind: EndpointKind) -> None:
    body = json.dumps({"error_code": "-1", "Status": 0, "message": ECHO, "Message": ECHO}, ensure_ascii=False)
    portal.answer = Answer(status=400, body=body.encode())
    error = await failed_delivery(portal, kind)
    assert not error.retryable
    assert error.status_code == 400
    assert_masked(error.response_summary, error.request_summary, error.message, error.message_vi, str(error))
    assert "*********234" in (error.response_summary or "")


async def test_dvcqg_business_rejection_is_masked(portal: FakePortal) -> None:
    """The portal refuses with HTTP 200 and an ``error_code`` whose message echoes the citizen."""
    body = json.dumps({"error_code": "-1", "message": ECHO}, ensure_ascii=False)
    portal.answer = Answer(status=200, body=body.encode())
    error = await failed_delivery(portal, EndpointKind.DVCQG)
    assert not error.retryable
    assert_masked(error.response_summary, error.message, error.message_vi)
    assert "*********234" in (error.response_summary or "")


@pytest.mark.parametrize(
    ("kind", "answer"),
    [
        (EndpointKind.WEBHOOK, {"ok": True, "note": ECHO}),
        (EndpointKind.DVCQG, {"error_code": 0, "message": ECHO}),
        (EndpointKind.LGSP_REST, {"Status": 1, "Message": ECHO, "DocumentId": "LGSP-1"}),
    ],
)
async def test_receipt_summaries_are_masked(
    portal: FakePortal, kind: EndpointKind, answer: dict[str, Any]
) -> None:
    portal.answer = Answer(body=json.dumps(answer, ensure_ascii=False).encode())
    settings = settings_for(kind, portal.url)
    async with build_http_client(settings) as http:
        connector = build_connector("portal", settings, http)
        receipt = await connector.deliver(delivery())
        await connector.aclose()
    assert receipt.status_code == 200
    assert_masked(receipt.response_summary, receipt.request_summary)
    assert "*********234" in receipt.response_summary


# --- the table itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (204, None),
        (408, EndpointBusyError),
        (425, EndpointBusyError),
        (429, EndpointBusyError),
        (500, EndpointBusyError),
        (503, EndpointBusyError),
        (401, RemoteAuthenticationError),
        (403, RemoteAuthenticationError),
        (400, SoapFaultError),
        (404, SoapFaultError),
    ],
)
def test_classify_status_table(status: int, expected: type[HubError] | None) -> None:
    error = classify_status(
        status,
        Remote("test endpoint", "hệ thống thử"),
        headers={"retry-after": "12"},
        request_summary="POST /x",
        response=f"echo {ID_NUMBER}",
        rejection=SoapFaultError,
    )
    if expected is None:
        assert error is None
        return
    assert type(error) is expected
    assert error.status_code == status
    assert error.request_summary == "POST /x"
    assert error.response_summary == "echo *********234"
    assert getattr(error, "retry_after", None) == (12 if expected is EndpointBusyError else None)


def test_excerpt_masks_before_it_cuts() -> None:
    """An ID number straddling the cut is masked whole, not left as an 11-digit stub."""
    text = "x" * 490 + f" CCCD {ID_NUMBER} " + "y" * 100
    cut = excerpt(text, 500)
    assert "0371900" not in cut
    assert cut.endswith(f"… [{len(text) - 500} more characters]")


@pytest.mark.parametrize("answer", [f"HTTP 200 CCCD {ID_NUMBER}", f"HTTP 200 CCCD {ID_NUMBER}".encode()])
def test_a_short_answer_seen_again_is_masked_and_cut_as_the_first_time(answer: str | bytes) -> None:
    """Short texts are excerpted once and remembered: each limit still gets its own cut."""
    first = excerpt(answer)
    assert ID_NUMBER not in first
    assert excerpt(answer) == first
    assert excerpt(answer, 12) == "HTTP 200 CCC… [" + str(len(answer) - 12) + " more characters]"
    assert excerpt(answer, 12) == "HTTP 200 CCC… [" + str(len(answer) - 12) + " more characters]"
    assert excerpt(answer) == first
