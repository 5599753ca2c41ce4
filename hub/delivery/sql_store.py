"""The outbox in SQLite or PostgreSQL: :class:`SqlOutboxStore` (docs/delivery.md §4, §6, §9).

Every method is one short transaction and never spans a network call (§9.2, §11.7):
synchronous SQLAlchemy Core, run in a thread so the worker's event loop never waits for the
database; on SQLite a write runs on the event loop itself when no one holds the write lock, and
goes to a thread otherwise (:meth:`SqlOutboxStore._write`, §9.3).

Claiming (§4, §6): only the head of each (endpoint, ordering_key) is claimable
(:func:`hub.outbox.queue.claimable_condition`). PostgreSQL locks candidates with
``FOR UPDATE SKIP LOCKED``; SQLite runs one atomic ``UPDATE … WHERE seq IN (SELECT … LIMIT n)
RETURNING`` under ``BEGIN IMMEDIATE``.

Wake-ups (:meth:`SqlOutboxStore.listen`): PostgreSQL ``LISTEN hub_outbox`` on a dedicated
connection (``enqueue`` notifies in its transaction); SQLite, which has no NOTIFY, a look every
few milliseconds for new outbox rows committed by other processes (:class:`_CommitWatch`); and,
in-process, commits of outbox rows through the same :class:`~hub.db.session.Database`.

Locks held elsewhere (§12.1): on PostgreSQL every transaction sets ``lock_timeout`` and
``statement_timeout`` (``SET LOCAL``, from :class:`~hub.config.WorkerSettings`), and every
statement on leased rows locks them ``FOR UPDATE SKIP LOCKED``: a row another session holds is
skipped (and :meth:`SqlOutboxStore.held` tells it from a lost lease), so one locked row never
stops the others. Heartbeats run on a thread of their own, never queued behind a flush. SQLite
locks the whole database, not rows: a foreign write transaction stalls every writer up to the
``busy_timeout`` (30 s, :mod:`hub.db.session`), and nothing can be skipped. The store's write
transactions take their turn with the API's and other processes' (``Database.writer_gate``,
:mod:`hub.db.writer_lock`, docs/delivery.md §9.3), so an intake flood does not starve them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    CursorResult,
    Dialect,
    Integer,
    String,
    Table,
    and_,
    any_,
    bindparam,
    event,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from hub.config import WorkerSettings
from hub.db.availability import OutageReporter
from hub.db.base import utcnow
from hub.db.models import DeliveryAttempt, DeliveryWorker, EndpointHealth, EndpointPause, OutboxMessage
from hub.db.session import PG_CONNECT_TIMEOUT_SECONDS, SQLITE_NOWAIT_OPTION, Database
from hub.db.writer_lock import WriterGate
from hub.delivery.store import (
    ATTEMPT_COLUMNS,
    CLAIM_COLUMNS,
    TOKEN_SEPARATOR,
    ClaimedMessage,
    Completion,
    Rescuer,
    WorkerRegistration,
)
from hub.outbox import transitions
from hub.outbox.enqueue import NOTIFY_CHANNEL, OUTBOX_TOUCHED
from hub.outbox.queue import claimable_condition
from hub.outbox.transitions import AttemptOutcome, Changes, Increment, LeaseLoss

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("hub.delivery")

_T = TypeVar("_T")
#: Rows per ``IN (…)`` list.
_CHUNK = 500
#: Seconds to wait before reconnecting the LISTEN connection after an error.
LISTEN_RECONNECT_SECONDS = 2.0
#: SQLite: seconds between two looks for outbox rows committed elsewhere (:class:`_CommitWatch`)
#: while rows arrived in the last :data:`SQLITE_WATCH_ACTIVE_SECONDS`, and otherwise: an idle
#: worker wakes 20 times a second, not 100 (each wake-up costs about 90 µs of CPU).
SQLITE_WATCH_SECONDS = 0.01
SQLITE_WATCH_IDLE_SECONDS = 0.05
SQLITE_WATCH_ACTIVE_SECONDS = 10.0


def _values(changes: Changes) -> dict[str, Any]:
    """A transition's column table as ``UPDATE … SET`` values (increments stay in SQL)."""
    return {
        column: getattr(OutboxMessage, column) + value.by if isinstance(value, Increment) else value
        for column, value in changes.items()
    }


def _attempt_row(record: DeliveryAttempt) -> dict[str, Any]:
    """The ``INSERT`` values of a transient attempt row (its ``id`` is the database's)."""
    columns = (column.key for column in DeliveryAttempt.__table__.columns if not column.primary_key)
    return {column: getattr(record, column) for column in columns} | {"outcome": str(record.outcome)}


#: Core ``INSERT`` of attempt rows (the ORM's bulk path built an object per row and read it back).
_INSERT_ATTEMPTS = insert(cast(Table, DeliveryAttempt.__table__))
_LEASED = transitions.LEASED_STATE.value
_CLAIMABLE = transitions.CLAIMABLE_STATE.value
#: The type of the outbox's times (bound parameters compared with them take it).
_WHEN = OutboxMessage.__table__.c.next_attempt_at.type
#: What the rescuer reads of a row it takes back (:func:`transitions.lease_lost_attempt` too).
_RESCUE_COLUMNS = (
    OutboxMessage.seq,
    OutboxMessage.endpoint,
    OutboxMessage.lease_owner,
    OutboxMessage.attempts,
    OutboxMessage.updated_at,
    OutboxMessage.manual_retry,
)


