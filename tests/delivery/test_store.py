"""What only the SQL store does: wake-ups from NOTIFY, from SQLite's watch of committed rows and from
in-process commits (docs/delivery.md §9), and, on PostgreSQL, rows locked by another session (§12.1).

Everything the worker relies on of any store is in ``test_store_contract.py``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select, update
from sqlalchemy.exc import OperationalError

from hub.config import WorkerSettings
from hub.db.base import utcnow
from hub.db.models import EndpointHealth, MessageState, OutboxMessage
from hub.db.session import SQLITE_BUSY_TIMEOUT_SECONDS, Database
from hub.delivery.sql_store import SqlOutboxStore, _CommitWatch
from hub.delivery.store import Completion, Rescuer
from hub.outbox.transitions import AttemptOutcome

from .helpers import attempts, message, put


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


async def test_a_commit_from_another_process_wakes_the_listener(db: Database, database_url: str) -> None:
    """``hub worker`` beside the API: PostgreSQL's NOTIFY, SQLite's watch of committed rows."""
    store = SqlOutboxStore(db)
    woken = asyncio.Event()
    other = Database.connect(database_url, pool_size=1)  # its commits are not watched in-process
    try:
        async with store.listen(woken.set):
            await asyncio.wait_for(woken.wait(), timeout=30)  # LISTEN (the watch) is established
            woken.clear()
            await asyncio.to_thread(put, other, "portal", "D1")
            await asyncio.wait_for(woken.wait(), timeout=30)
    finally:
        other.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_sqlite_watch_sees_new_rows_not_the_workers_own_writes(db: Database, database_url: str) -> None:
    """Only a new outbox row wakes the worker: its claims and results change the database too."""
    store = SqlOutboxStore(db)
    other = Database.connect(database_url, pool_size=1)
    try:
        with _CommitWatch(db) as watch:
            assert not watch.new_rows()
            seq = put(other, "portal", "D1")
            assert watch.new_rows()
            assert not watch.new_rows()  # seen once
            claimed = store.claim_sync({"portal": 1}, "w#1", 60)
            assert [m.seq for m in claimed] == [seq]
            assert store.complete_sync([_delivered(seq, "w#1")], "w") == {seq}
            assert not watch.new_rows()
            put(db, "portal", "D2")  # the worker's own process (hub serve) is seen too
            assert watch.new_rows()
    finally:
        other.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_watch_that_cannot_start_closes_its_connection(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watch loop retries after a failed start: each try's connection is closed, not left
    open (it is the watch's own, out of the pool)."""
    opened: list[object] = []
    raw_connection = db.engine.raw_connection

    def recorded() -> object:
        connection = raw_connection()
        opened.append(connection.dbapi_connection)
        return connection

    with db.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE outbox_messages RENAME TO outbox_elsewhere")
    monkeypatch.setattr(db.engine, "raw_connection", recorded)
    with pytest.raises(Exception, match="no such table"):
        _CommitWatch(db)
    (connection,) = opened
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        connection.execute("SELECT 1")  # type: ignore[attr-defined]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_claim_after_the_watch_saw_new_rows_takes_no_pre_check(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read that spares an idle worker the write lock is not needed: rows are known to be there."""
    store = SqlOutboxStore(db)
    woken = asyncio.Event()
    other = Database.connect(database_url, pool_size=1)
    try:
        async with store.listen(woken.set):
            await asyncio.wait_for(woken.wait(), timeout=30)  # the watch is established
            woken.clear()
            seq = await asyncio.to_thread(put, other, "portal", "D1")
            await asyncio.wait_for(woken.wait(), timeout=30)

            def no_pre_check(*_args: object) -> bool:
                raise AssertionError("pre-check after the watch saw new rows")

            monkeypatch.setattr(store, "_exists_due", no_pre_check)
            claimed = await store.claim({"portal": 5}, "w#1", 60)
    finally:
        other.dispose()
    assert [m.seq for m in claimed] == [seq]


