"""Waiting on several :class:`asyncio.Event` s at once, with a time limit.

The delivery worker naps until it is woken, has capacity again or is told to stop; the outage
reporter pauses until the database is back or the process stops. Both wait for whichever
comes first, and neither leaves a waiter task behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def first_of(events: Iterable[asyncio.Event], *, seconds: float) -> None:
    """Return once any of ``events`` is set, or after ``seconds``; the waiters are cancelled."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
