"""The audit log's one writer, its hash chain and its append-only triggers, on both backends
(docs/security.md, "Audit log")."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DatabaseError

from hub.audit.context import acting_from
from hub.audit.log import record
from hub.audit.query import AuditFilter, export_csv, export_jsonl, list_entries
from hub.audit.verify import verify_chain
from hub.auth.keys import ApiKeyService
from hub.db.models import AuditEntry
from hub.db.session import Database
from hub.services.privacy import audit_reveal
from schemas.errors import InvalidInputError
from tests.audit.tampering import tamper

CCCD = "001099012345"


def _rows(db: Database) -> list[AuditEntry]:
    with db.sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def _write(db: Database, n: int, actor: str = "op") -> None:
    for i in range(n):
        with db.transaction() as session:
            record(
                session, actor=actor, action=f"test.{i % 3}", target=f"t{i}", details={"i": i, "cccd": CCCD}
            )


def test_writers_chain_with_client_and_before_after(db: Database) -> None:
    keys = ApiKeyService(db)
    with acting_from("203.0.113.7 curl/8.5"):
        keys.create("mot-cua", "source", actor="admin-1")
        keys.revoke("mot-cua", actor="admin-1")
        audit_reveal(db, actor="officer-1", kind="dossier", target="X-1", route="GET dossier")
    keys.audit_throttled("198.51.100.9", what="unknown key", path="/api/v1/dossiers")
    rows = _rows(db)
    assert [r.action for r in rows] == ["api_key.create", "api_key.revoke", "pii.reveal", "auth.throttled"]
    assert [r.client for r in rows[:3]] == ["203.0.113.7 curl/8.5"] * 3
    assert rows[3].client is None  # outside a request, nothing ambient (the address is the actor)
    assert rows[0].after == {
        "role": "source",
        "prefix": rows[0].details["prefix"],
        "agency_codes": [],
        "account": None,
    }
    assert rows[1].before == {"revoked_at": None}
    assert rows[1].after is not None
    assert rows[1].after["revoked_at"]
    assert rows[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    report = verify_chain(db)
    assert report.ok, report
    assert report.checked == 4
    assert report.last_hash == rows[-1].hash


def test_update_and_delete_are_refused(db: Database) -> None:
    _write(db, 2)
    for sql in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as connection:
            connection.exec_driver_sql(sql)
    if db.is_postgres:
        with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as connection:
            connection.exec_driver_sql("TRUNCATE audit_log")
    assert [r.actor for r in _rows(db)] == ["op", "op"]


@pytest.mark.parametrize(
    ("sql", "broken", "reason"),
    [
        ("UPDATE audit_log SET details = '{\"i\": 9}' WHERE id = ID2", 2, "contents changed"),
        ("UPDATE audit_log SET actor = 'eve' WHERE id = ID2", 2, "contents changed"),
        ("DELETE FROM audit_log WHERE id = ID2", 3, "does not link"),
        ("DELETE FROM audit_log WHERE id = ID4", None, "ends at row"),
        ("UPDATE audit_log SET hash = NULL WHERE id = ID2", 2, "unchained"),
    ],
)
def test_tampering_shows(db: Database, sql: str, broken: int | None, reason: str) -> None:
    _write(db, 4)
    ids = [r.id for r in _rows(db)]
    assert verify_chain(db).ok
    statement = sql.replace("ID2", str(ids[1])).replace("ID4", str(ids[3]))
    if db.is_postgres:
        statement = statement.replace("9}'", "9}'::jsonb")
    tamper(db, statement)
    report = verify_chain(db)
    assert not report.ok
    assert reason in report.reason
    if broken is not None:
        assert report.broken_at == ids[broken - 1]


def test_intake_events_stay_out_of_the_chain_but_a_forged_one_shows(db: Database) -> None:
    _write(db, 1)
    with db.transaction() as session:  # what intake writes (hub.services.intake._Unit.finish)
        session.add(AuditEntry(actor="src", action="dossier.upsert", target="X", details={}))
    _write(db, 1)
    assert verify_chain(db).ok
    with db.transaction() as session:
        session.add(AuditEntry(actor="eve", action="api_key.create", target="backdoor", details={}))
    report = verify_chain(db)
    assert not report.ok
    assert "unchained" in report.reason


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_appends_make_one_chain(db: Database) -> None:
    threads = [threading.Thread(target=_write, args=(db, 25, f"op{t}")) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = _rows(db)
    assert len(rows) == 200
    assert len({r.prev_hash for r in rows}) == 200  # no fork: every hash has one successor
    report = verify_chain(db)
    assert report.ok, report
    assert report.checked == 200


def test_filters_pagination_and_exports_mask_personal_data(db: Database) -> None:
    _write(db, 7, actor="op")
    _write(db, 2, actor="other")
    everything = AuditFilter()
    first = list_entries(db, everything, limit=4)
    second = list_entries(db, everything, cursor=first.next_cursor, limit=4)
    third = list_entries(db, everything, cursor=second.next_cursor, limit=4)
    ids = [e.id for page in (first, second, third) for e in page.items]
    assert ids == sorted((r.id for r in _rows(db)), reverse=True)
    assert third.next_cursor is None
    assert [e.actor for e in list_entries(db, AuditFilter(actor="other")).items] == ["other", "other"]
    assert {e.action for e in list_entries(db, AuditFilter(action="test.1")).items} == {"test.1"}
    assert [e.target for e in list_entries(db, AuditFilter(target="t3")).items] == ["t3"]
    assert len(list_entries(db, AuditFilter(action="test.%")).items) == 0  # a prefix, not a pattern
    assert len(list_entries(db, AuditFilter(text="345")).items) == 9
    rows = _rows(db)
    window = AuditFilter(since=rows[2].at, until=rows[4].at)
    assert [e.id for e in list_entries(db, window).items] == [rows[3].id, rows[2].id]
    with pytest.raises(InvalidInputError):
        list_entries(db, AuditFilter(since=rows[0].at.replace(tzinfo=None)))
    page = list_entries(db, everything, limit=1).items[0]
    assert page.details["cccd"] != CCCD
    assert page.details["cccd"].endswith("345")
    jsonl = "".join(export_jsonl(db, AuditFilter(actor="op")))
    csv_text = "".join(export_csv(db, AuditFilter(actor="op")))
    assert CCCD not in jsonl
    assert CCCD not in csv_text
    assert len(jsonl.splitlines()) == 7
    assert csv_text.splitlines()[0].startswith("id,at,actor,action,client,target,details")
    assert len(csv_text.splitlines()) == 8


def test_csv_cells_that_look_like_formulas_are_defused(db: Database) -> None:
    with db.transaction() as session:
        record(session, actor='=HYPERLINK("http://x")', action="test.csv", target="+1", details={})
    line = "".join(export_csv(db, AuditFilter())).splitlines()[1]
    assert "'=HYPERLINK" in line
    assert ",'+1," in line


def test_migration_chains_the_rows_written_before_it(tmp_path: Path) -> None:
    from hub.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0006")
    db = Database.connect(url)
    try:
        with db.engine.begin() as connection:
            for i, action in enumerate(("api_key.create", "dossier.upsert", "dlq.retry")):
                connection.exec_driver_sql(
                    "INSERT INTO audit_log (at, actor, action, target, details) "
                    f"VALUES ('2025-01-0{i + 1} 08:00:00.000000', 'op', '{action}', 't', '{{\"n\": {i}}}')"
                )
        upgrade(url)
        rows = _rows(db)
        assert [r.hash is not None for r in rows] == [True, False, True]
        assert rows[2].prev_hash == rows[0].hash
        assert verify_chain(db).ok
        with db.transaction() as session:
            record(session, actor="op", action="test.after", target="t")
        assert verify_chain(db).checked == 3
    finally:
        db.dispose()
