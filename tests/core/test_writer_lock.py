"""SQLite writers of different processes take turns at the write lock (docs/delivery.md §9.3,
"SQLite writers take turns"; :mod:`hub.db.writer_lock`). Real database files, real processes."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
import sqlalchemy as sa

import hub
from hub.db.migrate import upgrade
from hub.db.session import Database
from hub.db.writer_lock import QUEUE_SUFFIX, WRITER_SUFFIX, SidecarLock, WriterGate
from hub.delivery.sql_store import SqlOutboxStore
from hub.delivery.store import WorkerRegistration
from hub.runtime import check_database
from tests.delivery.helpers import wait_until
from tests.read_only import read_only

#: The flood's transactions hold the write lock about this long (a few intake statements).
_FLOOD = """
import sys, time
from pathlib import Path
import sqlalchemy as sa
from hub.db.migrate import upgrade
from hub.db.session import Database

db = Database.connect(sys.argv[1])
stop, cap = Path(sys.argv[2]), int(sys.argv[3])
for n in range(cap):
    if stop.exists():
        break
    with db.transaction() as session:
        session.execute(sa.text("INSERT INTO flood (who) VALUES ('api')"))
        time.sleep(0.001)
print(n, flush=True)
"""

#: Takes the sidecar lock, stops itself (SIGSTOP) holding it, and lets it go when continued.
_STOPPED_HOLDER = """
import os, signal, sys
from pathlib import Path
from hub.db.writer_lock import SidecarLock

