"""A hub process settles its heap once started: the collector leaves the startup heap alone."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from hub import runtime


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector as it was, whatever the test did to it."""
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector")
def test_settle_heap_freezes_what_exists_and_collects_the_young_less_often() -> None:
    gc.unfreeze()
    young, middle, old = gc.get_threshold()
    runtime.settle_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (max(young, runtime.GC_YOUNG_THRESHOLD), middle, old)


def test_serve_settles_the_heap_once_the_hub_has_started(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def start(_settings: Any, **_options: Any) -> AsyncIterator[object]:
        events.append("started")
        yield object()
        events.append("stopped")

    async def until_signalled(_hub: object) -> int:
        events.append("running")
        return runtime.EXIT_OK

    monkeypatch.setattr(runtime, "start", start)
    monkeypatch.setattr(runtime, "until_signalled", until_signalled)
    monkeypatch.setattr(runtime, "settle_heap", lambda: events.append("settled"))
    assert asyncio.run(runtime.serve(object())) == runtime.EXIT_OK  # type: ignore[arg-type]
    assert events == ["started", "settled", "running", "stopped"]