def _threads_of_outbox_updates(db: Database) -> list[int]:
    """The threads (idents) that run ``UPDATE outbox_messages`` from now on, in order."""
    threads: list[int] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE OUTBOX_MESSAGES"):
            threads.append(threading.get_ident())

    event.listen(db.engine, "before_cursor_execute", record)
    return threads


async def _ticking(until: asyncio.Future[Any]) -> int:
    """How many times the event loop came round (every 10 ms) before ``until`` was done."""
    ticks = 0
    while not until.done():
        await asyncio.sleep(0.01)
        ticks += 1
    return ticks


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_writes_run_on_the_event_loop_when_no_one_holds_the_lock(db: Database) -> None:
    """docs/delivery.md §9.3: a thread would hold the lock for its GIL waits too."""
    store = SqlOutboxStore(db)
    seqs = [await asyncio.to_thread(put, db, "portal", f"D{i}") for i in range(3)]
    threads = _threads_of_outbox_updates(db)
    claimed = await store.claim({"portal": 3}, "w#1", 60)
    assert await store.complete([_delivered(claimed[0].seq, "w#1")], "w") == {seqs[0]}
    assert await store.release([(claimed[1].seq, "w#1")]) == 1
    assert threads == [threading.get_ident()] * 3  # claim, completion, release: this thread's loop
    assert message(db, seqs[0]).state == MessageState.DELIVERED.value
    assert message(db, seqs[1]).state == MessageState.PENDING.value


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_sqlite_write_waits_on_a_thread_while_another_writer_of_the_process_writes(
    db: Database,
) -> None:
    store = SqlOutboxStore(db)
    seq = await asyncio.to_thread(put, db, "portal", "D1")
    threads = _threads_of_outbox_updates(db)
    holding, let_go = threading.Event(), threading.Event()

    def hold_the_gate() -> None:
        with db.writer_gate:
            holding.set()
            let_go.wait(10)

    holder = threading.Thread(target=hold_the_gate)
    holder.start()
    assert holding.wait(10)
    claim = asyncio.ensure_future(store.claim({"portal": 5}, "w#1", 60))
    ticker = asyncio.ensure_future(_ticking(claim))
    await asyncio.sleep(0.2)
    assert not claim.done()  # waiting for the gate, on a thread: the loop went on ticking
    let_go.set()
    claimed = await asyncio.wait_for(claim, timeout=10)
    holder.join()
    assert [m.seq for m in claimed] == [seq]
    assert await ticker >= 10
    assert threads
    assert threading.get_ident() not in threads


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_writer_that_does_not_take_turns_never_blocks_the_event_loop(
    db: Database, database_url: str
) -> None:
    """A connection outside the hub (the sqlite3 shell, a migration) holds SQLite's write lock:
    the write on the event loop fails at BEGIN, before changing anything, and waits on a thread;
    the connection it used gets its busy timeout back."""
    store = SqlOutboxStore(db)
    seq = await asyncio.to_thread(put, db, "portal", "D1")
    foreign = sqlite3.connect(db.engine.url.database or "", isolation_level=None)
    try:
        foreign.execute("BEGIN IMMEDIATE")
        claim = asyncio.ensure_future(store.claim({"portal": 5}, "w#1", 60))
        ticker = asyncio.ensure_future(_ticking(claim))
        await asyncio.sleep(0.3)
        assert not claim.done()
        foreign.execute("COMMIT")
        claimed = await asyncio.wait_for(claim, timeout=30)
        assert await ticker >= 10
    finally:
        foreign.close()
    assert [m.seq for m in claimed] == [seq]
    with db.engine.connect() as conn:
        busy_ms = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        conn.rollback()
    assert busy_ms == SQLITE_BUSY_TIMEOUT_SECONDS * 1000


