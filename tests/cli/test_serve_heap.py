"""``hub serve`` takes what start-up built out of the garbage collector's reach (hub/runtime.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hub import runtime


def test_serve_freezes_the_start_up_heap_once_running(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen_when_running: list[int] = []

    @contextlib.asynccontextmanager
    async def start(_settings: Any, **_options: Any) -> AsyncIterator[object]:
        yield object()

    async def until_signalled(_hub: object) -> int:
        frozen_when_running.append(gc.get_freeze_count())
        return runtime.EXIT_OK

    monkeypatch.setattr(runtime, "start", start)
    monkeypatch.setattr(runtime, "until_signalled", until_signalled)
    try:
        assert asyncio.run(runtime.serve(object())) == runtime.EXIT_OK  # type: ignore[arg-type]
    finally:
        gc.unfreeze()
    assert frozen_when_running
    assert frozen_when_running[0] > 0
