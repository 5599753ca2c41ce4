"""Is the database there, and can it heal? (docs/delivery.md §13).

Two kinds of database fault reach a hub process:

* faults that cannot heal by waiting — the database does not exist, the credentials are
  refused, the file or server is read-only, the schema is not migrated: :func:`diagnose`
  names them, and a starting hub refuses to run on them with one line
  (:func:`check_sqlite_location`, :func:`check_writable`, :func:`start_error`);
* faults that heal — the server restarts, the network drops, SQLite is busy: a starting hub
  tries a few times before giving up; a running one keeps going, and every loop that talks
  to the database reports through one shared :class:`OutageReporter`, which logs once per
  change of state ("database unreachable …" / "database reachable again after 12.3 s") and
  paces the retries with a capped exponential backoff (the "retry with backoff, log state
  changes not attempts" rule of the AWS Builders' Library, "Timeouts, retries and backoff").
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from hub.waits import first_of
from schemas.errors import ConfigurationError, HubError, RetryableError
from schemas.timefmt import now_utc

log = logging.getLogger("hub.db")

#: Closed outages a process keeps until they are written to the ``outages`` table.
MAX_UNRECORDED_OUTAGES = 100

#: Backoff of a loop whose database calls fail: the first pause, doubled per failure, capped.
FIRST_PAUSE_SECONDS = 0.2
MAX_PAUSE_SECONDS = 5.0


class DatabaseProblem(enum.StrEnum):
    UNREACHABLE = "unreachable"
    """The server or file cannot be reached right now (refused, restarting, busy): may heal."""
    MISSING = "missing"
    """The database does not exist."""
    AUTHENTICATION = "authentication"
    """The server refused the credentials (or the role does not exist)."""
    READ_ONLY = "read_only"
    """The database, file or directory is read-only."""
    SCHEMA = "schema"
    """A table is missing: the schema is not migrated."""
    OTHER = "other"
    """Anything else (a bug, a refused value): not a connectivity problem."""


@dataclass(frozen=True, slots=True)
class Diagnosis:
    problem: DatabaseProblem
    reason: str
    """One line, from the driver's message (no password: drivers never print it)."""

    @property
    def heals(self) -> bool:
        """Waiting may cure it (the server comes back): retry rather than give up."""
        return self.problem is DatabaseProblem.UNREACHABLE


# PostgreSQL SQLSTATEs (Appendix A of its manual) and libpq connection messages, which carry none.
_UNREACHABLE_STATES = frozenset({"08000", "08001", "08003", "08006", "53300", "57P01", "57P02", "57P03"})
_AUTH_PATTERNS = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "no pg_hba.conf entry",
    'role "',
)
_SQLITE_TRANSIENT = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o",
)


def _one_line(message: str) -> str:
    line = next((part.strip() for part in message.splitlines() if part.strip()), "")
    line = line.removeprefix("connection failed: ")
    if "FATAL:" in line:  # libpq: 'connection to server at … failed: FATAL:  database "x" does not exist'
        line = line.split("FATAL:", 1)[1]
    return re.sub(r"\s+", " ", line).strip()


def diagnose(error: BaseException) -> Diagnosis:
    """What a database error means: its :class:`DatabaseProblem` and a one-line reason."""
    original = getattr(error, "orig", None) or error
    reason = _one_line(str(original)) or type(original).__name__
    lowered = reason.lower()
    sqlstate = getattr(original, "sqlstate", None)
    names = {cls.__name__ for cls in type(original).__mro__}
    driver = type(original).__module__.split(".")[0]

    def found(problem: DatabaseProblem) -> Diagnosis:
        return Diagnosis(problem, reason)

    if sqlstate == "25006" or "read-only" in lowered or "readonly database" in lowered:
        return found(DatabaseProblem.READ_ONLY)
    if (sqlstate or "").startswith("28") or any(pattern in lowered for pattern in _AUTH_PATTERNS):
        return found(DatabaseProblem.AUTHENTICATION)
    if sqlstate == "3D000" or (lowered.startswith('database "') and lowered.endswith("does not exist")):
        return found(DatabaseProblem.MISSING)
    if sqlstate == "42P01" or "no such table" in lowered:
        return found(DatabaseProblem.SCHEMA)
    if getattr(error, "connection_invalidated", False) or sqlstate in _UNREACHABLE_STATES:
        return found(DatabaseProblem.UNREACHABLE)
    if driver == "psycopg" and names & {"OperationalError", "InterfaceError"} and sqlstate is None:
        return found(DatabaseProblem.UNREACHABLE)  # libpq: refused, timed out, connection lost
    if driver == "sqlite3" and any(pattern in lowered for pattern in _SQLITE_TRANSIENT):
        return found(DatabaseProblem.UNREACHABLE)
    if isinstance(original, OSError):  # ConnectionError, TimeoutError, socket errors
        return found(DatabaseProblem.UNREACHABLE)
    return found(DatabaseProblem.OTHER)


