"""A private PostgreSQL cluster for tests that stop and start the server (failover, reconnect).

The shared server at 127.0.0.1:5432 is never restarted (other tests use it); a test that needs
an outage gets a cluster of its own: ``initdb`` into a fresh directory, ``pg_ctl`` on a free
loopback port, trust authentication, no durability settings worth the wait (``fsync=off``).
Run as the ``postgres`` OS user (``runuser``) when the tests run as root, since PostgreSQL
refuses to run as root. :meth:`PrivateCluster.stop` with ``mode="immediate"`` is a crash (no
checkpoint, connections cut); :meth:`PrivateCluster.start` brings it back on the same address.

``HUB_TEST_PG_BIN`` names the directory of ``initdb``/``pg_ctl`` (default: the newest
``/usr/lib/postgresql/*/bin``, else whatever is on ``PATH``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

#: Seconds ``pg_ctl`` waits for a start or a stop.
PG_CTL_WAIT_SECONDS = 60


def _bin_dir() -> Path | None:
    configured = os.environ.get("HUB_TEST_PG_BIN")
    if configured:
        return Path(configured)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


def _program(name: str) -> str:
    directory = _bin_dir()
    if directory is not None and (directory / name).is_file():
        return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found (set HUB_TEST_PG_BIN)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateCluster:
    """A PostgreSQL cluster of its own in a temporary directory, on ``127.0.0.1:<port>``."""

    def __init__(self, *, user: str = "postgres") -> None:
        self.port = _free_port()
        self._as_user: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="hub-pgcluster-"))
        if os.geteuid() == 0:  # PostgreSQL refuses root: run its programs as ``user``
            account = pwd.getpwnam(user)
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as_user = ["runuser", "-u", user, "--"]
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._run(
            _program("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self._as_user, *command], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}{log}")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self) -> None:
        """Start (again) on the same port; returns once it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            _program("pg_ctl"),
            "start",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            str(PG_CTL_WAIT_SECONDS),
        )

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop; ``immediate`` is a crash (connections cut, recovery at the next start)."""
        self._run(
            _program("pg_ctl"), "stop", "-D", str(self.data), "-m", mode, "-w", "-t", str(PG_CTL_WAIT_SECONDS)
        )

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` (psycopg driver), as the hub's settings take it."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create ``name`` and return its URL."""
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True, connect_timeout=5
        ) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def destroy(self) -> None:
        if self.running:
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """A started private cluster, stopped and deleted afterwards."""
    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
