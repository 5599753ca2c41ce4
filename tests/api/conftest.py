from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.livehub import LiveHub, live_hub


@pytest.fixture
def hub(database_url: str, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(database_url, tmp_path / "data") as running:
        yield running
