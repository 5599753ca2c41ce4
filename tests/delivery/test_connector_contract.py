"""The connector seam (connectors/base.py) as the worker relies on it, on the real webhook
connector against a loopback HTTP sink and on the in-process fake the fast worker tests use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest

from connectors.base import Connector, Delivery
from connectors.registry import open_connectors
from connectors.settings import EndpointSettings
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.sink import WebhookSink
from schemas.errors import PermanentError, RetryableError

from .fakes import FakeConnector


@dataclass
class Portal:
    connector: Connector
    configure: Callable[..., None]


@pytest.fixture(params=["webhook", "fake"])
async def portal(request: pytest.FixtureRequest) -> AsyncIterator[Portal]:
    if request.param == "fake":
        fake = FakeConnector("portal")
        yield Portal(fake, fake.configure)
        return
    async with AsyncExitStack() as stack:
        sink = WebhookSink()
        await sink.start_async()
        stack.push_async_callback(sink.stop_async)
        settings = EndpointSettings(kind="webhook", url=sink.url)
        connectors = await stack.enter_async_context(open_connectors({"portal": settings}))

        def configure(*, status: int = 200, fail_first: int = 0) -> None:
            """The fake's knobs as a fault of the sink's shared fault model."""
            faults = [Fault(kind=FaultKind.STATUS, status=status, attempts=fail_first or None, times=None)]
            sink.faults.replace(faults if status != 200 else [])

        yield Portal(connectors["portal"], configure)


def delivery(message_id: str = "7d0c7f0e-1111-4c1e-9a39-000000000001") -> Delivery:
    return Delivery(
        message_id=message_id,
        endpoint="portal",
        kind="dossier.sync",
        payload={"MaHoSo": "H42.01-260101-0001"},
        dossier_code="H42.01-260101-0001",
    )


async def test_a_delivery_returns_a_receipt(portal: Portal) -> None:
    assert isinstance(portal.connector, Connector)
    assert portal.connector.name == "portal"
    receipt = await portal.connector.deliver(delivery())
    assert receipt.status_code == 200
    assert "7d0c7f0e-1111-4c1e-9a39-000000000001" in receipt.request_summary


@pytest.mark.parametrize("status", [429, 503])
async def test_a_busy_portal_is_a_retryable_error(portal: Portal, status: int) -> None:
    portal.configure(status=status)
    with pytest.raises(RetryableError) as caught:
        await portal.connector.deliver(delivery())
    assert caught.value.retryable


@pytest.mark.parametrize("status", [401, 422])
async def test_a_refusal_is_a_permanent_error(portal: Portal, status: int) -> None:
    portal.configure(status=status)
    with pytest.raises(PermanentError) as caught:
        await portal.connector.deliver(delivery())
    assert not caught.value.retryable


async def test_fail_first_fails_each_message_that_many_times(portal: Portal) -> None:
    portal.configure(status=503, fail_first=1)
    with pytest.raises(RetryableError):
        await portal.connector.deliver(delivery())
    assert (await portal.connector.deliver(delivery())).status_code == 200
    with pytest.raises(RetryableError):
        await portal.connector.deliver(delivery("7d0c7f0e-1111-4c1e-9a39-000000000002"))
