"""What only the SQL store does: wake-ups from NOTIFY and from in-process commits (docs/delivery.md §9).

Everything the worker relies on of any store is in ``test_store_contract.py``.
"""

from __future__ import annotations

import asyncio

import pytest

from hub.db.session import Database
from hub.delivery.sql_store import SqlOutboxStore

from .helpers import put


async def test_an_in_process_commit_wakes_the_listener_at_once(db: Database) -> None:
    """``hub serve`` on SQLite: the API's commit wakes the embedded worker (no NOTIFY there)."""
    store = SqlOutboxStore(db)
    woken: list[str] = []
    async with store.listen(lambda: woken.append("woken")):
        await asyncio.to_thread(put, db, "portal", "D1")
        # The commit hook fired on the committing thread, before ``put`` returned.
        assert "woken" in woken
    woken.clear()
    await asyncio.to_thread(put, db, "portal", "D2")
    assert woken == []  # the hooks are gone with the listener


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # NOTIFY: PostgreSQL only
async def test_a_notify_from_another_process_wakes_the_listener(db: Database, database_url: str) -> None:
    store = SqlOutboxStore(db)
    woken = asyncio.Event()
    other = Database.connect(database_url, pool_size=1)  # its commits are not watched in-process
    try:
        async with store.listen(woken.set):
            await asyncio.wait_for(woken.wait(), timeout=30)  # LISTEN is established
            woken.clear()
            await asyncio.to_thread(put, other, "portal", "D1")
            await asyncio.wait_for(woken.wait(), timeout=30)
    finally:
        other.dispose()
