"""Fixtures shared by the delivery tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hub.simulators.sink import WebhookSink


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    """A webhook receiver on loopback, started on the test's event loop."""
    server = WebhookSink()
    await server.start_async()
    yield server
    await server.stop_async()