lock = SidecarLock(Path(sys.argv[1]), 30)
assert lock.acquire()
print("held", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
lock.release()
print("released", flush=True)
sys.stdin.read()
"""


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    """``script`` in a new Python process importing the same ``hub`` as this one."""
    here = Path(hub.__file__).resolve().parents[1]
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=here,
        env={**os.environ, "PYTHONPATH": str(here)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def sqlite_db(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    path = tmp_path / "hub.db"
    path.write_bytes(request.getfixturevalue("sqlite_template").read_bytes())
    db = Database.connect(f"sqlite:///{path}")
    with db.transaction() as session:
        session.execute(sa.text("CREATE TABLE flood (id INTEGER PRIMARY KEY, who TEXT)"))
    yield db
    db.dispose()


def _flooded(db: Database) -> int:
    with db.sessions() as session:
        return int(session.execute(sa.text("SELECT count(*) FROM flood")).scalar_one())


def test_a_worker_writes_in_turn_while_another_process_floods_the_database(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """The API process commits one write after another (each holding the lock about 1 ms); the
    worker's store (this process) still gets the write lock after a transaction or two of the
    flood each time. Before the writers took turns it waited in SQLite's busy handler, whose
    sleeping retries mostly missed the short gaps between the flood's transactions."""
    stop = tmp_path / "stop"
    flood = _python(_FLOOD, str(sqlite_db.engine.url), str(stop), "3000")
    try:
        waited = _flood_per_store_write(sqlite_db, 20)
        done_at = _flooded(sqlite_db)
    finally:
        stop.touch()
        flood.communicate(timeout=120)
    assert done_at < 3000, f"the worker's writes waited for the whole flood ({waited})"
    # Flood transactions committed while each write of the worker waited: 0-2 when they take
    # turns (the one under way, maybe one more while this process was not scheduled); before,
    # 1,900-3,000 in all, a few hundred at a time several times out of 20.
    assert sum(waited) <= 10 * len(waited), waited


def _flood_per_store_write(db: Database, writes: int) -> list[int]:
    """Once a flood of writes has begun: for each of ``writes`` writes of the worker's store, the
    flood transactions committed while it waited for the write lock."""
    store = SqlOutboxStore(db)
    wait_until(lambda: _flooded(db) >= 20, within=60)
    waited: list[int] = []
    for n in range(writes):
        before = _flooded(db)
        store.heartbeat_worker_sync(WorkerRegistration(id=f"w{n}", host="h", pid=n))
        waited.append(_flooded(db) - before)
    return waited


def test_the_worker_store_takes_turns_with_the_writers_of_its_own_process(sqlite_db: Database) -> None:
    """``hub serve`` with its worker: intake's writes (a thread committing one after another)
    and the store's share the in-process gate. The store had opened its transactions without
    it and waited in SQLite's busy handler: 100 writes beside the flood took 30 s, up to 462
    flood transactions during one."""
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            with sqlite_db.transaction() as session:
                session.execute(sa.text("INSERT INTO flood (who) VALUES ('api')"))
                time.sleep(0.001)

    intake = threading.Thread(target=flood)
    intake.start()
    try:
        waited = _flood_per_store_write(sqlite_db, 50)
    finally:
        stop.set()
        intake.join(60)
    assert sum(waited) <= 10 * len(waited), waited


def test_the_gate_is_let_go_when_a_transaction_fails(sqlite_db: Database) -> None:
    """An error inside the transaction rolls it back and lets go of both locks: another process
    can take the sidecar lock at once, and the next write of this one proceeds."""

    def doomed() -> None:
        with sqlite_db.transaction() as session:
            session.execute(sa.text("INSERT INTO flood (who) VALUES ('doomed')"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        doomed()
    database = Path(str(sqlite_db.engine.url.database))
    fd = os.open(f"{database}{WRITER_SUFFIX}", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another open file: as another process
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    gate = sqlite_db.writer_gate
    assert isinstance(gate, WriterGate)
    with sqlite_db.transaction() as session:
        session.execute(sa.text("INSERT INTO flood (who) VALUES ('next')"))
        assert gate.taking_turns
    assert _flooded(sqlite_db) == 1


def test_a_stopped_holder_costs_one_timeout_then_writers_go_on_without_the_lock(
    sqlite_db: Database,
) -> None:
    """A process stopped (SIGSTOP) while holding the sidecar lock: this process's writer waits
    the timeout, then writes with SQLite's lock alone (which is free), and so do the next ones
    until the holder lets go; then they take turns again."""
    gate = sqlite_db.writer_gate
    assert isinstance(gate, WriterGate)
    assert gate.sidecar is not None
    gate.sidecar.timeout = 0.5
    holder = _python(_STOPPED_HOLDER, str(sqlite_db.engine.url.database))
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        wait_until(lambda: _state(holder.pid) == "T", within=10)
        for who in ("first", "second"):
            with sqlite_db.transaction() as session:
                session.execute(sa.text("INSERT INTO flood (who) VALUES (:who)"), {"who": who})
                assert not gate.taking_turns
        assert _flooded(sqlite_db) == 2
        holder.send_signal(signal.SIGCONT)
        assert holder.stdout.readline() == "released\n"

        def turns_again() -> bool:
            with sqlite_db.transaction():
                return gate.taking_turns

        wait_until(turns_again, within=10)
    finally:
        holder.kill()
        holder.communicate(timeout=10)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_disposing_of_the_database_closes_the_lock_files(sqlite_db: Database) -> None:
    """A Database per test (or per CLI command) leaves no descriptors or threads behind."""
    url = str(sqlite_db.engine.url)

    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    def write_once() -> None:
        db = Database.connect(url)
        with db.transaction() as session:
            session.execute(sa.text("INSERT INTO flood (who) VALUES ('cli')"))
        db.dispose()

    write_once()
    before = open_files()
    for _ in range(20):
        write_once()
    assert open_files() == before


def test_a_read_only_directory_without_the_lock_files_writes_as_before(tmp_path: Path) -> None:
    """The files cannot be made there: the lock says so and is not taken (nothing raises; the
    clear "read-only" errors are the start-up checks', tests/cli/test_cli_failfast.py)."""
    directory = tmp_path / "ro"
    directory.mkdir()
    with read_only(directory):
        assert SidecarLock(directory / "hub.db", 1).acquire() is False
    assert not (directory / f"hub.db{WRITER_SUFFIX}").exists()


def test_a_read_only_directory_with_the_lock_files_still_takes_turns(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    for suffix in (WRITER_SUFFIX, QUEUE_SUFFIX):
        (directory / f"hub.db{suffix}").touch()
    with read_only(directory):
        lock = SidecarLock(directory / "hub.db", 1)
        assert lock.acquire() is True
        lock.release()


def test_postgresql_writers_take_no_gate(db: Database) -> None:
    """PostgreSQL locks rows, not the database: no gate, no lock files."""
    if db.is_postgres:
        assert isinstance(db.writer_gate, nullcontext)
    else:
        assert isinstance(db.writer_gate, WriterGate)


def _tried(gate: WriterGate) -> bool:
    """Whether :meth:`WriterGate.try_enter` entered (left again at once if so)."""
    if not gate.try_enter():
        return False
    gate.__exit__(None, None, None)
    return True


def test_trying_the_gate_never_waits_for_a_writer_of_this_process_or_another(tmp_path: Path) -> None:
    """The worker's event loop writes only when no one holds the gate (docs/delivery.md §9.3)."""
    database = tmp_path / "hub.db"
    gate = WriterGate(SidecarLock(database, 30))
    assert _tried(gate)
    holding, let_go = threading.Event(), threading.Event()

    def hold() -> None:
        with gate:
            holding.set()
            let_go.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    assert not _tried(gate)  # a thread of this process writes
    let_go.set()
    holder.join()
    other_process = SidecarLock(database, 30)  # its own descriptors: another process to flock
    assert other_process.acquire()
    assert not _tried(gate)
    other_process.release()
    assert _tried(gate)
    with gate:  # re-entrant on the thread that holds it, the sidecar lock taken once
        assert gate.try_enter()
        gate.__exit__(None, None, None)
        assert not other_process.try_acquire()
    assert other_process.try_acquire()
    other_process.release()
    other_process.close()
    gate.close()


def test_trying_the_gate_while_another_process_queues_for_the_lock_waits_for_its_turn(tmp_path: Path) -> None:
    """The queue file held (another process waits for the writer file): trying fails, so a
    process that keeps writing lets the waiting one go first, as blocking writers do."""
    database = tmp_path / "hub.db"
    queue = os.open(f"{database}{QUEUE_SUFFIX}", os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(queue, fcntl.LOCK_EX)
        gate = WriterGate(SidecarLock(database, 30))
        assert not _tried(gate)
        fcntl.flock(queue, fcntl.LOCK_UN)
        assert _tried(gate)
        gate.close()
    finally:
        os.close(queue)


def test_trying_the_gate_without_lock_files_fails(tmp_path: Path) -> None:
    """No sidecar lock (a read-only directory): such writes go the blocking way, which warns once
    and writes without it."""
    directory = tmp_path / "ro"
    directory.mkdir()
    with read_only(directory):
        assert not _tried(WriterGate(SidecarLock(directory / "hub.db", 1)))


def _waits_for_the_sidecar_lock(database: Path, write: Callable[[], object]) -> None:
    """``write`` does not get through while another process holds the sidecar lock (not
    SQLite's, which is free), and gets through once it is let go: it takes its turn."""
    other_process = SidecarLock(database, 30)  # its own descriptors: another process to flock
    assert other_process.acquire()
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            write()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        done.set()

    writer = threading.Thread(target=run)
    try:
        writer.start()
        assert not done.wait(0.5), "it wrote while another process had its turn"
    finally:
        other_process.release()
        other_process.close()
    assert done.wait(30)
    writer.join()
    assert not errors, errors


def test_the_start_up_write_check_takes_its_turn(sqlite_db: Database) -> None:
    """``hub serve`` and ``hub worker`` start with a write (rolled back) that proves the database
    writable (hub.runtime.check_database): it waits its turn, not in SQLite's busy handler,
    where the busy worker of another process could starve it for the whole busy timeout."""
    _waits_for_the_sidecar_lock(Path(str(sqlite_db.engine.url.database)), lambda: check_database(sqlite_db))


def test_a_migration_takes_its_turn(sqlite_db: Database) -> None:
    """``hub db upgrade`` (Alembic, its own engine) takes its turn like the hub's writers."""
    url = sqlite_db.engine.url.render_as_string(hide_password=False)
    _waits_for_the_sidecar_lock(Path(str(sqlite_db.engine.url.database)), lambda: upgrade(url))
