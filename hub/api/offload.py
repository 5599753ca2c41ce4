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
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from hub.db.session import Database

_P = ParamSpec("_P")
_T = TypeVar("_T")


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
