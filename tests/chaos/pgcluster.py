"""A private PostgreSQL cluster for tests that stop, crash or restart the server.

The suite's shared server (``HUB_TEST_PG_URL``, 127.0.0.1:5432) is never touched: this one is
made by ``initdb`` in a temporary directory, listens on a free loopback port, and is removed
afterwards. ``initdb`` and ``pg_ctl`` refuse to run as root, so a root test runs them as the
``postgres`` OS user (``runuser``) in a directory it owns; any other user runs them as itself.

The binaries come from ``HUB_TEST_PG_BINDIR``, else ``pg_config --bindir``, else the newest
``/usr/lib/postgresql/*/bin``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

#: Settings for a throw-away cluster: loopback only, small, and no fsync (nothing here must
#: survive the machine; a server crash, ``pg_ctl stop -m immediate``, loses nothing without it:
#: WAL is still written at every commit). ``synchronous_commit`` stays on: off, a crash loses
#: commits the clients were told of (claims then come back and look like duplicates).
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "fsync": "off",
    "full_page_writes": "off",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] '",
}


class ClusterError(RuntimeError):
    """The private cluster could not be made, started or stopped (the server's log is attached)."""


def find_bindir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are (see the module docstring)."""
    configured = os.environ.get("HUB_TEST_PG_BINDIR")
    candidates: list[str] = [configured] if configured else []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            candidates.append(
                subprocess.run(
                    [pg_config, "--bindir"], capture_output=True, check=True, text=True
                ).stdout.strip()
            )
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    candidates.extend(versions)
    for candidate in candidates:
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    raise ClusterError(
        "no PostgreSQL server binaries (initdb, pg_ctl) found; set HUB_TEST_PG_BINDIR "
        f"(looked in: {', '.join(candidates) or 'nothing'})"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateCluster:
    """One PostgreSQL server of its own: :meth:`start`, :meth:`stop`, :meth:`crash`,
    :meth:`restart`, and :meth:`url` of a database on it.

    Use it as a context manager (``with PrivateCluster() as cluster:``): made and started on
    entry, stopped and removed on exit.
    """

    def __init__(self, *, bindir: Path | None = None, port: int | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.port = port or free_port()
        self._as_postgres = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="hub-pgcluster-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if self._as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)

    # --- the server ------------------------------------------------------------------------

    def _run(self, program: str, *args: str, timeout: float = 120) -> None:
        command = [str(self.bindir / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            output = f"{done.stdout}\n{done.stderr}\n{self.server_log()}"
            raise ClusterError(f"{program} {' '.join(args)} failed ({done.returncode}):\n{output}")

    def init(self) -> None:
        """``initdb``: a new cluster, trusting loopback connections (it is never reachable elsewhere)."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        settings = {**SERVER_SETTINGS, "port": str(self.port), "unix_socket_directories": f"'{self.root}'"}
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# tests/chaos/pgcluster.py\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop``: ``fast`` disconnects clients and shuts down cleanly; ``immediate`` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def crash(self) -> None:
        """Stop as a crash does: no checkpoint, clients cut, recovery at the next start."""
        self.stop("immediate")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def server_log(self, tail: int = 4000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-tail:]
        except OSError:
            return ""

    def remove(self) -> None:
        if self.running:
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivateCluster:
        try:
            self.init()
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # --- databases -------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg driver) of ``database`` on this server."""
        return URL.create(
            "postgresql+psycopg", username="postgres", host="127.0.0.1", port=self.port, database=database
        ).render_as_string(hide_password=False)

    def connect(self, database: str = "postgres", **options: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True, **options
        )

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """A new database (optionally a copy of ``template``); returns its URL."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        with self.connect() as admin:
            admin.execute(statement)
        return self.url(name)