def _delivered(seq: int, token: str) -> Completion:
    now = utcnow()
    return Completion(
        seq=seq,
        lease_token=token,
        attempt_no=1,
        outcome=AttemptOutcome.DELIVERED,
        started_at=now,
        finished_at=now,
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # row locks: PostgreSQL only
async def test_a_row_locked_by_another_session_is_skipped_not_waited_for(db: Database) -> None:
    """Heartbeat, completion, release and rescue pass over the locked row (a wait would fail on
    the 2 s lock timeout); ``held`` tells it is still ours; it completes once the lock goes."""
    store = SqlOutboxStore(db)
    locked, free = put(db, "portal", "D1"), put(db, "portal", "D2")
    store.claim_sync({"portal": 2}, "w#1", 30)
    with db.transaction() as session:  # expired: the rescuer would take it, were it not locked
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.seq == locked)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    with db.engine.connect() as other:
        other.execute(select(OutboxMessage.seq).where(OutboxMessage.seq == locked).with_for_update())
        assert await store.heartbeat({"w#1": [locked, free]}, 60) == {free}
        assert await store.rescue_expired(Rescuer("rescuer", {"portal": 5})) == []
        assert await store.release([(locked, "w#1")]) == 0
        assert await store.complete([_delivered(locked, "w#1"), _delivered(free, "w#1")], "w") == {free}
        assert await store.held([(locked, "w#1"), (free, "w#1")]) == {(locked, "w#1")}  # busy, not lost
        other.rollback()
    assert await store.complete([_delivered(locked, "w#1")], "w") == {locked}
    assert message(db, locked).state == MessageState.DELIVERED


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_worker_statement_gives_up_on_a_lock_after_the_lock_timeout(db: Database) -> None:
    """What no ``SKIP LOCKED`` covers (here the health row) fails after ``lock_timeout``."""
    store = SqlOutboxStore(db, WorkerSettings(lock_timeout_seconds=0.2))
    await store.publish_health("portal", "closed", 0, success=True, error=None)
    with db.engine.connect() as other:
        other.execute(
            select(EndpointHealth.endpoint).where(EndpointHealth.endpoint == "portal").with_for_update()
        )
        with pytest.raises(OperationalError, match="lock timeout"):
            await store.publish_health("portal", "open", 5, success=False, error="HTTP 503")
        other.rollback()
    await store.publish_health("portal", "open", 5, success=False, error="HTTP 503")


def _insert_rows(db: Database, count: int, *, start: int, state: MessageState) -> None:
    """``count`` outbox rows for ``portal`` in ``state``, one dossier each, in one statement."""
    now = utcnow()
    rows = [
        {
            "message_id": f"m{start + i}",
            "endpoint": "portal",
            "kind": "dossier.sync",
            "ordering_key": f"D{start + i}",
            "payload": {},
            "state": state.value,
            "next_attempt_at": now,
        }
        for i in range(count)
    ]
    with db.engine.begin() as conn:
        conn.execute(insert(OutboxMessage), rows)


def _rows_examined(store: SqlOutboxStore, statement: Any, given: dict[str, Any], *, claim: bool) -> int:
    """Rows PostgreSQL's scans of the outbox read (returned or filtered out) to run ``statement``
    once, as the store runs it (``EXPLAIN ANALYZE``, rolled back)."""
    with store.db.engine.connect() as conn, conn.begin() as transaction:
        (store._claim_settings if claim else store._timeouts).execute(conn, {})
        sql = "EXPLAIN (ANALYZE, FORMAT JSON) " + statement._sql
        [[[plan]]] = conn.exec_driver_sql(sql, statement._values(given)).all()
        transaction.rollback()
    examined = 0
    nodes = [plan["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", ()))
        if node.get("Relation Name") == "outbox_messages":
            read = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            examined += read * node["Actual Loops"]
    return int(examined)


