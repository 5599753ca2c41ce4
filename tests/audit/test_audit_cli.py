"""``hub audit verify|list|export`` as an operator runs them; CLI actions name ``cli:<user>@<host>``."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path

from sqlalchemy import select

from hub.db.models import AuditEntry
from hub.db.session import Database
from tests.audit.tampering import tamper
from tests.cli.test_cli_commands import clean_env, run


def test_verify_passes_then_reports_tampering(database_url: str, tmp_path: Path) -> None:
    env = clean_env(HUB_DATABASE_URL=database_url)
    assert run(["keys", "create", "--name", "k-1", "--role", "source"], env, tmp_path).returncode == 0
    assert run(["keys", "revoke", "k-1"], env, tmp_path).returncode == 0
    db = Database.connect(database_url)
    try:
        with db.sessions() as session:
            clients = session.scalars(select(AuditEntry.client).order_by(AuditEntry.id)).all()
        assert clients == [f"cli:{getpass.getuser()}@{socket.gethostname()}"] * 2
        ok = run(["audit", "verify"], env, tmp_path)
        assert ok.returncode == 0, ok.stderr
        assert "intact: 2 rows" in ok.stdout
        listed = run(["audit", "list", "--action", "api_key."], env, tmp_path)
        assert listed.stdout.count("api_key.") == 2
        exported = run(["audit", "export", "--format", "csv"], env, tmp_path)
        assert exported.returncode == 0
        assert len(exported.stdout.splitlines()) == 3
        revokes = run(["audit", "export", "--action", "api_key.revoke", "--target", "k-1"], env, tmp_path)
        assert [line.count('"api_key.revoke"') for line in revokes.stdout.splitlines()] == [1]
        tamper(db, "UPDATE audit_log SET target = 'other' WHERE action = 'api_key.create'")
        broken = run(["audit", "verify"], env, tmp_path)
        assert broken.returncode == 1
        assert "BROKEN at row" in broken.stderr
        assert "contents changed" in broken.stderr
    finally:
        db.dispose()
