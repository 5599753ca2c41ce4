"""Group commit: concurrent single changes share one transaction, each in its own savepoint.

A single intake request used to be one transaction of its own: on PostgreSQL one WAL flush per
request (about 5 ms on the reference box, ``synchronous_commit`` on) and a pool check-out with
its ping, on SQLite one turn of the single writer lock per request, with every other request
thread queued behind it. Database engines answer the same problem with *group commit* (the
leader/follower scheme of PostgreSQL's WAL flush and of MySQL's binary-log group commit): the
callers that arrive while one group is being written are written together by one of them.

Here:

* a caller queues its unit of work; when no group is being written it leads: it takes the queued
  units (at most :data:`MAX_GROUP`, oldest first, its own first), opens one transaction, runs
  each unit in a ``SAVEPOINT``, commits once and wakes each caller with its own result;
* a unit that raises a :class:`~schemas.errors.HubError` (a refused transition, a conflict, bad
  input) is rolled back to its savepoint and its caller gets that error; the others commit;
* a unit that fails otherwise inside the database (a deadlock, a lock timeout, a constraint the
  unit did not expect), and every unit of a group whose commit fails, is run again by its own
  caller **alone**, in a transaction of its own as without grouping — so each caller gets the
  answer its own transaction would have given, and nothing of a failed unit is stored;
* after its group the leader hands the lead to the oldest waiting caller, so no caller keeps
  serving others.

A unit therefore sees the changes of the units before it in its group (as it would see them
committed by earlier requests) and must not commit itself. Idempotency keys and the dossier row
locks are taken inside the unit, as before; the locks are held until the group commits.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from hub.db.session import Database
from schemas.errors import HubError

T = TypeVar("T")

#: Most units one transaction carries (their row locks are held until it commits).
MAX_GROUP = 32


class _State(enum.Enum):
    QUEUED = "queued"
    LEAD = "lead"
    DONE = "done"
    ALONE = "alone"
    """Not written by its group: the caller runs it in a transaction of its own."""


@dataclass(eq=False)
class _Unit(Generic[T]):
    work: Callable[[Session], T]
    state: _State = _State.QUEUED
    value: Any = None
    error: HubError | None = None
    wake: threading.Event = field(default_factory=threading.Event)


class CommitGroup:
    """Runs units of work of concurrent callers (threads) in shared transactions of ``db``."""

    def __init__(self, db: Database, *, max_group: int = MAX_GROUP) -> None:
        self._db = db
        self._max_group = max_group
        self._lock = threading.Lock()
        self._queue: deque[_Unit[Any]] = deque()
        self._leading = False
        #: Groups committed and units written in them (observability; tests read them).
        self.groups = 0
        self.grouped = 0

    def run(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` committed, grouped with concurrent callers' (see the module docstring)."""
        unit: _Unit[T] = _Unit(work)
        with self._lock:
            self._queue.append(unit)
            if not self._leading:
                self._leading = True
                unit.state = _State.LEAD
        while unit.state is _State.QUEUED:
            unit.wake.wait()
            unit.wake.clear()
        if unit.state is _State.LEAD:
            self._lead()
        if unit.state is _State.ALONE:
            with self._db.transaction() as session:
                return work(session)
        if unit.error is not None:
            raise unit.error
        value: T = unit.value
        return value

    def _lead(self) -> None:
        with self._lock:
            count = min(len(self._queue), self._max_group)
            group = [self._queue.popleft() for _ in range(count)]
        try:
            self._write(group)
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.state = _State.LEAD
                    successor.wake.set()
                else:
                    self._leading = False
            for unit in group:
                if unit.state is _State.LEAD or unit.state is _State.QUEUED:
                    unit.state = _State.ALONE  # the group failed before reaching it
                unit.wake.set()

    def _write(self, group: list[_Unit[Any]]) -> None:
        done: list[_Unit[Any]] = []
        try:
            with self._db.transaction() as session:
                for unit in group:
                    try:
                        with session.begin_nested():
                            unit.value = unit.work(session)
                    except HubError as error:
                        unit.error = error
                        unit.state = _State.DONE
                    except Exception:  # noqa: BLE001 - run again alone, where it fails as it would have
                        unit.state = _State.ALONE
                    else:
                        done.append(unit)
        except Exception:  # noqa: BLE001 - the commit failed: each caller runs its unit alone
            for unit in done:
                unit.state, unit.value = _State.ALONE, None
            return
        for unit in done:
            unit.state = _State.DONE
        self.groups += 1
        self.grouped += len(done)
