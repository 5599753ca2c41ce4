"""Engine and session factory for SQLite (embedded default, WAL) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from hub.db.writer_lock import SidecarLock, WriterGate

#: Seconds libpq waits for a PostgreSQL server to accept a connection.
PG_CONNECT_TIMEOUT_SECONDS = 10
#: Seconds a SQLite writer waits for the write lock (SQLite's busy timeout, and the sidecar
#: lock's, :mod:`hub.db.writer_lock`) before it fails with "database is locked".
SQLITE_BUSY_TIMEOUT_SECONDS = 30
_BUSY_TIMEOUT_PRAGMA = f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}"


def create_hub_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create an engine tuned for the hub's access pattern.

    SQLite: WAL journal, ``synchronous=NORMAL`` (durable across process crashes in WAL mode),
    a busy timeout so concurrent writers queue instead of failing, foreign keys on.
    PostgreSQL: psycopg 3 with a modest pool.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        event.listen(engine, "checkin", _sqlite_restore_busy_timeout)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    # An unreachable server fails a connection after this long (libpq waits for ever by
    # default), so a worker notices an outage and backs off (hub.db.availability).
    connect_args = (
        {} if "connect_timeout" in parsed.query else {"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS}
    )
    return create_engine(
        parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, connect_args=connect_args
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, control transactions (BEGIN IMMEDIATE below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(_BUSY_TIMEOUT_PRAGMA)
    cursor.close()


#: Execution option choosing how a SQLite transaction begins (``IMMEDIATE`` or ``DEFERRED``).
SQLITE_BEGIN_OPTION = "hub_sqlite_begin"
#: Execution option: a SQLite write transaction that fails at once ("database is locked")
#: instead of waiting in the busy handler when another connection holds the write lock.
SQLITE_NOWAIT_OPTION = "hub_sqlite_nowait"
#: Pool-record flag: the connection's busy timeout was set to 0 for a no-wait transaction.
_BUSY_TIMEOUT_CLEARED = "hub_busy_timeout_cleared"


def _sqlite_begin_immediate(connection: Any) -> None:
    """Take the write lock at BEGIN so read-then-write transactions never deadlock on upgrade.

    Read-only sessions (:attr:`Database.sessions`) begin ``DEFERRED`` instead, so lookups and
    auth checks never queue behind writers (WAL readers do not block). A no-wait transaction
    (:data:`SQLITE_NOWAIT_OPTION`) begins with the busy timeout at 0; it is set back when the
    connection returns to the pool (:func:`_sqlite_restore_busy_timeout`).
    """
    options = connection.get_execution_options()
    if options.get(SQLITE_BEGIN_OPTION, "IMMEDIATE") == "DEFERRED":
        connection.exec_driver_sql("BEGIN DEFERRED")
        return
    if options.get(SQLITE_NOWAIT_OPTION):
        connection.connection.info[_BUSY_TIMEOUT_CLEARED] = True
        connection.connection.dbapi_connection.execute("PRAGMA busy_timeout=0")
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _deferred(engine: Engine) -> Engine:
    """``engine`` whose SQLite transactions begin ``DEFERRED`` (reads: no write lock)."""
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})


def _sqlite_restore_busy_timeout(dbapi_connection: Any, record: Any) -> None:
    if record.info.pop(_BUSY_TIMEOUT_CLEARED, False) and dbapi_connection is not None:
        dbapi_connection.execute(_BUSY_TIMEOUT_PRAGMA)


def writer_gate_for(engine: Engine) -> AbstractContextManager[Any]:
    """SQLite admits one writer at a time: the hub's writers take turns on a
    :class:`~hub.db.writer_lock.WriterGate` (this process's writers queue on a lock, woken the
    moment the holder commits, then on a lock file shared with the other processes, handed over
    in turn) instead of SQLite's busy handler, which sleeps up to 100 ms between retries
    (docs/delivery.md §9.3). PostgreSQL locks rows, not the database: no gate.

    One per engine: :class:`Database` holds its engine's; a migration (``hub db upgrade``)
    takes one for the engine it opens, so it waits its turn like every other writer."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    database = engine.url.database
    if not database or database == ":memory:" or engine.url.query.get("mode") == "memory":
        return WriterGate(None)  # one process: the in-process gate is enough
    return WriterGate(SidecarLock(Path(database), SQLITE_BUSY_TIMEOUT_SECONDS))


@dataclass
class Database:
    engine: Engine
    #: Sessions for reading (on SQLite: deferred BEGIN, never waits for the write lock).
    sessions: sessionmaker[Session]
    #: Sessions for writing, used through :meth:`transaction`.
    write_sessions: sessionmaker[Session]
    #: Held around every :meth:`transaction` (see :func:`writer_gate_for`).
    writer_gate: AbstractContextManager[Any] = field(default_factory=nullcontext, repr=False)

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 10) -> Database:
        engine = create_hub_engine(url, pool_size=pool_size)
        return cls(
            engine=engine,
            sessions=sessionmaker(_deferred(engine), expire_on_commit=False),
            write_sessions=sessionmaker(engine, expire_on_commit=False),
            writer_gate=writer_gate_for(engine),
        )

    @cached_property
    def reader(self) -> Engine:
        """The engine for reads outside a session (health, metrics): on SQLite its transactions
        begin ``DEFERRED``, so a read never takes, nor waits for, the write lock."""
        return _deferred(self.engine)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error."""
        with self.writer_gate, self.write_sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        close_writer_gate(self.writer_gate)


def close_writer_gate(gate: AbstractContextManager[Any]) -> None:
    """Close the lock files of a gate of :func:`writer_gate_for` (none on PostgreSQL)."""
    if isinstance(gate, WriterGate):
        gate.close()
