"""SQLite's one writer at a time, handed over in turn between threads and processes
(docs/delivery.md §9.3, "SQLite writers take turns").

SQLite admits one writer: a writer that finds the database locked waits in SQLite's busy
handler, which sleeps (up to 100 ms a time) and tries again, and a process committing one
transaction after another (intake under a flood of single changes) wins nearly every time:
the worker, another process, was starved of the lock for seconds. Here every write transaction
of the hub first takes

1. the **in-process gate** (:class:`WriterGate`, re-entrant): this process's writers queue on
   it and are woken the moment the holder commits;
2. then the **sidecar lock** (:class:`SidecarLock`): two files beside the database,
   ``<database>-writer`` and ``<database>-writer-queue``, locked with ``flock``. The kernel wakes
   a blocked waiter when the holder unlocks, and a writer must hold the queue file to ask for the
   writer file (queue, writer, then the queue is let go), so a process that keeps writing finds
   the queue held by the process waiting for the writer file and waits its turn: when two
   processes both want to write, they alternate.

The sidecar lock covers the span of SQLite's own lock (it is taken just before ``BEGIN
IMMEDIATE`` and let go just after ``COMMIT``), so waiting for it replaces waiting in SQLite's
busy handler; SQLite's lock stays the one that guarantees one writer. Rules:

* **Timeout**: a writer waits at most the busy timeout for the sidecar lock (as it would for
  SQLite's). If it is not granted by then (its holder stopped, say by SIGSTOP), this writer and the
  later ones of the process go on to SQLite's lock without it (busy handler, busy timeout, as
  before this lock) until the sidecar lock is free again: a stuck holder costs each other
  process one busy timeout, then nothing more than it cost before. A holder that dies lets go at
  once (the kernel drops a dead process's locks).
* **Unavailable**: if the files cannot be opened (a read-only directory without them) or locked
  (a file system without ``flock``), the process writes without the sidecar lock, as before,
  and says so once in its log. Nothing here raises: the clear errors about read-only databases
  come from the start-up checks (:mod:`hub.db.availability`).
* **Order**: the in-process gate, then the sidecar lock, then SQLite's lock; let go in the
  reverse order on every path out of the transaction (``with``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from types import TracebackType

log = logging.getLogger("hub.db")

#: Suffixes of the sidecar files beside the database (like SQLite's ``-wal`` and ``-shm``).
WRITER_SUFFIX = "-writer"
QUEUE_SUFFIX = "-writer-queue"


class SidecarLock:
    """The cross-process part: ``flock`` on two files beside the database (module docstring).

    Blocking ``flock`` has no timeout, so a contended acquisition waits on a thread of the
    lock's own (started on first contention) while the writer waits for its grant with a
    timeout; an uncontended one takes both files without blocking, on the writer's thread.
    One writer of the process asks at a time (the in-process gate is held around it).
    """

    def __init__(self, database: Path, timeout: float) -> None:
        self.database = database
        self.timeout = timeout
        self._fds: tuple[int, int] | None = None
        self._pid = 0
        self._unavailable = False
        self._cond = threading.Condition()
        self._waiting = False  # the thread is taking the lock (for a writer that may have given up)
        self._wanted = False  # a writer is waiting for the grant
        self._granted = False
        self._thread: threading.Thread | None = None

    def _open(self) -> tuple[int, int] | None:
        """The files' descriptors (opened again in a forked child), or ``None``: unavailable."""
        if self._unavailable:
            return None
        if self._fds is not None and self._pid == os.getpid():
            return self._fds
        self._fds, self._thread, self._waiting, self._pid = None, None, False, os.getpid()
        opened: list[int] = []
        try:
            for suffix in (WRITER_SUFFIX, QUEUE_SUFFIX):
                # Read-only is enough for flock; O_CREAT opens an existing file in a read-only
                # directory and creates it where the directory is writable.
                opened.append(
                    os.open(f"{self.database}{suffix}", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
                )
        except OSError as exc:
            for fd in opened:
                os.close(fd)
            self._give_up(exc)
            return None
        self._fds = (opened[0], opened[1])
        return self._fds

    def _give_up(self, exc: OSError) -> None:
        self._unavailable = True
        log.warning(
            "SQLite writers of this process do not take turns with other processes (%s): "
            "they wait in SQLite's busy handler",
            exc,
        )

    def acquire(self) -> bool:
        """Take the lock: ``True`` if held (then :meth:`release` it), ``False`` if the writer is to
        go on without it (unavailable, or not granted within :attr:`timeout`)."""
        if self.try_acquire():
            return True
        fds = self._open()
        if fds is None:  # unavailable
            return False
        with self._cond:
            if self._waiting:  # a wait that timed out is still blocked: the holder is stuck
                return False
            self._wanted, self._granted, self._waiting = True, False, True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._wait_loop, args=(fds,), name="hub-sqlite-writer-lock", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
            granted = self._cond.wait_for(lambda: self._granted, self.timeout)
            self._wanted = self._granted = False
        if not granted:
            log.warning(
                "SQLite writer lock %s not granted within %.0f s: writing without it until it is free",
                f"{self.database}{WRITER_SUFFIX}",
                self.timeout,
            )
        return granted

    def try_acquire(self) -> bool:
        """Take the lock only if it is free and no other process queues for it (no waiting);
        ``False`` also when unavailable (then :meth:`acquire` tells the writer to go on without)."""
        fds = self._open()
        if fds is None:
            return False
        writer, queue = fds
        with self._cond:
            if self._waiting:  # a wait that timed out is still blocked: the holder is stuck
                return False
            try:
                if not _try_flock(queue):
                    return False
                try:
                    return _try_flock(writer)
                finally:
                    fcntl.flock(queue, fcntl.LOCK_UN)
            except OSError as exc:
                self._give_up(exc)
                return False

    def release(self) -> None:
        if self._fds is not None:
            fcntl.flock(self._fds[0], fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the files (:meth:`Database.dispose <hub.db.session.Database.dispose>`); the next
        :meth:`acquire` opens them again. Their waiting thread, if any, ends."""
        with self._cond:
            fds, self._fds, self._thread = self._fds, None, None
            self._waiting = self._wanted = self._granted = False
            self._cond.notify_all()
        if fds is not None and self._pid == os.getpid():
            for fd in fds:
                os.close(fd)

    def _wait_loop(self, fds: tuple[int, int]) -> None:
        """Take the lock blocking (queue, writer, let the queue go) each time a writer asks; hand
        it to the writer, or let it go if the writer stopped waiting."""
        writer, queue = fds
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting or self._fds is not fds)
                if self._fds is not fds:  # closed
                    return
            try:
                fcntl.flock(queue, fcntl.LOCK_EX)
                try:
                    fcntl.flock(writer, fcntl.LOCK_EX)
                finally:
                    fcntl.flock(queue, fcntl.LOCK_UN)
            except OSError as exc:
                with self._cond:
                    if self._fds is fds:  # not closed meanwhile: locking itself failed
                        self._waiting = False
                        self._give_up(exc)
                        self._cond.notify_all()
                return
            with self._cond:
                if self._fds is not fds:  # closed meanwhile (the lock went with the files)
                    return
                if self._wanted:
                    self._granted = True
                else:
                    fcntl.flock(writer, fcntl.LOCK_UN)  # the writer went on without it
                self._waiting = False
                self._cond.notify_all()


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class WriterGate:
    """Held around every write transaction on SQLite: the in-process gate, then the sidecar
    lock (module docstring). Re-entrant on one thread, so a transaction opened inside another
    fails in SQLite as before (busy timeout), not by deadlock here."""

    def __init__(self, sidecar: SidecarLock | None) -> None:
        self.sidecar = sidecar
        self._gate = threading.RLock()
        self._depth = 0
        self._sidecar_held = False

    def __enter__(self) -> WriterGate:
        self._gate.acquire()
        try:
            if self._depth == 0 and self.sidecar is not None:
                self._sidecar_held = self.sidecar.acquire()
        except BaseException:
            self._gate.release()
            raise
        self._depth += 1
        return self

    def try_enter(self) -> bool:
        """Enter only if no one holds the gate, in this process or another (``flock`` without
        blocking); ``True``: entered (leave with ``__exit__``). For a writer that must never wait
        for it (the worker's event loop, :mod:`hub.delivery.sql_store`)."""
        if not self._gate.acquire(blocking=False):
            return False
        if self._depth == 0 and self.sidecar is not None:
            try:
                held = self.sidecar.try_acquire()
            except BaseException:
                self._gate.release()
                raise
            if not held:
                self._gate.release()
                return False
            self._sidecar_held = True
        self._depth += 1
        return True

    def close(self) -> None:
        """Close the sidecar files (the database is disposed of)."""
        if self.sidecar is not None:
            self.sidecar.close()

    @property
    def taking_turns(self) -> bool:
        """Whether the transaction under way holds the sidecar lock (not unavailable or timed out)."""
        return self._sidecar_held

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._sidecar_held:
                self._sidecar_held = False
                assert self.sidecar is not None
                self.sidecar.release()
        finally:
            self._gate.release()
