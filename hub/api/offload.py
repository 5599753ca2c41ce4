"""Intake's writes, run off the event loop on threads of their own (docs/architecture.md,
"Intake throughput").

The intake routes are ``async``: the request is parsed, authenticated and validated on the
event loop, and only the service call (one database transaction) runs in a thread, handed over
with one executor hop (a sync route costs two hops through AnyIO's shared pool: the handler,
then the validation of its answer). The threads are intake's own, sized to the database:

* SQLite admits one writer at a time, so **one** thread: the writes queue here, in arrival
  order, instead of 16 request threads contending for the writer gate
  (:attr:`hub.db.session.Database.writer_gate`, which other writers still take) and the GIL;
* PostgreSQL locks rows, not the database: as many threads as the connection pool holds, so
  the round trips of concurrent transactions overlap.

The caller's context variables (correlation id, audit client) go along with the call.

**Group commit** (:class:`WriteGroups`): the single-change routes most used (``POST /dossiers``
and ``POST /dossiers/{code}/status``) hand their change to a few *lanes* instead; a change that
finds a lane free is written at once, alone, as before; those arriving while every lane is busy
wait, and the next lane to free writes those of one caller together, in one transaction
(:meth:`hub.services.intake.IntakeService.apply_group`). No change waits for a timer, only for
a lane; under load a transaction's fixed cost (begin, commit, the pool's ping, the ORM session)
is paid once per group instead of once per request (docs/architecture.md, "Intake throughput").
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, ParamSpec, TypeVar

from hub.db.session import Database

_P = ParamSpec("_P")
_T = TypeVar("_T")
_K = TypeVar("_K", bound=Hashable)
_C = TypeVar("_C")

#: Changes written together at most (a group is one transaction; ``POST /dossiers/batch``
#: takes as many).
GROUP_MOST = 100
#: Lanes of the group commit on PostgreSQL: concurrent transactions overlap their round trips,
#: but more lanes make smaller groups, and a group's fixed cost is the API process's CPU. On
#: the 2-core test machine (2026-12-07, 16 clients of ``POST /dossiers``, alternately): 1 lane
#: 781 and 691 changes/s (754-757 transactions for 6,000 changes), 2 lanes 802 and 671
#: (1,268-1,292), 4 lanes 480 and 560 (2,195-2,249).
POSTGRES_LANES = 2


class WriteThreads:
    """A thread pool for blocking writes, awaited from the event loop."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hub-intake")

    @classmethod
    def for_database(cls, db: Database) -> WriteThreads:
        """One thread on SQLite (one writer at a time), the pool's size on PostgreSQL."""
        return cls(db.engine.pool.size() if db.is_postgres else 1)  # type: ignore[attr-defined]

    async def run(self, function: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``function(*args, **kwargs)`` in one of the threads, in the caller's context."""
        call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        """Stop taking work; the writes already handed over finish first."""
        self._executor.shutdown(wait=True)


class WriteGroups(Generic[_K, _C, _T]):
    """Group commit over :class:`WriteThreads` (module docstring): changes with the same key
    (the caller) that wait for a lane are written together by ``apply(key, changes)``, which
    answers each change, in order, with its result or its own exception."""

    def __init__(
        self,
        writes: WriteThreads,
        apply: Callable[[_K, Sequence[_C]], Sequence[_T | Exception]],
        *,
        lanes: int,
        most: int = GROUP_MOST,
    ) -> None:
        self._writes = writes
        self._apply = apply
        self.lanes = lanes
        self._most = most
        self._waiting: dict[_K, list[tuple[_C, asyncio.Future[_T]]]] = {}
        self._busy = 0
        self._groups: set[asyncio.Task[None]] = set()

    @classmethod
    def for_database(
        cls, db: Database, writes: WriteThreads, apply: Callable[[_K, Sequence[_C]], Sequence[_T | Exception]]
    ) -> WriteGroups[_K, _C, _T]:
        """One lane on SQLite (one writer at a time), :data:`POSTGRES_LANES` on PostgreSQL."""
        return cls(writes, apply, lanes=min(POSTGRES_LANES, writes.threads) if db.is_postgres else 1)

    @property
    def busy(self) -> int:
        """Lanes writing a group now."""
        return self._busy

    @property
    def waiting(self) -> int:
        """Changes waiting for a lane."""
        return sum(map(len, self._waiting.values()))

    async def write(self, key: _K, change: _C) -> _T:
        """``change``'s result once written (alone or in a group), or its exception."""
        answer: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((change, answer))
        self._start()
        return await answer

    def _start(self) -> None:
        """Give the free lanes the waiting changes, a caller's at a time in the order callers
        first waited (a caller with more than a group's worth goes to the back for the rest)."""
        while self._busy < self.lanes and self._waiting:
            key = next(iter(self._waiting))
            waiting = self._waiting.pop(key)
            group, rest = waiting[: self._most], waiting[self._most :]
            if rest:
                self._waiting[key] = rest
            self._busy += 1
            # Its own empty context: each change runs in its request's (SingleChange.context).
            task = asyncio.get_running_loop().create_task(
                self._write(key, group), context=contextvars.Context()
            )
            self._groups.add(task)
            task.add_done_callback(self._groups.discard)

    async def _write(self, key: _K, group: list[tuple[_C, asyncio.Future[_T]]]) -> None:
        try:
            try:
                outcomes: Sequence[_T | Exception] = await self._writes.run(
                    self._apply, key, [change for change, _answer in group]
                )
            except Exception as error:  # noqa: BLE001 - every change of the group is answered with it
                outcomes = [error] * len(group)
            for (_change, answer), outcome in zip(group, outcomes, strict=True):
                if answer.done():  # its request is gone (client disconnected): written all the same
                    continue
                if isinstance(outcome, Exception):
                    answer.set_exception(outcome)
                else:
                    answer.set_result(outcome)
        finally:
            self._busy -= 1
            self._start()
