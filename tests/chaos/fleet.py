"""Real hub processes for the chaos scenarios: configuration, start, kill -9, pause, stop.

Workers run as ``python -m hub worker`` (``hub serve`` for the API) with their settings from
``HUB_DATABASE_URL`` and a TOML file (``HUB_CONFIG_FILE``), as in production and as
``tests/delivery/test_crash.py`` starts them. Each process logs to a file of its own (a pipe
nobody reads would fill up and stall a worker that logs a lot while its database is down).

``HUB_CHAOS_SCALE`` (default 1) multiplies the sizes of every scenario (messages, dossiers,
kills, outages): the default run is short enough for CI; ``benchmarks/chaos.py`` runs the long
one and prints the verifier's summaries.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy import func, select

from hub.db.models import MessageState, OutboxMessage
from hub.db.session import Database

REPO_ROOT = Path(__file__).resolve().parents[2]


def scale() -> float:
    """``HUB_CHAOS_SCALE`` (a positive number; 1 = the CI size)."""
    value = float(os.environ.get("HUB_CHAOS_SCALE", "1") or 1)
    if value <= 0:
        raise ValueError(f"HUB_CHAOS_SCALE must be positive, not {value}")
    return value


def scaled(n: float) -> int:
    """``n`` times the chaos scale, at least 1."""
    return max(1, round(n * scale()))


@dataclass
class HubProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    _handle: IO[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


class Fleet:
    """Hub processes on one database and configuration, by name; all stopped on exit.

    ``command`` is what follows ``python -m`` (default: ``hub worker``); ``env`` is added to
    the environment of every process.
    """

    def __init__(
        self,
        database_url: str,
        config: Path,
        logs: Path,
        *,
        command: Sequence[str] = ("hub", "worker"),
        env: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.config = config
        self.logs = logs
        self.command = list(command)
        self.env = dict(env or {})
        self.processes: dict[str, HubProcess] = {}
        self.generations: dict[str, int] = {}
        self.exits: list[tuple[str, int]] = []
        """(worker id, exit status) of every process that ended."""

    def start(self, name: str, *extra: str, command: Sequence[str] | None = None) -> HubProcess:
        """Start (or restart) process ``name``; its worker id is ``name-g<generation>``.

        ``command`` replaces the fleet's for this process; ``extra`` arguments follow it.
        """
        command = list(command or self.command)
        generation = self.generations.get(name, 0) + 1
        self.generations[name] = generation
        worker_id = f"{name}-g{generation}"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
            "HUB_DATABASE_URL": self.database_url,
            "HUB_CONFIG_FILE": str(self.config),
            "HUB_LOG_LEVEL": "WARNING",
            **self.env,
        }
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{worker_id}.log"
        handle = log.open("wb")
        args = [sys.executable, "-m", *command]
        if command[-1] == "worker":
            args += ["--worker-id", worker_id]
        process = subprocess.Popen(
            [*args, *extra], env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO_ROOT
        )
        self.processes[name] = HubProcess(worker_id, process, log, handle)
        return self.processes[name]

    def kill(self, name: str) -> None:
        """``kill -9``: no shutdown, leases left to expire."""
        self._signal_and_wait(name, signal.SIGKILL)

    def pause(self, name: str) -> None:
        """``SIGSTOP``: frozen with whatever it holds (resume with :meth:`resume`)."""
        self.processes[name].process.send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.processes[name].process.send_signal(signal.SIGCONT)

    def stop(self, name: str, *, grace: float = 30) -> None:
        """SIGTERM (graceful), SIGKILL after ``grace`` seconds."""
        self._signal_and_wait(name, signal.SIGTERM, grace=grace)

    def _signal_and_wait(self, name: str, signum: int | None, *, grace: float = 30) -> None:
        """Send ``signum`` (``None``: it was sent already) and wait for the end (SIGKILL after ``grace``)."""
        running = self.processes.pop(name)
        if running.alive() and signum is not None:
            running.process.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
            running.process.send_signal(signum)
        try:
            running.process.wait(grace)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait(10)
        running._handle.close()
        self.exits.append((running.name, running.process.returncode))

    def stop_all(self, *, grace: float = 30) -> None:
        """SIGTERM to every process at once (a second one would force the stop), then wait for each."""
        for running in self.processes.values():
            if running.alive():
                running.process.send_signal(signal.SIGCONT)
                running.process.send_signal(signal.SIGTERM)
        for name in list(self.processes):
            self._signal_and_wait(name, None, grace=grace)

    def graceful_exits(self) -> bool:
        """Every process ended well: status 0, or killed on purpose (SIGKILL), or ended by the
        SIGTERM before it had set up its handlers (still starting: it held nothing yet)."""
        allowed = {0, -signal.SIGKILL, -signal.SIGTERM}
        return all(status in allowed for _name, status in self.exits)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of every process's log (for a failure message)."""
        parts = []
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text(encoding="utf-8", errors="replace")
            parts.append(f"--- {log.name}\n{text[-chars:]}")
        return "\n".join(parts)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def undelivered(db: Database) -> int:
    """Outbox messages not delivered yet (0 once the drain is over)."""
    with db.sessions() as session:
        count = session.scalar(
            select(func.count()).where(OutboxMessage.state != MessageState.DELIVERED.value)
        )
    return int(count or 0)


def held_by(db: Database, worker_id: str) -> int:
    """Messages in flight under a lease of ``worker_id`` (lease tokens are ``<registration>#<n>``,
    the registration being ``<worker id>:<pid>:<random>``, :class:`hub.delivery.store.WorkerRegistration`)."""
    with db.sessions() as session:
        count = session.scalar(
            select(func.count()).where(
                OutboxMessage.state == MessageState.IN_FLIGHT.value,
                OutboxMessage.lease_owner.like(f"{worker_id}:%#%"),
            )
        )
    return int(count or 0)


def wait_for(predicate: Callable[[], bool], *, within: float, step: float = 0.1) -> bool:
    """Poll ``predicate`` until it holds (True) or ``within`` seconds pass (False).

    A database that is down (a restart under way) counts as "not yet".
    """
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(Exception):
            if predicate():
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
