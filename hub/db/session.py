"""Engine and session factory for SQLite (embedded default, WAL) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

#: Seconds libpq waits for a PostgreSQL server to accept a connection.
PG_CONNECT_TIMEOUT_SECONDS = 10


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
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
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
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


#: Execution option choosing how a SQLite transaction begins (``IMMEDIATE`` or ``DEFERRED``).
SQLITE_BEGIN_OPTION = "hub_sqlite_begin"


def _sqlite_begin_immediate(connection: Any) -> None:
    """Take the write lock at BEGIN so read-then-write transactions never deadlock on upgrade.

    Read-only sessions (:attr:`Database.sessions`) begin ``DEFERRED`` instead, so lookups and
    auth checks never queue behind writers (WAL readers do not block).
    """
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
    connection.exec_driver_sql("BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")


def _writer_gate(engine: Engine) -> AbstractContextManager[Any]:
    """SQLite admits one writer at a time: this process's writers queue on a lock, woken the
    moment the holder commits, instead of in SQLite's busy handler, which sleeps up to 100 ms
    between retries (16 concurrent intake requests spent most of their p95 there). Re-entrant,
    so a transaction opened inside another on the same thread fails as before, not by deadlock
    here. PostgreSQL locks rows, not the database: no gate."""
    return threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()


@dataclass
class Database:
    engine: Engine
    #: Sessions for reading (on SQLite: deferred BEGIN, never waits for the write lock).
    sessions: sessionmaker[Session]
    #: Sessions for writing, used through :meth:`transaction`.
    write_sessions: sessionmaker[Session]
    #: Held around every :meth:`transaction` (see :func:`_writer_gate`).
    writer_gate: AbstractContextManager[Any] = field(default_factory=nullcontext, repr=False)

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 10) -> Database:
        engine = create_hub_engine(url, pool_size=pool_size)
        reader = engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
        return cls(
            engine=engine,
            sessions=sessionmaker(reader, expire_on_commit=False),
            write_sessions=sessionmaker(engine, expire_on_commit=False),
            writer_gate=_writer_gate(engine),
        )

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
