"""A private PostgreSQL cluster a test may stop and start (the ``private_postgres`` fixture).

The shared server at ``HUB_TEST_PG_URL`` serves every test running in parallel, so no test may
stop it. An outage test runs its own cluster instead: ``initdb`` into a temporary directory,
``pg_ctl start`` on a free loopback port, ``stop()``/``start()`` as the test needs, removed at
the end. PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres``
OS user (``runuser``), in a directory that user owns.

The binaries come from ``HUB_TEST_PG_BIN``, else ``initdb`` on the ``PATH``, else the newest
``/usr/lib/postgresql/*/bin`` (Debian's layout).
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
from typing import Any, Literal

import psycopg
from psycopg import sql

from hub.db.migrate import upgrade

#: The OS user the cluster runs as when the tests run as root.
PG_OS_USER = "postgres"


def pg_bin() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``."""
    configured = os.environ.get("HUB_TEST_PG_BIN")
    if configured:
        return Path(configured)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parent.parent.name)
    )
    if not candidates:
        raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl): set HUB_TEST_PG_BIN")
    return candidates[-1].parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePostgres:
    """One throw-away cluster on 127.0.0.1:``port`` (trust authentication, user ``postgres``)."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = port
        self._bin = pg_bin()
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(self._bin / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", PG_OS_USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        if self._as_root:
            user = pwd.getpwnam(PG_OS_USER)
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            # fsync off: only the server process is ever crashed, never the machine. synchronous_commit
            # stays on: off, a crash loses commits the hub was told about.
            "-c fsync=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.directory / "server.log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop the server: ``fast`` closes open connections, as a restart does; ``immediate``
        is a crash (no checkpoint, connections cut)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def running(self) -> bool:
        try:
            self._run("pg_ctl", "-D", str(self.data), "status")
        except subprocess.CalledProcessError:
            return False
        return True

    def server_log(self, tail: int = 4000) -> str:
        """The end of the server's log (for a failing test's message)."""
        log = self.directory / "server.log"
        return log.read_text(errors="replace")[-tail:] if log.exists() else ""

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` (what the hub's settings take)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True, connect_timeout=5
        )

    def create_database(self, name: str, *, migrated: bool = True) -> str:
        """Create ``name`` (migrated to the latest schema unless told otherwise); its URL."""
        with self._admin() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = self.url(name)
        if migrated:
            upgrade(url)
        return url


@contextlib.contextmanager
def private_cluster() -> Iterator[PrivatePostgres]:
    """A started private cluster, stopped and removed on exit."""
    directory = Path(tempfile.mkdtemp(prefix="hub-pg-"))
    directory.chmod(0o755)
    cluster = PrivatePostgres(directory, free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.running:
            with contextlib.suppress(subprocess.CalledProcessError):
                cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
