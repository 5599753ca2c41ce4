"""A started hub process exempts its start-up heap from the garbage collector (docs/delivery.md §9.3)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from hub import runtime
from hub.config import Settings


async def test_serve_freezes_the_start_up_heap_before_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """Full collections would walk every start-up object again, pausing the worker's event loop."""
    seen: list[object] = []

    @contextlib.asynccontextmanager
    async def started(_settings: Settings, **_options: Any) -> AsyncIterator[object]:
        seen.append(("frozen at start", gc.get_freeze_count()))
        yield object()

    async def signalled(_hub: object) -> int:
        seen.append(("frozen while running", gc.get_freeze_count() > 0))
        return runtime.EXIT_OK

    monkeypatch.setattr(runtime, "start", started)
    monkeypatch.setattr(runtime, "until_signalled", signalled)
    try:
        assert await runtime.serve(cast(Settings, object())) == runtime.EXIT_OK
    finally:
        gc.unfreeze()
    assert seen == [("frozen at start", 0), ("frozen while running", True)]