#: PostgreSQL planner settings of a claim's transaction (``SET LOCAL``): no sort, so the claim
#: walks ``ix_outbox_pending_endpoint_seq`` in seq order and stops at its limit. With statistics
#: taken while nothing was pending (a quiet outbox, then a burst) the planner took the pending
#: rows for a handful, read every due one through ``ix_outbox_due``, tested each for being the
#: head of its queue and sorted them: a claim cost grew with the queue (docs/delivery.md §9.3).
CLAIM_PLANNER_SETTINGS = (("enable_sort", "off"),)


#: Set while a write transaction runs on the event loop (:meth:`SqlOutboxStore._write`).
_ON_LOOP: ContextVar[bool] = ContextVar("hub_sqlite_write_on_loop", default=False)


def _locked(exc: OperationalError) -> bool:
    """SQLite's "database is locked" (``SQLITE_BUSY``): another connection holds the write lock."""
    error = exc.orig
    if not isinstance(error, sqlite3.OperationalError):
        return False
    return error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


def _milliseconds(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


async def _in_own_thread(function: Callable[..., _T], *args: Any) -> _T:
    """Run ``function`` on a new thread, not the shared executor: a heartbeat never waits for a
    thread behind flushes, claims or rescues that may be waiting on the database (§12.1)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def run() -> None:
        try:
            result = function(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            error = exc
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle, lambda: future.set_exception(error))
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, lambda: future.set_result(result))

    threading.Thread(target=run, name=f"hub-{getattr(function, '__name__', 'call')}", daemon=True).start()
    return await future


def _claim_statement(*, skip_locked: bool) -> Any:
    """The claim of one endpoint's due heads, ``UPDATE … RETURNING``, built once: building its
    head-of-queue subquery cost about 3 ms a claim. Endpoint, limit, times and token are bound
    per call (``b_endpoint``, ``b_limit``, ``b_now``, ``b_token``, ``b_expires``: an ``UPDATE``
    reserves the column names)."""
    # Typed ``Any``: the transitions and the queue rule take values; bound parameters stand in.
    now: Any = bindparam("b_now", type_=_WHEN)
    token: Any = bindparam("b_token", type_=String())
    expires: Any = bindparam("b_expires", type_=_WHEN)
    endpoint: Any = bindparam("b_endpoint", type_=String())
    # Endpoints an operator paused (console, audited) are not claimed until resumed: checked in
    # the claim itself, not by a read of the pauses before it (a round trip per claim).
    paused = select(EndpointPause.endpoint).where(EndpointPause.endpoint == endpoint).exists()
    if skip_locked:
        # PostgreSQL: ordered by (endpoint, seq), with the endpoint as a one-element array, so
        # that only ix_outbox_pending_endpoint_seq gives the order (an equality would make the
        # endpoint a constant and the primary key's order do as well): with the claim's
        # ``enable_sort = off`` (CLAIM_PLANNER_SETTINGS) the claim walks that index, whatever
        # the statistics say. Through the primary key it walked every delivered row first.
        of_endpoint = OutboxMessage.endpoint == any_(postgresql.array([endpoint], type_=String()))
        order: tuple[Any, ...] = (OutboxMessage.endpoint, OutboxMessage.seq)
    else:
        of_endpoint, order = OutboxMessage.endpoint == endpoint, (OutboxMessage.seq,)
    candidates = (
        select(OutboxMessage.seq)
        .where(of_endpoint, claimable_condition(OutboxMessage, now), ~paused)
        .order_by(*order)
        .limit(bindparam("b_limit", type_=Integer()))
    )
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    changes = transitions.claim(lease_owner=token, lease_expires_at=expires, now=now)
    return (
        update(OutboxMessage)
        .where(OutboxMessage.seq.in_(candidates.scalar_subquery()))
        .values(_values(changes))
        .returning(*CLAIM_COLUMNS)
    )


def _leased_by_seq(seqs: Any) -> Any:
    """PostgreSQL: in flight, found by ``seqs`` on the primary key whatever the statistics say.

    The state test is wrapped (``IS TRUE``) so that the planner cannot prove a partial index's
    predicate from it: with statistics taken while nothing was in flight (a quiet outbox, then a
    burst), it took the partial indexes of in-flight rows for empty and scanned one whole for
    each batch of results instead of looking the rows up by ``seq`` (docs/delivery.md §9.3)."""
    return and_(
        OutboxMessage.seq == any_(seqs), (OutboxMessage.state == literal_column(f"'{_LEASED}'")).is_(true())
    )


def _leased_pairs(*, postgres: bool) -> Any:
    """The rows held under the bound ``(seq, token)`` pairs (values: :func:`_pair_values`).

    Not ``postgres``: an ``IN`` list ``b_pairs`` (SQLite; on PostgreSQL too for a read that
    locks nothing, ``held_sync``). ``postgres``: two arrays ``b_seqs`` and ``b_tokens`` (one SQL
    text for every batch size), looked up by ``seq`` (:func:`_leased_by_seq`), and only the rows
    no other transaction has locked (``FOR UPDATE SKIP LOCKED``, §12.1): the results,
    heartbeats and releases that change them never wait."""
    owned = tuple_(OutboxMessage.seq, OutboxMessage.lease_owner)
    if not postgres:
        return and_(OutboxMessage.state == _LEASED, owned.in_(bindparam("b_pairs", expanding=True)))
    seqs = bindparam("b_seqs", type_=ARRAY(BigInteger()))
    pairs = (
        func.unnest(seqs, bindparam("b_tokens", type_=ARRAY(String())))
        .table_valued("seq", "token")
        .render_derived()
    )
    lockable = (
        select(OutboxMessage.seq)
        .where(_leased_by_seq(seqs), owned.in_(select(pairs.c.seq, pairs.c.token)))
        .with_for_update(skip_locked=True)
    )
    return OutboxMessage.seq.in_(lockable.scalar_subquery())


def _padded(items: Sequence[_T]) -> Sequence[_T]:
    """``items`` (not empty) padded to the next power of two by repeating the last, so an ``IN``
    list of them takes one of a few SQL texts, not one per length (docs/delivery.md §9.3): each
    text is a statement the database driver prepares and keeps (the sqlite3 module 128 per
    connection, each with its own memory), and batches of every size from 1 to 500 made the
    SQLite worker's memory grow through a long drain. A repeated pair names the same row again,
    so the same rows change."""
    size = 1 << (len(items) - 1).bit_length()
    return items if size == len(items) else [*items, *[items[-1]] * (size - len(items))]


def _pair_values(pairs: Sequence[tuple[int, str]], *, postgres: bool) -> dict[str, Any]:
    """The bound values of :func:`_leased_pairs` (PostgreSQL: arrays, one SQL text already)."""
    if not postgres:
        return {"b_pairs": _padded(pairs)}
    return {"b_seqs": [seq for seq, _token in pairs], "b_tokens": [token for _seq, token in pairs]}


_DUE_NOW: Any = bindparam("now", type_=_WHEN)
#: SQLite: is anything of ``:endpoints`` claimable at ``:now`` (read without the write lock)?
_DUE_QUERY = (
    select(OutboxMessage.seq)
    .where(
        OutboxMessage.endpoint.in_(bindparam("endpoints", expanding=True)),
        claimable_condition(OutboxMessage, _DUE_NOW),
    )
    .limit(1)
)


class _DriverStatement:
    """A Core statement compiled once for one dialect, run through ``Connection.exec_driver_sql``
    (docs/delivery.md §9.3).

    ``conn.execute(statement)`` walks the statement for its cache key, looks its compiled form
    up, and builds and processes its parameters and result rows through generic machinery on
    every call: most of the CPU of claiming and writing results. Here the SQL text, the order of
    its parameters and SQLAlchemy's own bind and result processors are taken once; the database
    receives the same SQL. On a positional dialect (SQLite) one ``expanding`` parameter (an
    ``IN`` list of values or of pairs) is rendered per length, as SQLAlchemy renders it.
    """

    __slots__ = ("_expanding", "_fixed", "_names", "_processors", "_results", "_sql", "_sql_by_length")

    def __init__(self, statement: Any, dialect: Dialect, *, column_keys: Sequence[str] | None = None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        self._sql: str = compiled.string
        #: Parameter names in order on a positional dialect; ``None``: named (``%(name)s``).
        self._names: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if dialect.positional else None
        )
        self._fixed: dict[str, Any] = {}
        self._processors: dict[str, Callable[[Any], Any]] = {}
        self._expanding: str | None = None
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.expanding:
                if self._names is None or self._expanding is not None:
                    raise ValueError("one expanding parameter, on a positional dialect only")
                self._expanding = name
            elif not bind.required:  # a value written in the statement
                self._fixed[name] = bind.value if process is None else process(bind.value)
            elif process is not None:
                self._processors[name] = process
        #: Result processors by column position (RETURNING or SELECT columns), where there is one.
        self._results: list[tuple[int, Callable[[Any], Any]]] = []
        for i, column in enumerate(statement.exported_columns):
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                self._results.append((i, process))
        self._sql_by_length: dict[int, str] = {}

    def _text(self, length: int, width: int) -> str:
        """The SQL with the expanding parameter rendered for ``length`` items of ``width`` values."""
        text = self._sql_by_length.get(length)
        if text is None:
            item = "?" if width == 1 else f"({', '.join('?' * width)})"
            items = ", ".join([item] * length)
            text = self._sql.replace(
                f"__[POSTCOMPILE_{self._expanding}]", items if width == 1 else f"VALUES {items}"
            )
            if len(self._sql_by_length) < _CHUNK:
                self._sql_by_length[length] = text
        return text

    def _values(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter's value by name, ``given`` ones through their bind processors."""
        values = self._fixed | dict(given)
        for name, process in self._processors.items():
            values[name] = process(values[name])
        return values

    def execute(self, conn: Connection, given: Mapping[str, Any]) -> CursorResult[Any]:
        """Run once with ``given``; the expanding parameter, if any, is a sequence in ``given``."""
        values = self._values(given)
        if self._names is None:
            return conn.exec_driver_sql(self._sql, values)
        if self._expanding is None:
            return conn.exec_driver_sql(self._sql, tuple(values[name] for name in self._names))
        items = values[self._expanding]
        if not items:
            raise ValueError(f"{self._expanding}: an empty IN list")
        width = len(items[0]) if isinstance(items[0], tuple) else 1
        flat: list[Any] = []
        for name in self._names:
            if name != self._expanding:
                flat.append(values[name])
            elif width == 1:
                flat.extend(items)
            else:
                for item in items:
                    flat.extend(item)
        return conn.exec_driver_sql(self._text(len(items), width), tuple(flat))

    def execute_many(self, conn: Connection, keys: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """One ``executemany`` of ``rows``, each the values named by ``keys`` in that order."""
        processors = [(i, self._processors[name]) for i, name in enumerate(keys) if name in self._processors]
        converted = [_processed(row, processors) for row in rows]
        if self._names is None:
            conn.exec_driver_sql(self._sql, [dict(zip(keys, values, strict=True)) for values in converted])
        elif self._names == tuple(keys):
            conn.exec_driver_sql(self._sql, converted)
        else:
            order = [keys.index(name) for name in self._names]
            conn.exec_driver_sql(self._sql, [tuple([values[i] for i in order]) for values in converted])

    def rows(self, result: CursorResult[Any]) -> list[tuple[Any, ...]]:
        """The returned rows, each value through its column's result processor."""
        return [_processed(row, self._results) for row in result.all()]  # one fetchall


def _processed(row: Sequence[Any], processors: Sequence[tuple[int, Callable[[Any], Any]]]) -> tuple[Any, ...]:
    """``row``'s values, those at the given positions through their processor."""
    if not processors:
        return tuple(row)
    values = list(row)
    for i, process in processors:
        values[i] = process(values[i])
    return tuple(values)


class _CopyRows:
    """PostgreSQL: rows of ``columns`` appended to ``table`` with ``COPY … FROM STDIN``, in the
    connection's transaction (docs/delivery.md §9.3).

    ``executemany`` of an ``INSERT`` sends one prepared execution per row, each through
    psycopg's Python pipeline machinery (about 21 µs of CPU per attempt row); ``COPY`` streams
    the rows, formatted by psycopg's C code (about 9 µs). The values go through the columns'
    SQLAlchemy bind processors first, as an ``INSERT`` would take them; triggers, constraints
    and the transaction's lock and statement timeouts apply to ``COPY`` as to ``INSERT``.
    """

    __slots__ = ("_processors", "_sql")

    def __init__(self, table: Table, columns: Sequence[str], dialect: Dialect) -> None:
        preparer = dialect.identifier_preparer
        names = ", ".join(map(preparer.quote, columns))
        self._sql = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
        self._processors: list[tuple[int, Callable[[Any], Any]]] = []
        for i, name in enumerate(columns):
            process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self._processors.append((i, process))

    def write(self, conn: Connection, rows: Iterable[Sequence[Any]]) -> None:
        raw = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
        with raw.cursor() as cursor, cursor.copy(self._sql) as copy:
            for row in rows:
                copy.write_row(_processed(row, self._processors))


class _HotStatements:
    """The statements run per claim and per batch of results, compiled once for one dialect
    (:class:`_DriverStatement`, docs/delivery.md §9.3)."""

    __slots__ = ("attempts", "claim", "copy_attempts", "deliver", "due")

    def __init__(self, dialect: Dialect) -> None:
        postgres = dialect.name == "postgresql"
        self.claim = _DriverStatement(_claim_statement(skip_locked=postgres), dialect)
        self.due = _DriverStatement(_DUE_QUERY, dialect) if not postgres else None
        now: Any = bindparam("b_now", type_=_WHEN)
        deliver = (
            update(OutboxMessage)
            .where(_leased_pairs(postgres=postgres))
            .values(_values(transitions.deliver(now=now)))
            .returning(OutboxMessage.seq)
        )
        self.deliver = _DriverStatement(deliver, dialect)
        self.attempts = _DriverStatement(_INSERT_ATTEMPTS, dialect, column_keys=ATTEMPT_COLUMNS)
        attempts_table = cast(Table, DeliveryAttempt.__table__)
        self.copy_attempts = _CopyRows(attempts_table, ATTEMPT_COLUMNS, dialect) if postgres else None


class SqlOutboxStore:
    """:class:`~hub.delivery.store.OutboxStore` on the hub's database.

    ``config`` gives the PostgreSQL lock and statement timeouts (defaults: ``WorkerSettings()``).
    """

    def __init__(
        self, db: Database, config: WorkerSettings | None = None, *, outage: OutageReporter | None = None
    ) -> None:
        self.db = db
        #: Where the LISTEN loop reports its failures (the worker's shared reporter).
        self.outage = outage or OutageReporter()
        self._sqlite = db.engine.dialect.name == "sqlite"
        self._reader = db.reader
        #: SQLite: write transactions on the event loop, which never wait for the lock (:meth:`_write`).
        self._nowait = db.engine.execution_options(**{SQLITE_NOWAIT_OPTION: True})
        config = config or WorkerSettings()
        dialect = db.engine.dialect
        self._hot = _HotStatements(dialect)
        #: The last claim got every message it asked for (SQLite skips its pre-check then).
        self._claimed_all = False
        #: SQLite: the watch saw new rows since the last claim began (no pre-check needed either).
        self._new_rows = False
        timeouts = (
            func.set_config("lock_timeout", _milliseconds(config.lock_timeout_seconds), True),
            func.set_config("statement_timeout", _milliseconds(config.statement_timeout_seconds), True),
        )
        self._timeouts = _DriverStatement(select(*timeouts), dialect)
        #: A claim's transaction, besides: no sort (:data:`CLAIM_PLANNER_SETTINGS`).
        self._claim_settings = _DriverStatement(
            select(
                *timeouts, *(func.set_config(name, value, True) for name, value in CLAIM_PLANNER_SETTINGS)
            ),
            dialect,
        )

    # --- the protocol (async: each call runs its transaction in a thread) --------------------

    async def _write(self, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run ``function``, a write transaction, on a thread; on SQLite right here on the event
        loop when no one holds the write lock (docs/delivery.md §9.3, "SQLite writes on the
        event loop").

        A thread of its own would hold SQLite's lock for the transaction's CPU time plus every
        wait for the GIL the event loop holds (each statement gives it up and waits to take it
        back): three times the CPU time under load, during which no other writer may write.
        Here the transaction runs only when the writer gate is free at once
        (:meth:`~hub.db.writer_lock.WriterGate.try_enter`) and begins without waiting in
        SQLite's busy handler (:data:`~hub.db.session.SQLITE_NOWAIT_OPTION`): when a writer that
        does not take turns holds the lock, it fails before changing anything and goes to a
        thread, so the event loop never waits for the lock.
        """
        gate = self.db.writer_gate
        if self._sqlite and isinstance(gate, WriterGate) and gate.try_enter():
            on_loop = _ON_LOOP.set(True)
            try:
                return function(*args, **kwargs)
            except OperationalError as exc:
                if not _locked(exc):
                    raise
            finally:
                _ON_LOOP.reset(on_loop)
                gate.__exit__(None, None, None)
        return await asyncio.to_thread(function, *args, **kwargs)

    async def claim(
        self, wants: Mapping[str, int], lease_token: str, lease_seconds: float
    ) -> list[ClaimedMessage]:
        return await self._write(self.claim_sync, wants, lease_token, lease_seconds)

    async def heartbeat(self, leases: Mapping[str, Sequence[int]], lease_seconds: float) -> set[int]:
        return await _in_own_thread(self.heartbeat_sync, leases, lease_seconds)

    async def release(self, leases: Iterable[tuple[int, str]], *, not_before: datetime | None = None) -> int:
        return await self._write(self.release_sync, list(leases), not_before=not_before)

    async def complete(self, completions: Sequence[Completion], worker_id: str) -> set[int]:
        return await self._write(self.complete_sync, completions, worker_id)

    async def held(self, leases: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
        return await asyncio.to_thread(self.held_sync, list(leases))

    async def rescue_expired(self, rescuer: Rescuer) -> list[int]:
        return await asyncio.to_thread(self.rescue_expired_sync, rescuer)

    async def make_due(self, endpoint: str, *, since: datetime, limit: int | None = None) -> int:
        return await asyncio.to_thread(self.make_due_sync, endpoint, since=since, limit=limit)

    async def rescue_dead_workers(self, rescuer: Rescuer, *, dead_after_seconds: float) -> list[int]:
        return await asyncio.to_thread(
            self.rescue_dead_workers_sync, rescuer, dead_after_seconds=dead_after_seconds
        )

    async def heartbeat_worker(self, worker: WorkerRegistration) -> None:
        await _in_own_thread(self.heartbeat_worker_sync, worker)

    async def deregister_worker(self, worker_id: str) -> None:
        await asyncio.to_thread(self.deregister_worker_sync, worker_id)

    async def publish_health(
        self, endpoint: str, state: str, consecutive_failures: int, *, success: bool, error: str | None
    ) -> None:
        await asyncio.to_thread(
            self.publish_health_sync, endpoint, state, consecutive_failures, success=success, error=error
        )

    @asynccontextmanager
    async def listen(self, wake: Callable[[], None]) -> AsyncIterator[None]:
        local = _LocalWake(self.db, wake)
        local.install()
        listener = asyncio.create_task(
            self._listen_loop(wake) if self.db.is_postgres else self._watch_loop(wake), name="listen"
        )
        try:
            yield
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            local.remove()

    async def _listen_loop(self, wake: Callable[[], None]) -> None:
        import psycopg

        conninfo = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=PG_CONNECT_TIMEOUT_SECONDS
                ) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.outage.succeeded("listen")
                    wake()
                    async for _notify in conn.notifies():
                        wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
                # Polling covers the gap; the reporter logs the outage once and paces reconnects.
                await self.outage.pause(max(LISTEN_RECONNECT_SECONDS, self.outage.failed("listen", exc)))

    async def _watch_loop(self, wake: Callable[[], None]) -> None:
        """SQLite: wake when another connection (the intake API, another process) committed new
        outbox rows, seen within :data:`SQLITE_WATCH_SECONDS` while rows keep coming and within
        :data:`SQLITE_WATCH_IDLE_SECONDS` after a quiet spell (the poll interval otherwise)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                with _CommitWatch(self.db) as watch:
                    self.outage.succeeded("listen")
                    wake()  # rows committed before the watch began, like LISTEN's first wake
                    last_rows = loop.time()
                    while True:
                        quiet = loop.time() - last_rows > SQLITE_WATCH_ACTIVE_SECONDS
                        await asyncio.sleep(SQLITE_WATCH_IDLE_SECONDS if quiet else SQLITE_WATCH_SECONDS)
                        if watch.new_rows():
                            last_rows = loop.time()
                            self._new_rows = True
                            wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
                await self.outage.pause(max(LISTEN_RECONNECT_SECONDS, self.outage.failed("listen", exc)))

    # --- blocking implementations (also handy for synchronous tools and tests) ---------------

    @contextmanager
    def _transaction(self, *, read_only: bool = False, claim: bool = False) -> Iterator[Connection]:
        """One transaction; on PostgreSQL under the worker's lock and statement timeouts.

        ``read_only``: on SQLite a deferred BEGIN (never waits for the write lock); otherwise
        under the database's writer gate (:attr:`~hub.db.session.Database.writer_gate`).
        ``claim``: on PostgreSQL also :data:`CLAIM_PLANNER_SETTINGS` (set in the same statement).
        """
        # Writers take their turn at SQLite's one write lock with the API's (docs/delivery.md
        # §9.3); PostgreSQL's gate is a no-op.
        gate = contextlib.nullcontext() if read_only else self.db.writer_gate
        engine = self._reader if read_only else self._nowait if _ON_LOOP.get() else self.db.engine
        with gate, engine.begin() as conn:
            if not self._sqlite:
                (self._claim_settings if claim else self._timeouts).execute(conn, {})
            yield conn

    def _now(self) -> Any:
        """The database's clock on PostgreSQL (worker liveness is compared across hosts), the
        process's on SQLite (one host)."""
        return utcnow() if self._sqlite else func.now()

    def _any(self, condition: Any) -> bool:
        """SQLite: a read (no write lock) telling whether a write transaction is worth taking.

        An idle worker then polls without queueing on SQLite's single writer lock.
        """
        return self._exists(select(OutboxMessage.seq).where(condition))

    def _exists(self, query: Any) -> bool:
        """SQLite: whether ``query`` finds a row, read without the write lock (see :meth:`_any`)."""
        with self._reader.connect() as conn:
            found = conn.execute(query.limit(1)).first()
            conn.rollback()
        return found is not None

    def claim_sync(
        self, wants: Mapping[str, int], lease_token: str, lease_seconds: float
    ) -> list[ClaimedMessage]:
        wants = {endpoint: n for endpoint, n in wants.items() if n > 0}
        if not wants:
            return []
        now = utcnow()
        expires = now + timedelta(seconds=lease_seconds)
        claimed: list[ClaimedMessage] = []
        # SQLite: a read first tells whether the write lock is worth taking (an idle worker polls
        # without queueing for it), unless the last claim got all it asked for or the watch saw
        # new rows since: more is likely.
        new_rows, self._new_rows = self._new_rows, False
        if self._sqlite and not (self._claimed_all or new_rows) and not self._exists_due(sorted(wants), now):
            return claimed
        with self._transaction(claim=True) as conn:
            for endpoint, limit in sorted(wants.items()):  # paused endpoints: none (the claim checks)
                claimed.extend(self._claim_endpoint(conn, endpoint, limit, lease_token, now, expires))
        self._claimed_all = len(claimed) >= sum(wants.values())
        claimed.sort(key=lambda message: message.seq)
        return claimed

    def _exists_due(self, endpoints: list[str], now: datetime) -> bool:
        """SQLite: whether any of ``endpoints`` has a claimable message (see :meth:`_any`)."""
        assert self._hot.due is not None
        with self._reader.connect() as conn:
            found = self._hot.due.execute(conn, {"endpoints": endpoints, "now": now}).first()
            conn.rollback()
        return found is not None

    def _claim_endpoint(
        self, conn: Connection, endpoint: str, limit: int, token: str, now: datetime, expires: datetime
    ) -> list[ClaimedMessage]:
        statement = self._hot.claim
        parameters = {
            "b_endpoint": endpoint,
            "b_limit": limit,
            "b_now": now,
            "b_token": token,
            "b_expires": expires,
        }
        rows = statement.rows(statement.execute(conn, parameters))
        return [ClaimedMessage(*row, lease_token=token) for row in rows]

    def held_sync(self, leases: Sequence[tuple[int, str]]) -> set[tuple[int, str]]:
        found: set[tuple[int, str]] = set()
        if not leases:
            return found
        with self._transaction(read_only=True) as conn:
            held = select(OutboxMessage.seq, OutboxMessage.lease_owner).where(_leased_pairs(postgres=False))
            for chunk in _chunks(leases, _CHUNK):
                rows = conn.execute(held, _pair_values(chunk, postgres=False))
                found.update((row.seq, row.lease_owner) for row in rows)
        return found

    def heartbeat_sync(self, leases: Mapping[str, Sequence[int]], lease_seconds: float) -> set[int]:
        pairs = [(seq, token) for token, seqs in leases.items() for seq in seqs]
        if not pairs:
            return set()
        now = utcnow()
        changes = transitions.extend_lease(lease_expires_at=now + timedelta(seconds=lease_seconds))
        return set(self._change_leased(pairs, changes))

    def release_sync(self, leases: Iterable[tuple[int, str]], *, not_before: datetime | None = None) -> int:
        pairs = list(leases)
        if not pairs:
            return 0
        changes = transitions.release(not_before=not_before, now=utcnow())
        return len(self._change_leased(pairs, changes))

    def _change_leased(self, pairs: Sequence[tuple[int, str]], changes: transitions.Changes) -> list[int]:
        """Apply ``changes`` to the rows still held under their ``(seq, token)``; their seqs."""
        changed: list[int] = []
        postgres = not self._sqlite
        statement = (
            update(OutboxMessage)
            .where(_leased_pairs(postgres=postgres))
            .values(_values(changes))
            .returning(OutboxMessage.seq)
        )
        with self._transaction() as conn:
            for chunk in _chunks(pairs, _CHUNK):
                result = conn.execute(statement, _pair_values(chunk, postgres=postgres))
                changed.extend(result.scalars())
        return changed

    def complete_sync(self, completions: Sequence[Completion], worker_id: str) -> set[int]:
        if not completions:
            return set()
        now = utcnow()
        # (seq, token) of the completions that held their lease: only those are recorded. A
        # batch may hold two results for one message (a stalled claim, rescued, then claimed
        # again by the same worker); those go one by one so each is matched to its own lease.
        finalised: set[tuple[int, str]] = set()
        repeated = {seq for seq, n in Counter(c.seq for c in completions).items() if n > 1}
        batched = [c for c in completions if c.outcome is AttemptOutcome.DELIVERED and c.seq not in repeated]
        in_batches = {id(c) for c in batched}
        one_by_one = [c for c in completions if id(c) not in in_batches]
        postgres = not self._sqlite
        with self._transaction() as conn:
            for chunk in _chunks(batched, _CHUNK):
                tokens = {c.seq: c.lease_token for c in chunk}
                values = _pair_values(list(tokens.items()), postgres=postgres)
                result = self._hot.deliver.execute(conn, {"b_now": now, **values})
                finalised.update((seq, tokens[seq]) for (seq,) in result.all())
            for completion in one_by_one:
                changes = transitions.finish(
                    completion.outcome,
                    now=now,
                    next_attempt_at=completion.next_attempt_at,
                    error=completion.error,
                    error_class=completion.error_class,
                )
                result = conn.execute(
                    update(OutboxMessage).where(_leased_pairs(postgres=postgres)).values(_values(changes)),
                    _pair_values([(completion.seq, completion.lease_token)], postgres=postgres),
                )
                if result.rowcount:
                    finalised.add((completion.seq, completion.lease_token))
            rows = [c.attempt_row(worker_id) for c in completions if (c.seq, c.lease_token) in finalised]
            if rows and self._hot.copy_attempts is not None:
                self._hot.copy_attempts.write(conn, rows)  # PostgreSQL: one COPY
            elif rows:
                self._hot.attempts.execute_many(conn, ATTEMPT_COLUMNS, rows)  # one executemany
        return {seq for seq, _token in finalised}

    def rescue_expired_sync(self, rescuer: Rescuer) -> list[int]:
        """The update is guarded by the same (token, state, expiry) it read, so it cannot race a
        completion that landed meanwhile."""
        now = utcnow()
        expired = and_(
            OutboxMessage.state == literal_column(f"'{_LEASED}'"), OutboxMessage.lease_expires_at < now
        )
        if self._sqlite and not self._any(expired):
            return []
        with self._transaction() as conn:
            query = select(*_RESCUE_COLUMNS).where(expired).order_by(OutboxMessage.seq).limit(rescuer.limit)
            if not self._sqlite:
                query = query.with_for_update(skip_locked=True)
            return self._rescue_rows(
                conn,
                conn.execute(query).all(),
                rescuer,
                now=now,
                cause=LeaseLoss.EXPIRED,
                still=OutboxMessage.lease_expires_at < now,
            )

    def rescue_dead_workers_sync(self, rescuer: Rescuer, *, dead_after_seconds: float) -> list[int]:
        """Leases whose token names a worker that is silent (or stopped), joined on the
        ``workers`` primary key; silent workers are then marked stopped."""
        now = utcnow()
        silent = DeliveryWorker.last_heartbeat_at < self._now() - timedelta(seconds=dead_after_seconds)
        dead = or_(DeliveryWorker.stopped_at.is_not(None), silent)
        in_flight = OutboxMessage.state == literal_column(f"'{_LEASED}'")
        query = (
            select(*_RESCUE_COLUMNS)
            .join(DeliveryWorker, DeliveryWorker.id == self._token_worker())
            .where(in_flight, dead)
            .order_by(OutboxMessage.seq)
            .limit(rescuer.limit)
        )
        unmarked = select(DeliveryWorker.id).where(DeliveryWorker.stopped_at.is_(None), silent)
        if self._sqlite:
            if not self._exists(query) and not self._exists(unmarked):
                return []
        else:
            query = query.with_for_update(of=OutboxMessage, skip_locked=True)
        with self._transaction() as conn:
            rescued = self._rescue_rows(
                conn,
                conn.execute(query).all(),
                rescuer,
                now=now,
                cause=LeaseLoss.WORKER_DEAD,
            )
            conn.execute(
                update(DeliveryWorker)
                .where(DeliveryWorker.stopped_at.is_(None), silent)
                .values(stopped_at=self._now())
            )
        return rescued

    def make_due_sync(self, endpoint: str, *, since: datetime, limit: int | None = None) -> int:
        now = utcnow()
        held = and_(
            OutboxMessage.endpoint == endpoint,
            OutboxMessage.state == _CLAIMABLE,
            OutboxMessage.next_attempt_at > now,
            OutboxMessage.updated_at >= since,
        )
        if limit is not None:
            soonest = (
                select(OutboxMessage.seq)
                .where(held)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.seq)
                .limit(limit)
            )
            held = OutboxMessage.seq.in_(soonest.scalar_subquery())
        with self._transaction() as conn:
            result = conn.execute(
                update(OutboxMessage).where(held).values(_values(transitions.make_due(now=now)))
            )
            return int(result.rowcount)

    def _token_worker(self) -> Any:
        """SQL: the worker id a lease token starts with (:meth:`WorkerRegistration.token`)."""
        owner = OutboxMessage.lease_owner
        if self._sqlite:
            return func.substr(owner, 1, func.instr(owner, TOKEN_SEPARATOR) - 1)
        return func.split_part(owner, TOKEN_SEPARATOR, 1)

    def _rescue_rows(
        self,
        conn: Connection,
        rows: Sequence[Any],
        rescuer: Rescuer,
        *,
        now: datetime,
        cause: LeaseLoss,
        still: Any = None,
    ) -> list[int]:
        """Return ``rows`` (read, and on PostgreSQL locked, in this transaction) to the queue, or
        dead-letter those out of attempts, each with a ``lease_lost`` attempt. Each update is
        guarded by the token and state it read (and ``still``), so it cannot race a completion."""
        rescued: list[int] = []
        attempts: list[dict[str, Any]] = []
        for row in rows:
            dead = rescuer.out_of_attempts(row)
            error = transitions.lease_lost_error(row.lease_owner, row.attempts, cause)
            guard = [
                OutboxMessage.seq == row.seq,
                OutboxMessage.lease_owner == row.lease_owner,
                OutboxMessage.state == _LEASED,
            ]
            if still is not None:
                guard.append(still)
            result = conn.execute(
                update(OutboxMessage)
                .where(*guard)
                .values(_values(transitions.rescue(dead=dead, error=error, now=now)))
            )
            if not result.rowcount:
                continue
            rescued.append(row.seq)
            attempts.append(
                _attempt_row(transitions.lease_lost_attempt(row, rescuer_id=rescuer.id, now=now, cause=cause))
            )
        if attempts:
            conn.execute(insert(DeliveryAttempt), attempts)
        return rescued

    def heartbeat_worker_sync(self, worker: WorkerRegistration) -> None:
        now = self._now()
        with self._transaction() as conn:
            dialect = sqlite if self._sqlite else postgresql
            statement = dialect.insert(DeliveryWorker).values(
                **asdict(worker), started_at=now, last_heartbeat_at=now, stopped_at=None
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["id"], set_={"last_heartbeat_at": now, "stopped_at": None}
                )
            )

    def deregister_worker_sync(self, worker_id: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                update(DeliveryWorker).where(DeliveryWorker.id == worker_id).values(stopped_at=self._now())
            )

    def publish_health_sync(
        self, endpoint: str, state: str, consecutive_failures: int, *, success: bool, error: str | None
    ) -> None:
        """Upsert ``endpoint_health`` (what ``hub dlq health`` and the API show)."""
        now = utcnow()
        values: dict[str, Any] = {
            "endpoint": endpoint,
            "state": state,
            "consecutive_failures": consecutive_failures,
            "updated_at": now,
        }
        if state == "open":
            values["opened_at"] = now
        if success:
            values["last_success_at"] = now
        elif error is not None:
            values["last_failure_at"] = now
            values["last_error"] = error
        with self._transaction() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(EndpointHealth).values(**values)
            update_values = {key: value for key, value in values.items() if key != "endpoint"}
            conn.execute(statement.on_conflict_do_update(index_elements=["endpoint"], set_=update_values))


class _CommitWatch:
    """SQLite's stand-in for NOTIFY: whether new outbox rows were committed since the last look.

    ``PRAGMA data_version`` changes when another connection (any process) has committed; about
    4 µs, so it is read on the event loop every few milliseconds. Only then is the newest
    ``seq`` read: the worker's own claims, results and heartbeats change the version, not the
    newest row, so they wake nobody. The connection is the watch's own (out of the pool) and
    never waits for a lock (``busy_timeout`` 0): a busy database is looked at again next time.
    Changes that add no row (an operator's retry from another process) wait for the poll.
    """

    _VERSION = "PRAGMA data_version"
    _NEWEST = "SELECT max(seq) FROM outbox_messages"

    def __init__(self, db: Database) -> None:
        connection = db.engine.raw_connection()
        connection.detach()  # the watch's for its lifetime, closed by it, never back in the pool
        self._connection = connection
        self._cursor = connection.cursor()
        try:
            self._cursor.execute("PRAGMA busy_timeout=0")
            self._version = self._read(self._VERSION)
            self._newest = self._read(self._NEWEST)
        except BaseException:
            self.__exit__()  # the watch loop retries with a new connection: close this one
            raise

    def __enter__(self) -> _CommitWatch:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._cursor.close()
        self._connection.close()

    def _read(self, query: str) -> Any:
        # Read to the end: a statement left mid-way would keep its read transaction (and its
        # snapshot of the WAL) open until the next look.
        rows = self._cursor.execute(query).fetchall()
        return rows[0][0] if rows else None

    def new_rows(self) -> bool:
        """Whether the newest outbox row is another than at the last look (a busy database: no)."""
        try:
            version = self._read(self._VERSION)
            if version == self._version:
                return False
            newest = self._read(self._NEWEST)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
            return False  # the version is kept: looked at again next time
        self._version = version
        if newest == self._newest:
            return False
        self._newest = newest
        return True


class _LocalWake:
    """Wake the worker when a session of the same :class:`Database` commits outbox rows.

    In ``hub serve`` the API and the worker share one process: on SQLite (no NOTIFY) this
    avoids waiting for the poll. Only ORM sessions are watched (``enqueue``, DLQ actions);
    the store itself writes through Core, so the worker never wakes itself.
    """

    #: Set by :func:`hub.outbox.enqueue.write_messages` and by the flush hook below.
    _FLAG = OUTBOX_TOUCHED

    def __init__(self, db: Database, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._targets = (db.sessions, db.write_sessions)

    def _after_flush(self, session: Session, _context: Any) -> None:
        if any(isinstance(obj, OutboxMessage) for obj in (*session.new, *session.dirty)):
            session.info[self._FLAG] = True

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(self._FLAG, False):
            self._wake()

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(self._FLAG, None)

    def _hooks(self) -> tuple[tuple[str, Any], ...]:
        return (
            ("after_flush", self._after_flush),
            ("after_commit", self._after_commit),
            ("after_rollback", self._after_rollback),
        )

    def install(self) -> None:
        for target in self._targets:
            for name, hook in self._hooks():
                event.listen(target, name, hook)

    def remove(self) -> None:
        for target in self._targets:
            for name, hook in self._hooks():
                event.remove(target, name, hook)


def _chunks(items: Sequence[_T], size: int) -> Iterable[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
