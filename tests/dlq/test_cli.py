"""``hub dlq`` commands against a real database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.commands.dlq import app
from hub.db.session import Database

from .test_service import audit, kill, message, put

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    monkeypatch.delenv("HUB_CONFIG_FILE", raising=False)


def test_list_show_edit_discard(db: Database, tmp_path: Path) -> None:
    seqs = [put(db, "portal", f"D{i}", {"n": i}) for i in range(3)]
    kill(db, *seqs)
    listed = runner.invoke(app, ["list", "--endpoint", "portal"])
    assert listed.exit_code == 0, listed.output
    assert "3 matching" in listed.output
    shown = runner.invoke(app, ["show", str(seqs[0]), "--json"])
    assert json.loads(shown.output)["attempt_log"][0]["outcome"] == "dead"

    new_payload = tmp_path / "p.json"
    new_payload.write_text('{"n": 100}', encoding="utf-8")
    edited = runner.invoke(
        app, ["edit", str(seqs[0]), "--payload-file", str(new_payload), "--reason", "fix", "--actor", "ops"]
    )
    assert edited.exit_code == 0, edited.output
    assert message(db, seqs[0]).payload == {"n": 100}
    broken = runner.invoke(app, ["edit", str(seqs[1]), "--payload", "{not json"])
    assert broken.exit_code != 0
    assert message(db, seqs[1]).payload == {"n": 1}

    discarded = runner.invoke(app, ["discard", str(seqs[1]), "--reason", "duplicate", "--actor", "ops"])
    assert discarded.exit_code == 0, discarded.output
    assert message(db, seqs[1]).state == "discarded"
    assert [(e.actor, e.action) for e in audit(db)] == [("ops", "dlq.edit"), ("ops", "dlq.discard")]


def test_bulk_retry_and_jobs(db: Database) -> None:
    seqs = [put(db, "portal", f"D{i}") for i in range(4)]
    kill(db, *seqs)
    result = runner.invoke(app, ["retry", "--all", "--endpoint", "portal", "--wait"])
    assert result.exit_code == 0, result.output
    assert "done 4/4" in result.output
    assert all(message(db, seq).state == "pending" for seq in seqs)
    jobs = runner.invoke(app, ["jobs"])
    assert "retry done 4/4" in jobs.output


def test_mounted_in_the_hub_cli(db: Database) -> None:
    from hub.cli import build_cli

    cli = build_cli()
    help_text = runner.invoke(cli, ["worker", "--help"])
    assert help_text.exit_code == 0, help_text.output
    assert "--concurrency" in help_text.output
    listed = runner.invoke(cli, ["dlq", "list", "--state", "blocked"])
    assert listed.exit_code == 0, listed.output
    assert "0 matching" in listed.output


def test_reason_is_mandatory_for_discard(db: Database) -> None:
    seq = put(db, "portal", "D1")
    kill(db, seq)
    result = runner.invoke(app, ["discard", str(seq)])
    assert result.exit_code != 0
    assert message(db, seq).state == "dead"


def test_show_masks_personal_data_unless_revealed(db: Database) -> None:
    payload = {
        "dossier": {"owner": {"name": "Nguyễn Văn An", "id_number": "037099001234"}},
        "contact": {"phone": "0912345678"},
    }
    seq = put(db, "portal", "D1", payload)
    kill(db, seq)
    for args in (["show", str(seq)], ["show", str(seq), "--json"]):
        shown = runner.invoke(app, args)
        assert shown.exit_code == 0, shown.output
        assert "037099001234" not in shown.output
        assert "0912345678" not in shown.output
        assert "Nguyễn Văn An" in shown.output
    revealed = runner.invoke(app, ["show", str(seq), "--json", "--reveal"])
    assert json.loads(revealed.output)["payload"] == payload


def test_bulk_discard_takes_the_filter_options(db: Database) -> None:
    """--dossier and --error-class reach the filter: only the matching dead messages go."""
    kept, by_dossier, by_error = put(db, "portal", "D1"), put(db, "portal", "D2"), put(db, "portal", "D3")
    kill(db, kept, by_dossier)
    kill(db, by_error, error_class="SoapFaultError")
    for option, value in (("--dossier", "D2"), ("--error-class", "SoapFaultError")):
        result = runner.invoke(app, ["discard", "--all", option, value, "--reason", "sent twice", "--wait"])
        assert result.exit_code == 0, result.output
        assert "done 1/1" in result.output
    assert [message(db, seq).state for seq in (kept, by_dossier, by_error)] == [
        "dead",
        "discarded",
        "discarded",
    ]
    neither = runner.invoke(app, ["retry"])
    assert neither.exit_code != 0
    assert "give a message number or --all" in neither.output