# --- refusing to start -----------------------------------------------------------------------


def safe_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def check_sqlite_location(url: str) -> None:
    """Refuse a SQLite database the hub could not write: a missing or read-only directory, a
    read-only file. Checked before connecting (connecting would create the directory).

    A file that does not exist yet in a writable directory passes: the schema check then
    asks for ``hub db upgrade``. SQLite in WAL mode writes ``<db>-wal`` and ``<db>-shm``
    beside the database, so the directory must be writable too.
    """
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):  # a URI filename: its options are the operator's choice
        return
    path = Path(database)
    directory = path.parent
    if not directory.is_dir():
        raise ConfigurationError(
            f"SQLite database {path} does not exist: directory {directory} is missing "
            "(check database_url, or run 'hub db upgrade' to create it)",
            message_vi="cơ sở dữ liệu SQLite không tồn tại",
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigurationError(
            f"SQLite database file {path} is read-only: the hub writes to it",
            message_vi="tệp cơ sở dữ liệu SQLite chỉ đọc",
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"SQLite database directory {directory} is read-only: the hub writes {path.name}-wal "
            f"and {path.name}-shm beside the database",
            message_vi="thư mục cơ sở dữ liệu SQLite chỉ đọc",
        )


def check_writable(connection: Connection) -> None:
    """Raise the driver's error when the database refuses writes (a read-only file, a standby
    server, ``default_transaction_read_only``): an update of no row, rolled back."""
    with connection.begin() as transaction:
        connection.execute(text("UPDATE alembic_version SET version_num = version_num WHERE 1 = 0"))
        transaction.rollback()


#: What waiting cannot cure, as a starting hub reports it: (message, Vietnamese message);
#: ``{reason}`` and ``{where}`` are filled in.
_CANNOT_HEAL: dict[DatabaseProblem, tuple[str, str]] = {
    DatabaseProblem.MISSING: (
        "{reason} ({where}): create it, then run 'hub db upgrade'",
        "cơ sở dữ liệu không tồn tại",
    ),
    DatabaseProblem.AUTHENTICATION: (
        "database refused the credentials: {reason} ({where}): check database_url",
        "cơ sở dữ liệu từ chối thông tin đăng nhập",
    ),
    DatabaseProblem.READ_ONLY: (
        "database is read-only: {reason} ({where}): the hub writes to it",
        "cơ sở dữ liệu chỉ đọc",
    ),
    DatabaseProblem.SCHEMA: (
        "database schema is incomplete: {reason} ({where}): run 'hub db upgrade' first",
        "cơ sở dữ liệu chưa được cập nhật; hãy chạy 'hub db upgrade'",
    ),
}


def start_error(diagnosis: Diagnosis, url: str, *, tries: int, seconds: float) -> HubError:
    """The one-line error a starting hub exits with (``hub serve``, ``hub worker``)."""
    where = safe_url(url)
    problem = diagnosis.problem
    if problem in _CANNOT_HEAL:
        message, message_vi = _CANNOT_HEAL[problem]
        return ConfigurationError(message.format(reason=diagnosis.reason, where=where), message_vi=message_vi)
    if problem is DatabaseProblem.UNREACHABLE:
        return RetryableError(
            f"database unreachable after {tries} tries over {seconds:.0f} s: {diagnosis.reason} ({where})",
            message_vi="không kết nối được cơ sở dữ liệu",
        )
    return RetryableError(f"database error: {diagnosis.reason} ({where})", message_vi="lỗi cơ sở dữ liệu")


# --- running through an outage ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutageSpan:
    """A closed database outage in wall-clock time, to be recorded once the database is back."""

    started_at: datetime
    ended_at: datetime
    reason: str


@dataclass
class _Failing:
    problem: DatabaseProblem
    failures: int = 0


class OutageReporter:
    """The one object every loop of a process reports its database calls to.

    ``failed(operation, error)`` after a failed call returns the pause before that loop's next
    try (``FIRST_PAUSE_SECONDS`` doubled per consecutive failure of the operation, capped at
    ``MAX_PAUSE_SECONDS``); ``succeeded(operation)`` after a call that worked. Logging is per
    change of state, never per failure:

    * the first failure that means "unreachable" opens an outage (one warning); the first
      success of an operation that failed in it, or of any operation once the outage is older
      than the first pause, closes it ("reachable again after 12.3 s") and wakes every loop
      pausing in :meth:`pause` (a call that ends in the outage's first moments may have been
      under way before it, as PostgreSQL's shutdown ends sessions one by one);
    * an operation failing for another reason (read-only, a missing table, a bug) is logged
      once when it starts failing (with the traceback when the cause is unknown) and once
      when it works again.

    Readiness (:mod:`hub.health`) reads :attr:`reachable`, :attr:`reason` and :meth:`failing`.
    Used from one event loop; the read-only properties may be read from any thread.
    """

    def __init__(
        self,
        *,
        first_pause: float = FIRST_PAUSE_SECONDS,
        max_pause: float = MAX_PAUSE_SECONDS,
        logger: logging.Logger = log,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.first_pause = first_pause
        self.max_pause = max_pause
        self._log = logger
        self._clock = clock
        self._wall_clock = wall_clock
        self._down_since: float | None = None
        self._down_since_wall: datetime | None = None
        self._closed: deque[OutageSpan] = deque(maxlen=MAX_UNRECORDED_OUTAGES)
        self._reason: str | None = None
        self._failing: dict[str, _Failing] = {}
        self._recovered: asyncio.Event | None = None

    @property
    def reachable(self) -> bool:
        return self._down_since is None

    @property
    def reason(self) -> str | None:
        """Why the database is unreachable (``None`` while it is reachable)."""
        return self._reason

    def down_for(self) -> float:
        """Seconds since the outage began (0 while reachable)."""
        return 0.0 if self._down_since is None else self._clock() - self._down_since

    def failing(self) -> dict[str, str]:
        """Operations failing for a reason other than reachability: operation → reason."""
        return {
            op: state.problem.value
            for op, state in self._failing.items()
            if state.problem is not DatabaseProblem.UNREACHABLE
        }

    def failed(self, operation: str, error: BaseException) -> float:
        """Record a failed call of ``operation``; returns the seconds to pause before retrying it."""
        diagnosis = diagnose(error)
        state = self._failing.get(operation)
        if diagnosis.heals:
            if self._down_since is None:
                self._down_since = self._clock()
                self._down_since_wall = self._wall_clock()
                self._reason = diagnosis.reason
                self._recovered = asyncio.Event()
                self._log.warning(
                    "database unreachable: %s (%s), retrying with backoff", diagnosis.reason, operation
                )
        elif state is None or state.problem is not diagnosis.problem:
            self._log.error(
                "database %s failing: %s, retrying with backoff",
                operation,
                diagnosis.reason,
                exc_info=error if diagnosis.problem is DatabaseProblem.OTHER else None,
            )
        if state is None or state.problem is not diagnosis.problem:
            state = self._failing[operation] = _Failing(diagnosis.problem)
        state.failures += 1
        return float(min(self.max_pause, self.first_pause * 2 ** (state.failures - 1)))

    def succeeded(self, operation: str) -> None:
        """Record a call of ``operation`` that worked (cheap: call it after every call)."""
        state = self._failing.pop(operation, None)
        if state is not None and state.problem is not DatabaseProblem.UNREACHABLE:
            self._log.warning("database %s works again after %d failure(s)", operation, state.failures)
        if self._down_since is None:
            return
        if state is None and self._clock() - self._down_since < self.first_pause:
            # A call of another operation, under way on a connection opened before the outage
            # (a stopping PostgreSQL ends its sessions one by one): no proof the database is back.
            return
        self._log.warning("database reachable again after %.1f s", self._clock() - self._down_since)
        if self._down_since_wall is not None:
            self._closed.append(OutageSpan(self._down_since_wall, self._wall_clock(), self._reason or ""))
        self._down_since = None
        self._down_since_wall = None
        self._reason = None
        self._failing = {
            op: failing
            for op, failing in self._failing.items()
            if failing.problem is not DatabaseProblem.UNREACHABLE
        }
        if self._recovered is not None:
            self._recovered.set()

    def take_closed(self) -> list[OutageSpan]:
        """The outages closed since the last call (for :mod:`hub.services.outages` to record)."""
        spans = list(self._closed)
        self._closed.clear()
        return spans

    def put_back(self, spans: Iterable[OutageSpan]) -> None:
        """Outages taken but not recorded (the write failed): kept for the next try."""
        self._closed.extendleft(reversed(list(spans)))

    async def pause(self, seconds: float, stop: asyncio.Event | None = None) -> None:
        """Sleep ``seconds``, less if the database is back meanwhile or ``stop`` is set."""
        events = [event for event in (self._recovered, stop) if event is not None]
        if self._down_since is None:
            events = [event for event in events if event is not self._recovered]
        if not events:
            await asyncio.sleep(seconds)
            return
        await first_of(events, seconds=seconds)

    async def retry_later(
        self, operation: str, error: BaseException, stop: asyncio.Event | None = None
    ) -> None:
        """:meth:`failed`, then :meth:`pause` for the backoff it returns."""
        await self.pause(self.failed(operation, error), stop)
