"""The audit log page of the console over a real server, on both backends: filters, paging,
masking, before/after diff, exports (CSV, JSON Lines), the chain's status and a tampered row,
refusal for other roles (docs/console.md, docs/security.md §9)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from hub.audit.log import record
from hub.audit.verify import ChainMonitor
from hub.db.base import utcnow
from hub.db.models import AuditEntry
from hub.db.session import Database
from schemas.timefmt import VN_TZ
from tests.audit.tampering import tamper
from tests.console.support import add_account, browser, console_hub, login

CCCD = "001099012345"
PHONE = "0912345678"
ROW_ID = re.compile(r'<tr id="row-(\d+)"')


def shown(page: httpx.Response) -> list[int]:
    assert page.status_code == 200, page.text
    return [int(found) for found in ROW_ID.findall(page.text)]


def rows(db: Database, **where: str) -> list[AuditEntry]:
    with db.sessions() as session:
        query = select(AuditEntry).order_by(AuditEntry.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEntry, name) == value)
        return list(session.scalars(query))


def write(db: Database, **fields: object) -> int:
    with db.transaction() as session:
        return record(session, **fields).id  # type: ignore[arg-type]


def story(db: Database) -> dict[str, int]:
    """A few rows of different kinds, by name."""
    return {
        "retry": write(
            db,
            actor="kt.lan",
            action="dlq.retry",
            target="outbox:7",
            details={"previous_state": "dead", "reason": f"gọi lại {PHONE}"},
            before={"state": "dead"},
            after={"state": "pending"},
            client="10.0.0.5 Mozilla/5.0",
        ),
        "roles": write(
            db,
            actor="quan.tri",
            action="account.roles",
            target="hoa.nt",
            details={},
            before={"roles": ["clerk"]},
            after={"roles": ["clerk", "officer"]},
        ),
        "refused": write(
            db,
            actor="can.bo",
            action="signing.personal",
            target="sha256:" + "ab" * 32,
            details={"outcome": "refused", "dossier_code": "000.00.18.H42-251125-0001", "cccd": CCCD},
        ),
        "locked": write(db, actor="client:10.0.0.9", action="account.locked", target="can.bo", details={}),
        "reveal": write(
            db,
            actor="quan.tri",
            action="pii.reveal",
            target="000.00.18.H42-251125-0001",
            details={"kind": "dossier"},
        ),
    }


@contextmanager
def admin_reading(
    db: Database, database_url: str, tmp_path: Path
) -> Iterator[tuple[httpx.Client, dict[str, int]]]:
    """The console signed in as admin ``quan.tri``, with the :func:`story` rows written."""
    with console_hub(database_url, tmp_path / "d") as (hub, _clock), browser(hub) as client:
        add_account(hub, "quan.tri", "admin")
        ids = story(db)
        assert login(client, "quan.tri").status_code == 303
        yield client, ids


def test_filters_masking_and_diff(db: Database, database_url: str, tmp_path: Path) -> None:
    with admin_reading(db, database_url, tmp_path) as (client, ids):
        page = client.get("/console/audit")
        everything = shown(page)
        assert set(ids.values()) <= set(everything)
        assert everything == sorted(everything, reverse=True)  # newest first
        # the chain is verified on the page: every chained row so far
        assert "Chuỗi băm toàn vẹn" in page.text
        assert f"#{max(everything)}" in page.text
        # personal data masked wherever it is: details, before/after
        assert CCCD not in page.text
        assert PHONE not in page.text
        assert "091*****78" in page.text
        # before/after as a diff: the changed field marked, both values shown
        retry = page.text.split(f'<tr id="row-{ids["retry"]}"')[1].split('<tr id="row-')[0]
        assert 'class="changed"' in retry
        assert "<del>&#34;dead&#34;</del>" in retry
        assert "<ins>&#34;pending&#34;</ins>" in retry
        assert "10.0.0.5 Mozilla/5.0" in retry

        def only(**params: str) -> list[int]:
            return shown(client.get("/console/audit", params=params))

        assert only(actor="kt.lan") == [ids["retry"]]
        accounts = only(action="account.")
        assert {ids["locked"], ids["roles"]} <= set(accounts)
        assert ids["retry"] not in accounts
        assert only(target="hoa.nt") == [ids["roles"]]
        # a dossier: named as the target, or in the details of a signing row
        assert only(dossier="000.00.18.H42-251125-0001") == [ids["reveal"], ids["refused"]]
        assert only(outcome="failure") == [ids["locked"], ids["refused"]]
        assert ids["retry"] in only(outcome="success")
        assert ids["refused"] not in only(outcome="success")
        assert only(q="gọi lại") == [ids["retry"]]
        now = utcnow().astimezone(VN_TZ)
        later = (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
        earlier = (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
        assert only(since=later) == []
        assert set(only(since=earlier, until=later)) >= set(ids.values())
        assert only(actor="quan.tri", action="pii.") == [ids["reveal"]]
        bad = client.get("/console/audit", params={"since": "hôm qua"})
        assert bad.status_code == 422
        assert "Không phải ngày giờ hợp lệ" in bad.text
        assert client.get("/console/audit", params={"outcome": "maybe"}).status_code == 422
        for name in ("actor", "target", "dossier", "q", "action"):  # NUL: PostgreSQL cannot compare it
            assert client.get("/console/audit", params={name: "a\x00b"}).status_code == 422, name
        assert client.get("/console/audit/export", params={"actor": "a\x00"}).status_code == 422


def test_pages_of_fifty_keyed_on_the_id(db: Database, database_url: str, tmp_path: Path) -> None:
    with console_hub(database_url, tmp_path / "d") as (hub, _clock), browser(hub) as client:
        add_account(hub, "quan.tri", "admin")
        written = [
            write(db, actor="bulk", action="test.page", target=f"t{i}", details={}) for i in range(120)
        ]
        assert login(client, "quan.tri").status_code == 303
        seen: list[int] = []
        page = client.get("/console/audit", params={"actor": "bulk"})
        for _ in range(5):
            seen += shown(page)
            older = re.search(r'rel="next" href="([^"]+)"', page.text)
            if older is None:
                break
            page = client.get(older.group(1).replace("&amp;", "&"))
        assert seen == sorted(written, reverse=True)  # every row once, newest first, three pages
        assert "Trang 3" in page.text
        assert "Trang mới nhất" in page.text


def test_exports_follow_the_filter_masked_and_audited(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    with admin_reading(db, database_url, tmp_path) as (client, ids):
        page = client.get("/console/audit", params={"outcome": "failure"})
        link = re.search(r'href="(/console/audit/export\?[^"]*format=csv[^"]*)"', page.text)
        assert link is not None
        exported = client.get(link.group(1).replace("&amp;", "&"))
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        assert exported.headers["content-disposition"] == 'attachment; filename="audit.csv"'
        table = list(csv.DictReader(io.StringIO(exported.text)))
        assert [int(r["id"]) for r in table] == [ids["refused"], ids["locked"]]  # oldest first
        assert CCCD not in exported.text
        assert json.loads(table[0]["details"])["cccd"] == "*********345"
        lines = client.get(
            "/console/audit/export", params={"format": "jsonl", "dossier": "000.00.18.H42-251125-0001"}
        )
        assert lines.headers["content-type"].startswith("application/jsonl")
        objects = [json.loads(line) for line in lines.text.splitlines()]
        assert [o["id"] for o in objects] == [ids["refused"], ids["reveal"]]
        exports = rows(db, action="audit.export")
        assert [(e.actor, e.details["format"]) for e in exports] == [
            ("quan.tri", "csv"),
            ("quan.tri", "jsonl"),
        ]
        assert exports[0].details["filter"] == {"outcome": "failure"}
        assert client.get("/console/audit/export", params={"format": "xml"}).status_code == 422


@pytest.mark.parametrize("role", ["technician", "officer", "clerk"])
def test_other_roles_are_refused(database_url: str, tmp_path: Path, role: str) -> None:
    with console_hub(database_url, tmp_path / "d") as (hub, _clock), browser(hub) as client:
        add_account(hub, "someone", role)
        anonymous = client.get("/console/audit")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"].startswith("/console/login")
        assert login(client, "someone").status_code == 303
        for path in ("/console/audit", "/console/audit/export?format=csv"):
            refused = client.get(path)
            assert refused.status_code == 403
            assert "Không có quyền" in refused.text
        assert "/console/audit" not in client.get("/console/").text  # not in the nav or home
        assert rows(hub.db, action="audit.export") == []


def test_a_tampered_row_shows_as_broken(db: Database, database_url: str, tmp_path: Path) -> None:
    with admin_reading(db, database_url, tmp_path) as (client, ids):
        home = client.get("/console/")
        assert 'href="/console/audit"' in home.text  # the nav (and the home page) link to it
        tamper(db, f"UPDATE audit_log SET actor = 'someone-else' WHERE id = {ids['roles']}")
        page = client.get("/console/audit")
        assert f"Chuỗi băm bị phá vỡ tại dòng #{ids['roles']}" in page.text
        assert "nội dung đã bị sửa sau khi ghi" in page.text
        assert f"Đã kiểm tra đến dòng #{ids['retry']}" in page.text
        marked = re.findall(r'<tr id="row-(\d+)" class="broken"', page.text)
        assert marked == [str(ids["roles"])]
        english = client.get("/console/audit", params={"lang": "en"})
        assert f"Hash chain broken at row #{ids['roles']}" in english.text
        assert "its contents were changed" in english.text


def test_the_monitor_walks_new_rows_and_the_whole_chain_when_stale(db: Database) -> None:
    now = [0.0]
    monitor = ChainMonitor(full_every=300, clock=lambda: now[0])
    first = [write(db, actor="op", action="test.a", target=f"t{i}", details={}) for i in range(3)]
    report = monitor.status(db)
    assert report.ok
    assert (report.checked, report.last_id) == (3, first[-1])
    walked = monitor.full_walk_at
    later = [write(db, actor="op", action="test.b", target=f"u{i}", details={}) for i in range(2)]
    now[0] = 10
    report = monitor.status(db)
    assert (report.ok, report.checked, report.last_id) == (True, 5, later[-1])
    assert monitor.full_walk_at == walked  # only the new rows were walked
    tamper(db, f"UPDATE audit_log SET actor = 'eve' WHERE id = {first[0]}")
    now[0] = 20
    assert monitor.status(db).ok  # before the last walk's end: trusted until the next full walk
    now[0] = 301
    report = monitor.status(db)
    assert (report.ok, report.broken_at) == (False, first[0])
    assert monitor.status(db).broken_at == first[0]  # a broken chain is walked in full each time


def test_the_monitor_rechecks_the_row_it_resumes_from(db: Database) -> None:
    monitor = ChainMonitor(full_every=300, clock=lambda: 0.0)
    ids = [write(db, actor="op", action="test.a", target=f"t{i}", details={}) for i in range(3)]
    assert monitor.status(db).ok
    tamper(db, f"UPDATE audit_log SET target = 'other' WHERE id = {ids[-1]}")
    report = monitor.status(db)
    assert (report.ok, report.broken_at) == (False, ids[-1])
