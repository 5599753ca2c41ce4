"""Fixtures: one real simulator per module (loopback HTTP), reset before each test."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from connectors.dvcqg import DvcqgConnector, build_dvcqg_connector
from connectors.dvcqg.simulator import DvcqgSimulator, SimulatorConfig
from connectors.settings import EndpointSettings

MADONVI = "000.00.18.H42"


@pytest.fixture(scope="module")
def simulator_server() -> Iterator[DvcqgSimulator]:
    sim = DvcqgSimulator(SimulatorConfig(madonvi=MADONVI, hang_seconds=30))
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def simulator(simulator_server: DvcqgSimulator) -> DvcqgSimulator:
    simulator_server.reset()
    simulator_server.config.session_ttl_seconds = 1800
    simulator_server.config.progress_answer = "json"
    simulator_server.config.expired_http_status = 200
    return simulator_server


def endpoint_settings(sim: DvcqgSimulator, **options: Any) -> EndpointSettings:
    return EndpointSettings.model_validate(
        {
            "kind": "dvcqg",
            "url": sim.adapter_url,
            "username": "hub",
            "password": "hub-secret",
            "timeout_seconds": 2,
            "connect_timeout_seconds": 1,
            "options": {"madonvi": MADONVI, "login_backoff_seconds": 0.01, **options},
        }
    )


class Capture:
    """Request bodies the connector sent (an httpx event hook on the real client)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    async def __call__(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/mapi/g"):
            self.bodies.append(json.loads(request.content))
            self.headers.append(dict(request.headers))

    def services(self) -> list[str]:
        return [b["service"] for b in self.bodies]


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
