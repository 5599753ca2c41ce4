"""Fixtures for the LGSP connector tests: a live simulator and an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from hub.simulators.lgsp import LgspContract, LgspSimulator


@pytest.fixture(scope="session")
def lgsp_contract() -> LgspContract:
    """The bundled WSDL and XSD, compiled once for every simulator of the session."""
    return LgspContract()


@pytest.fixture
def simulator(lgsp_contract: LgspContract) -> Iterator[LgspSimulator]:
    with LgspSimulator(contract=lgsp_contract) as sim:
        yield sim


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(headers={"User-Agent": "motcua-hub-test"}) as client:
        yield client
