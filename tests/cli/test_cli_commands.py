"""The ``hub`` console script, run as a subprocess like an operator would."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.auth.keys import ApiKeyService, hash_token
from hub.db.models import ApiKey, AuditEntry
from hub.db.session import Database

HUB = str(Path(sys.executable).with_name("hub"))


def run(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUB, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=input_text,
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(extra)
    return env


def hub_env(database_url: str, directory: Path, **extra: str) -> dict[str, str]:
    """:func:`clean_env` for a hub process on ``database_url`` keeping its files in ``directory/data``."""
    return clean_env(HUB_DATABASE_URL=database_url, HUB_DATA_DIR=str(directory / "data"), **extra)


def test_db_upgrade_and_keys_lifecycle(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = clean_env(HUB_DATABASE_URL=url)
    upgraded = run(["db", "upgrade"], env, tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database at head" in upgraded.stdout

    created = run(["keys", "create", "--name", "phan-mem-mot-cua", "--role", "source"], env, tmp_path)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("hub_")
    db = Database.connect(url)
    try:
        principal = ApiKeyService(db).authenticate(token)
        assert principal is not None
        assert principal.role.value == "source"
        with db.sessions() as session:
            row = session.scalar(select(ApiKey).where(ApiKey.name == "phan-mem-mot-cua"))
            assert row is not None
            assert row.key_hash == hash_token(token)

        listed = run(["keys", "list"], env, tmp_path)
        assert "phan-mem-mot-cua" in listed.stdout
        assert token not in listed.stdout
        assert "active" in listed.stdout

        duplicate = run(["keys", "create", "--name", "phan-mem-mot-cua", "--role", "admin"], env, tmp_path)
        assert duplicate.returncode == 1
        assert "already exists" in duplicate.stderr
        assert "Traceback" not in duplicate.stderr

        revoked = run(["keys", "revoke", "phan-mem-mot-cua"], env, tmp_path)
        assert revoked.returncode == 0
        assert ApiKeyService(db).authenticate(token) is None
        with db.sessions() as session:
            actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions == ["api_key.create", "api_key.revoke"]
    finally:
        db.dispose()


def test_db_upgrade_on_postgresql(database_url: str, tmp_path: Path) -> None:
    result = run(["db", "upgrade"], clean_env(HUB_DATABASE_URL=database_url), tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"HUB_API__PORT": "not-a-port"}, "api.port"),
        ({"HUB_LOG_LEVEL": "LOUD"}, "log_level"),
        ({"HUB_CONFIG_FILE": "/nonexistent/hub.toml"}, "does not exist"),
    ],
)
def test_configuration_errors_exit_2_without_traceback(
    tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    result = run(["db", "upgrade"], clean_env(**env), tmp_path)
    assert result.returncode == 2
    assert "configuration error" in result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_role_and_unknown_command(tmp_path: Path) -> None:
    env = clean_env(HUB_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    assert run(["db", "upgrade"], env, tmp_path).returncode == 0
    bad_role = run(["keys", "create", "--name", "x", "--role", "root"], env, tmp_path)
    assert bad_role.returncode == 1
    assert "unknown role" in bad_role.stderr
    unknown = run(["no-such-command"], env, tmp_path)
    assert unknown.returncode == 2
    assert "Traceback" not in unknown.stderr


def test_help_lists_own_commands(tmp_path: Path) -> None:
    result = run(["--help"], clean_env(), tmp_path)
    assert result.returncode == 0
    for command in ("serve", "db", "keys", "demo"):
        assert command in result.stdout


def test_demo_refuses_a_foreign_directory(tmp_path: Path) -> None:
    foreign = tmp_path / "not-demo"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    result = run(["demo", "--dir", str(foreign), "--port", "0", "--exit"], clean_env(), tmp_path)
    assert result.returncode == 2
    assert (foreign / "precious.txt").read_text() == "keep me"


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = clean_env(HUB_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}", HUB_API__PORT="0")
    result = run(["serve", "--no-worker"], env, tmp_path, timeout=60)
    assert result.returncode == 2
    assert "run 'hub db upgrade' first" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = clean_env(HUB_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    result = run(["worker"], env, tmp_path, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one clear line, no traceback
    assert lines[0].startswith("configuration error: database schema is at empty, expected ")
    assert lines[0].endswith("run 'hub db upgrade' first")


def test_worker_refuses_a_database_behind_the_migrations(database_url: str, tmp_path: Path) -> None:
    from hub.db.migrate import downgrade

    downgrade(database_url, "0002")
    result = run(["worker"], clean_env(HUB_DATABASE_URL=database_url), tmp_path, timeout=60)
    assert result.returncode == 2
    assert "database schema is at 0002" in result.stderr
    assert "run 'hub db upgrade' first" in result.stderr
    assert "Traceback" not in result.stderr


HEAVY_MODULES = ("pyhanko", "zeep", "aiohttp")


def imports_of(args: list[str], modules: tuple[str, ...], cwd: Path) -> tuple[str, list[str]]:
    """Run ``hub.cli.main(args)`` in a fresh interpreter: its output, and which of ``modules``
    it imported."""
    probe = (
        "import json, sys\n"
        "from hub.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        f"print(json.dumps([m for m in {modules!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=clean_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--help"], ["keys", "list", "--help"], ["db", "upgrade", "--help"]])
def test_light_commands_do_not_import_the_heavy_libraries(tmp_path: Path, args: list[str]) -> None:
    """Signing (pyHanko), SOAP (zeep) and the delivery transport (aiohttp) are imported only by
    the commands that use them."""
    output, imported = imports_of(args, HEAVY_MODULES, tmp_path)
    assert "Usage" in output
    assert imported == []


def test_a_mounted_command_imports_what_it_needs(tmp_path: Path) -> None:
    output, imported = imports_of(["worker", "--help"], ("aiohttp",), tmp_path)
    assert "--concurrency" in output
    assert imported == ["aiohttp"]


def test_serve_on_a_port_in_use_is_a_configuration_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(HUB_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
        result = run(["serve", "--port", str(port)], env, tmp_path, timeout=60)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
