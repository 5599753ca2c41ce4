"""Fixtures: one real simulator per module (loopback HTTP), reset before each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from connectors.dvcqg import DvcqgConnector, build_dvcqg_connector
from hub.simulators.dvcqg import DvcqgSimulator, SimulatorConfig
from tests.connectors.dvcqg.endpoint import MADONVI, Capture, endpoint_settings


@pytest.fixture(scope="module")
def simulator_server() -> Iterator[DvcqgSimulator]:
    with DvcqgSimulator(SimulatorConfig(madonvi=MADONVI, hang_seconds=30)) as sim:
        yield sim


@pytest.fixture
def simulator(simulator_server: DvcqgSimulator) -> DvcqgSimulator:
    simulator_server.reset()
    simulator_server.config.session_ttl_seconds = 1800
    simulator_server.config.progress_answer = "json"
    simulator_server.config.expired_http_status = 200
    return simulator_server


@pytest.fixture
def capture() -> Capture:
    return Capture()


@pytest.fixture
async def http(capture: Capture) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(2, connect=1), event_hooks={"request": [capture]}
    ) as client:
        yield client


@pytest.fixture
async def connector(simulator: DvcqgSimulator, http: httpx.AsyncClient) -> AsyncIterator[DvcqgConnector]:
    conn = build_dvcqg_connector("dvcqg", endpoint_settings(simulator), http)
    yield conn
    await conn.aclose()
