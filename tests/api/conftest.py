from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.api.app import ROUTE_MODULES
from tests.api.livehub import LiveHub, live_hub


@pytest.fixture
def hub(database_url: str, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(database_url, tmp_path / "data") as running:
        yield running


@pytest.fixture
def full_hub(database_url: str, tmp_path: Path) -> Iterator[LiveHub]:
    """The hub with every route module present (DLQ, DVCQG inbound, signing, verification)."""
    with live_hub(database_url, tmp_path / "data", route_modules=ROUTE_MODULES) as running:
        yield running
