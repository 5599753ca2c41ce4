"""``hub worker`` and ``hub serve`` refuse, at start, a database that cannot work: one line, a
non-zero exit, no traceback (docs/delivery.md §13).

What cannot heal by waiting exits 2 at once (configuration error): a database that does not
exist, credentials refused, a read-only file, directory or server, a schema not migrated
(``test_cli_commands``). An unreachable server is tried 3 times over about 10 s, then the
process exits 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.conftest import _admin, _database_url
from tests.pgcluster import PrivatePostgres, free_port
from tests.read_only import read_only

HUB = str(Path(sys.executable).with_name("hub"))

COMMANDS = {
    "worker": ["worker"],
    "serve": ["serve", "--port", "0"],
    "serve-2-processes": ["serve", "--port", "0", "--processes", "2"],
}


def run_hub(
    args: list[str], database_url: str, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=database_url, HUB_DATA_DIR=str(cwd / "data"))
    return subprocess.run(
        [HUB, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def one_line(result: subprocess.CompletedProcess[str], status: int) -> str:
    """The process exited with ``status`` after writing exactly one line to stderr: that line."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def migrated_sqlite(request: pytest.FixtureRequest, directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    target = directory / "hub.db"
    shutil.copy(request.getfixturevalue("sqlite_template"), target)
    return target


@pytest.fixture(params=sorted(COMMANDS))
def command(request: pytest.FixtureRequest) -> list[str]:
    return COMMANDS[request.param]


def test_a_missing_sqlite_directory(command: list[str], tmp_path: Path) -> None:
    line = one_line(run_hub(command, f"sqlite:///{tmp_path / 'nowhere' / 'hub.db'}", tmp_path), 2)
    assert line.startswith("configuration error: SQLite database ")
    assert "does not exist" in line
    assert not (tmp_path / "nowhere").exists()  # nothing created on the way


def test_a_read_only_sqlite_file(command: list[str], request: pytest.FixtureRequest, tmp_path: Path) -> None:
    path = migrated_sqlite(request, tmp_path / "db")
    with read_only(path):
        line = one_line(run_hub(command, f"sqlite:///{path}", tmp_path), 2)
    assert "read-only" in line
    assert str(path) in line


def test_a_read_only_sqlite_directory(
    command: list[str], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path = migrated_sqlite(request, tmp_path / "db")
    with read_only(path.parent):
        line = one_line(run_hub(command, f"sqlite:///{path}", tmp_path), 2)
    assert "read-only" in line
    assert "-wal" in line  # why a directory must be writable


@pytest.mark.postgres
def test_a_postgresql_database_that_does_not_exist(command: list[str], tmp_path: Path) -> None:
    name = f"hub_missing_{uuid.uuid4().hex[:8]}"
    line = one_line(run_hub(command, _database_url(name), tmp_path), 2)
    assert f'database "{name}" does not exist' in line
    assert "hub db upgrade" in line


@pytest.mark.postgres
def test_credentials_the_server_refuses(command: list[str], tmp_path: Path) -> None:
    url = make_url(_database_url("test")).set(username=f"nobody_{uuid.uuid4().hex[:6]}")
    line = one_line(run_hub(command, url.render_as_string(hide_password=False), tmp_path), 2)
    assert "refused the credentials" in line
    assert "does not exist" in line  # the role


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_read_only_postgresql_database(database_url: str, tmp_path: Path) -> None:
    name = make_url(database_url).database
    with _admin() as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(sql.Identifier(name))
        )
    line = one_line(run_hub(["worker"], database_url, tmp_path), 2)
    assert line.startswith("configuration error: database is read-only: ")


@pytest.mark.slow
def test_an_unreachable_server_is_tried_three_times_then_refused(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    line = one_line(run_hub(["worker"], f"postgresql://postgres@127.0.0.1:{port}/hub", tmp_path), 1)
    assert line.startswith("error: database unreachable after 3 tries over ")
    assert "Connection refused" in line


@pytest.mark.slow
def test_a_server_that_comes_up_during_the_start_tries(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    """An orchestrator may start the hub and its database together: a server up within the
    tries is waited for, silently."""
    url = private_postgres.create_database("hub")
    private_postgres.stop()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=url)
    process = subprocess.Popen(
        [HUB, "worker"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1)  # the first try has failed by now; the second comes 3 s after it
        private_postgres.start()
        started = threading.Event()

        def watch() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                if "worker" in line and "started" in line:
                    started.set()
                    return

        threading.Thread(target=watch, daemon=True).start()
        assert started.wait(60), "the worker did not start once the server was up"
        assert process.poll() is None
    finally:
        process.terminate()
        process.communicate(timeout=60)
    assert process.returncode == 0
