"""Fixtures for the LGSP connector tests: a live simulator and an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from connectors.lgsp.simulator import LgspSimulator


@pytest.fixture
def simulator() -> Iterator[LgspSimulator]:
    with LgspSimulator() as sim:
        yield sim


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(headers={"User-Agent": "motcua-hub-test"}) as client:
        yield client
