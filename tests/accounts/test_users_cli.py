"""``hub users`` run as a subprocess, as an operator would."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from hub.db.account_tables import UserAccount
from hub.db.models import AuditEntry
from hub.db.session import Database
from tests.accounts.support import OTHER_PASSWORD, PASSWORD
from tests.cli.test_cli_commands import clean_env, run


def _env(tmp_path: Path) -> tuple[str, dict[str, str]]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = clean_env(
        HUB_DATABASE_URL=url,
        HUB_CONSOLE__ARGON2_MEMORY_KIB="1024",
        HUB_CONSOLE__ARGON2_TIME_COST="1",
        HUB_CONSOLE__ARGON2_PARALLELISM="1",
        NEW_PASSWORD=PASSWORD,
    )
    assert run(["db", "upgrade"], env, tmp_path).returncode == 0
    return url, env


def test_create_admin_once_then_manage_accounts(tmp_path: Path) -> None:
    url, env = _env(tmp_path)
    admin = ["users", "create-admin", "--username", "root", "--display-name", "Quản trị viên"]
    first = run([*admin, "--password-env", "NEW_PASSWORD"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "created admin account 'root'" in first.stdout
    (tmp_path / "pw").write_text(OTHER_PASSWORD + "\n", "utf-8")
    again = run(
        ["users", "create-admin", "--username", "root2", "--display-name", "X", "--password-file", "pw"],
        env,
        tmp_path,
    )
    assert again.returncode == 1
    assert "admin account exists already" in again.stderr

    weak = run(
        [
            "users",
            "create",
            "--username",
            "lan",
            "--display-name",
            "Lan",
            "--role",
            "officer",
            "--password-env",
            "WEAK",
        ],
        {**env, "WEAK": "password1234"},
        tmp_path,
    )
    assert weak.returncode == 1
    assert "too common" in weak.stderr
    created = run(
        [
            "users",
            "create",
            "--username",
            "lan",
            "--display-name",
            "Nguyễn Thị Lan",
            "--role",
            "officer",
            "--role",
            "clerk",
            "--unit",
            "Văn phòng",
            "--password-file",
            "-",
        ],
        env,
        tmp_path,
        input_text=OTHER_PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr
    assert run(["users", "set-roles", "lan", "--role", "technician"], env, tmp_path).returncode == 0
    assert run(["users", "disable", "lan"], env, tmp_path).returncode == 0
    last_admin = run(["users", "disable", "root"], env, tmp_path)
    assert last_admin.returncode == 1
    assert "last active admin" in last_admin.stderr
    listed = run(["users", "list"], env, tmp_path)
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert any(line.startswith("lan ") and "technician" in line and "disabled" in line for line in lines)
    assert any(line.startswith("root ") and "admin" in line and "active" in line for line in lines)
    assert PASSWORD not in listed.stdout
    assert (
        run(["users", "reset-password", "lan", "--password-env", "NEW_PASSWORD"], env, tmp_path).returncode
        == 0
    )

    db = Database.connect(url)
    try:
        with db.sessions() as session:
            hashes = list(session.scalars(select(UserAccount.password_hash)))
            actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.target == "lan")))
            actors = set(session.scalars(select(AuditEntry.actor).where(AuditEntry.target == "lan")))
    finally:
        db.dispose()
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert not any(PASSWORD in h or OTHER_PASSWORD in h for h in hashes)
    assert actions == ["account.create", "account.roles", "account.disable", "account.password_reset"]
    assert len(actors) == 1
    assert next(iter(actors)).startswith("cli:")


def test_oidc_unlink(tmp_path: Path) -> None:
    url, env = _env(tmp_path)
    create = ["users", "create", "--username", "lan", "--display-name", "Lan", "--role", "officer"]
    made = run([*create, "--password-env", "NEW_PASSWORD"], env, tmp_path)
    assert made.returncode == 0, made.stderr
    db = Database.connect(url)
    try:
        with db.transaction() as session:
            row = session.scalar(select(UserAccount).where(UserAccount.username == "lan"))
            assert row is not None
            row.oidc_issuer, row.oidc_subject = "https://sso.example.gov.vn", "sub-1"
        unlinked = run(["users", "oidc-unlink", "lan"], env, tmp_path)
        assert unlinked.returncode == 0, unlinked.stderr
        assert "OIDC link removed from" in unlinked.stdout
        with db.sessions() as session:
            row = session.scalar(select(UserAccount).where(UserAccount.username == "lan"))
            assert row is not None
            assert row.oidc_subject is None
            assert session.scalar(select(AuditEntry.action).order_by(AuditEntry.id.desc())) == (
                "account.oidc_unlink"
            )
    finally:
        db.dispose()