def _claim_of_20(now: datetime) -> dict[str, Any]:
    """The bound values of the store's claim statement: 20 messages of ``portal`` at ``now``."""
    return {
        "b_endpoint": "portal",
        "b_limit": 20,
        "b_now": now,
        "b_token": "w#0",
        "b_expires": now + timedelta(seconds=60),
    }


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the planner: PostgreSQL
def test_claims_and_results_read_their_rows_whatever_the_statistics_say(db: Database) -> None:
    """Statistics taken while every row was delivered, then a burst (docs/delivery.md §9.3): the
    planner takes the partial indexes of pending and in-flight rows for empty. A claim of 20
    must still walk the pending rows in seq order up to its limit, and a batch of 20 results look
    its rows up by seq, not read every pending or in-flight row."""
    store = SqlOutboxStore(db)
    _insert_rows(db, 3000, start=0, state=MessageState.DELIVERED)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE outbox_messages")
    _insert_rows(db, 3000, start=3000, state=MessageState.PENDING)
    now = utcnow()
    assert _rows_examined(store, store._hot.claim, _claim_of_20(now), claim=True) <= 200
    claimed = store.claim_sync({"portal": 2000}, "w#1", 60)
    assert len(claimed) == 2000
    seqs = [m.seq for m in claimed[:20]]
    results = {"b_now": now, "b_seqs": seqs, "b_tokens": ["w#1"] * len(seqs)}
    assert _rows_examined(store, store._hot.deliver, results, claim=False) <= 200
    assert store.complete_sync([_delivered(seq, "w#1") for seq in seqs], "w") == set(seqs)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_claim_does_not_walk_the_delivered_rows_before_the_pending_ones(db: Database) -> None:
    """Statistics taken while every row was pending, then most delivered (docs/delivery.md §9.3):
    the primary key gives the seq order too, but walking it reads every delivered row first."""
    store = SqlOutboxStore(db)
    _insert_rows(db, 3000, start=0, state=MessageState.PENDING)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE outbox_messages")
    with db.engine.begin() as conn:
        conn.execute(
            update(OutboxMessage).where(OutboxMessage.seq <= 2000).values(state=MessageState.DELIVERED.value)
        )
    now = utcnow()
    assert _rows_examined(store, store._hot.claim, _claim_of_20(now), claim=True) <= 200
    assert [m.seq for m in store.claim_sync({"portal": 3}, "w#1", 60)] == [2001, 2002, 2003]


def test_batches_of_every_size_share_a_few_sql_texts(db: Database) -> None:
    """Results, heartbeats, releases and checks of 1 to 12 leases take one SQL text per power of
    two, not one per size: each text is a statement the driver prepares and keeps per
    connection (the SQLite worker's memory grew with them through a long drain, §9.3). The
    padded lists change the same rows: one attempt per result, nothing else touched."""
    store = SqlOutboxStore(db)
    seqs = [put(db, "portal", f"D{n}") for n in range(78)]
    assert len(store.claim_sync({"portal": 78}, "w#1", 60)) == 78
    texts: dict[str, set[str]] = {"deliver": set(), "heartbeat": set(), "held": set()}

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        verb = statement.lstrip().split(" ", 1)[0].upper()
        if verb == "UPDATE" and "SET lease_expires_at" in statement:
            texts["heartbeat"].add(statement)
        elif verb == "UPDATE" and "delivered" in statement:
            texts["deliver"].add(statement)
        elif verb == "SELECT" and "lease_owner" in statement and "outbox_messages.state" in statement:
            texts["held"].add(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        done: list[int] = []
        rest = list(seqs)
        for size in range(1, 12):
            batch, rest = rest[:size], rest[size:]
            pairs = [(seq, "w#1") for seq in batch]
            assert store.held_sync(pairs) == set(pairs)
            assert store.heartbeat_sync({"w#1": batch}, 60) == set(batch)
            assert store.complete_sync([_delivered(seq, "w#1") for seq in batch], "w") == set(batch)
            done += batch
        assert len(rest) == 12
        assert store.release_sync([(seq, "w#1") for seq in rest]) == 12
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert all(message(db, seq).state == MessageState.DELIVERED for seq in done)
    assert all(len(attempts(db, seq)) == 1 for seq in done)
    assert all(message(db, seq).state == MessageState.PENDING for seq in rest)
    assert all(attempts(db, seq) == [] for seq in rest)
    # Sizes 1..12 pad to 1, 2, 4, 8 and 16: at most five texts each (one per size before).
    assert 0 < len(texts["deliver"]) <= 5
    assert 0 < len(texts["heartbeat"]) <= 5
    assert 0 < len(texts["held"]) <= 5
