"""The usage report (Decision 692/QĐ-SNN Art. 18; docs/reports.md §8): a crafted period with
known dossiers, deliveries, dead letters, signatures, lookups made through the live API and an
outage → exact figures in JSON, CSV and XLSX, from the API and ``hub report usage``."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import unicodedata
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import update
from typer.testing import CliRunner

from hub.commands.report import app as report_app
from hub.db.models import MessageState, OutboxMessage
from hub.db.session import Database
from hub.reports.usage_export import SECTIONS
from hub.services.outages import OutageKind, add_outage
from hub.services.signing_authority import SigningAttempt, SigningAudit
from schemas.dossier import Channel
from schemas.status import DossierStatus as S
from schemas.timefmt import VN_TZ, now_vn
from signing.settings import KeyPurpose
from tests.api.livehub import LiveHub, dossier_json, live_hub
from tests.delivery.helpers import put
from tests.reports.support import dossier
from tests.reports.test_report_sql import _store

URL = "/api/v1/reports/usage"
CODE = "000.00.18.H42-251125-0001"
OWNER_ID = "001099012345"
TODAY = now_vn().date()
#: The period: three weeks up to tomorrow (lookups and audit rows are counted at the real time).
FIRST, LAST = TODAY - timedelta(days=20), TODAY + timedelta(days=1)
PARAMS = {"from": FIRST.isoformat(), "to": LAST.isoformat()}
D = datetime.combine(TODAY - timedelta(days=10), datetime.min.time(), VN_TZ).replace(hour=9)
BEFORE = D - timedelta(days=40)


@pytest.fixture
def hub(database_url: str, tmp_path: Path) -> Iterator[LiveHub]:
    lookup = {"failed_attempts_per_code_per_hour": 2}
    with live_hub(database_url, tmp_path / "data", lookup=lookup) as running:
        yield running


def _message(
    db: Database, endpoint: str, n: int, created: datetime, state: MessageState, **values: Any
) -> None:
    seq = put(db, endpoint, f"D-{endpoint}-{n}")
    with db.transaction() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.seq == seq)
            .values(state=state.value, created_at=created, **values)
        )


def _deliveries(db: Database) -> None:
    """portal-a: 3 delivered (10, 30, 20 s; one after 3 attempts), 1 dead after 5, 1 discarded after a
    retry; portal-b: 20 delivered in 1..20 s, and one queued before the period."""
    delivered = MessageState.DELIVERED
    for n, (seconds, attempts) in enumerate([(10, 1), (30, 3), (20, 1)]):
        created = D + timedelta(hours=n)
        _message(
            db,
            "portal-a",
            n,
            created,
            delivered,
            attempts=attempts,
            delivered_at=created + timedelta(seconds=seconds),
        )
    _message(db, "portal-a", 3, D, MessageState.DEAD, attempts=5, dead_at=D + timedelta(hours=1))
    _message(db, "portal-a", 4, D, MessageState.DISCARDED, attempts=2)
    for n in range(20):
        created = D + timedelta(minutes=n)
        _message(
            db,
            "portal-b",
            n,
            created,
            delivered,
            attempts=1,
            delivered_at=created + timedelta(seconds=20 - n),
        )
    _message(db, "portal-b", 99, BEFORE, delivered, attempts=1, delivered_at=BEFORE + timedelta(seconds=5))


def _signatures(db: Database) -> None:
    audit = SigningAudit(db)
    for n, (path, purpose, outcome) in enumerate(
        [
            ("documents", KeyPurpose.PERSONAL, "signed"),
            ("documents", KeyPurpose.PERSONAL, "signed"),
            ("results.seal", KeyPurpose.SEAL, "signed"),
            ("documents", KeyPurpose.PERSONAL, "refused"),
            ("external.prepare", KeyPurpose.PERSONAL, "prepared"),
        ]
    ):
        attempt = SigningAttempt("test-officer", path, f"key-{purpose.value}", f"{n:064x}", purpose)
        audit.record(attempt, outcome)  # type: ignore[arg-type]


def _lookups(hub: LiveHub) -> None:
    """api: 1 found, 2 not found, 1 limited; web: 1 found; qr: 1 opened; sms: 1 found, 1 not
    found, 1 invalid."""
    with hub.client("source") as client:
        assert client.post("/api/v1/dossiers", json={"dossier": dossier_json()}).status_code == 201
    with hub.client() as client:
        assert client.get(f"/api/v1/lookup/{CODE}", params={"id_number": OWNER_ID}).status_code == 200
        assert client.get("/tra-cuu", params={"MHS": CODE, "SGT": OWNER_ID}).status_code == 200
        assert client.get("/tra-cuu", params={"MHS": CODE}).status_code == 200
        other = "000.00.18.H42-251125-0009"
        wrong = [
            client.get(f"/api/v1/lookup/{other}", params={"id_number": "1"}).status_code for _ in range(3)
        ]
        assert wrong == [404, 404, 429]
    with hub.client("portal") as client:
        for body, kind in [
            (f"HS {CODE}", "processing"),
            ("HS 000.00.18.H42-251125-0777", "unknown_code"),
            ("XIN CHAO", "syntax_error"),
        ]:
            answer = client.post("/api/v1/sms/inbound", json={"src": "0912345678", "msgbody": body})
            assert answer.json()["kind"] == kind


def _outage(db: Database) -> None:
    add_outage(
        db,
        OutageKind.DEPARTMENT,
        D - timedelta(hours=1),
        D + timedelta(hours=1, minutes=30),
        "mất điện",
        "tests",
    )
    # before the period: not counted
    add_outage(db, OutageKind.DATABASE, BEFORE, BEFORE + timedelta(hours=1), "bảo trì", "tests")


def _crafted(hub: LiveHub) -> None:
    _store(
        hub.db,
        [
            dossier(1, D, D + timedelta(days=5), [(S.FINISHED, D + timedelta(days=1))]),
            dossier(2, D, D + timedelta(days=5), channel=Channel.ONLINE),
            dossier(3, D + timedelta(hours=1), D + timedelta(days=5), channel=Channel.ONLINE),
            # received before the period, ended in it
            dossier(4, BEFORE, D, [(S.REFUSED, D)], channel=Channel.POSTAL),
        ],
    )
    _deliveries(hub.db)
    _signatures(hub.db)
    _lookups(hub)
    _outage(hub.db)


EXPECTED_DOSSIERS = [
    {"channel": 1, "label": "Trực tiếp", "received": 1, "ended": 1},
    {"channel": 2, "label": "Trực tuyến", "received": 2, "ended": 0},
    {"channel": 3, "label": "Bưu chính công ích", "received": 0, "ended": 1},
]


def _endpoint(name: str, queued: int, **counts: Any) -> dict[str, Any]:
    row = {
        "endpoint": name,
        "queued": queued,
        "delivered": 0,
        "retried": 0,
        "dead": 0,
        "discarded": 0,
        "waiting": 0,
        "median_seconds": None,
        "p95_seconds": None,
    }
    return {**row, **counts}


EXPECTED_DELIVERIES = [
    # the dossier the lookups use, posted now: routed to both portals, no worker running
    _endpoint("dvcqg", 1, waiting=1),
    _endpoint("lgsp", 1, waiting=1),
    _endpoint(
        "portal-a", 5, delivered=3, retried=3, dead=1, discarded=1, median_seconds=20.0, p95_seconds=30.0
    ),
    _endpoint("portal-b", 20, delivered=20, median_seconds=10.0, p95_seconds=19.0),
]
EXPECTED_SIGNATURES = [
    {"purpose": "personal", "path": "documents", "signed": 2},
    {"purpose": "seal", "path": "results.seal", "signed": 1},
]
EXPECTED_LOOKUPS = [
    {"channel": "api", "outcome": "found", "count": 1},
    {"channel": "api", "outcome": "limited", "count": 1},
    {"channel": "api", "outcome": "not_found", "count": 2},
    {"channel": "qr", "outcome": "opened", "count": 1},
    {"channel": "sms", "outcome": "found", "count": 1},
    {"channel": "sms", "outcome": "invalid", "count": 1},
    {"channel": "sms", "outcome": "not_found", "count": 1},
    {"channel": "web", "outcome": "found", "count": 1},
]
EXPECTED_DOWNTIME = [
    {"kind": "database", "outages": 0, "seconds": 0.0},
    {"kind": "hub", "outages": 0, "seconds": 0.0},
    {"kind": "department", "outages": 1, "seconds": 9000.0},
]
#: Each section's expected rows, by the report's field name.
EXPECTED = {
    "dossiers": EXPECTED_DOSSIERS,
    "deliveries": EXPECTED_DELIVERIES,
    "signatures": EXPECTED_SIGNATURES,
    "lookups": EXPECTED_LOOKUPS,
    "downtime": EXPECTED_DOWNTIME,
}


def _check(body: dict[str, Any]) -> None:
    assert (body["from"], body["to"]) == (FIRST.isoformat(), LAST.isoformat())
    assert body["dossiers"] == EXPECTED_DOSSIERS
    assert body["deliveries"] == EXPECTED_DELIVERIES
    assert body["signatures"] == EXPECTED_SIGNATURES
    assert body["lookups"] == EXPECTED_LOOKUPS
    assert body["downtime"] == EXPECTED_DOWNTIME


def _cells(rows: list[dict[str, Any]], section: str) -> list[list[Any]]:
    columns = next(s for s in SECTIONS if s.field == section).columns
    return [[row[name] for name in columns] for row in rows]


def test_exact_figures_in_json_csv_and_xlsx(hub: LiveHub) -> None:
    _crafted(hub)
    with hub.client("officer") as client:
        answer = client.get(URL, params=PARAMS)
        as_csv = client.get(URL, params={**PARAMS, "format": "csv"})
        as_xlsx = client.get(URL, params={**PARAMS, "format": "xlsx"})
    assert answer.status_code == 200, answer.text
    _check(answer.json())

    assert as_csv.headers["content-type"].startswith("text/csv")
    assert f'filename="usage-{FIRST:%Y%m%d}-{LAST:%Y%m%d}.csv"' in as_csv.headers["content-disposition"]
    assert as_csv.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert lines[0][0].startswith("Báo cáo tình hình sử dụng hệ thống, từ ")
    for section in SECTIONS:
        start = lines.index([section.title])
        assert lines[start + 1] == list(section.columns.values())
        rows = EXPECTED[section.field]
        got = lines[start + 2 : start + 2 + len(rows)]
        assert got == [["" if v is None else str(v) for v in line] for line in _cells(rows, section.field)]
        assert lines[start + 2 + len(rows)] == []

    book = load_workbook(io.BytesIO(as_xlsx.content))
    assert book.sheetnames == [section.sheet for section in SECTIONS]
    for section in SECTIONS:
        sheet = book[section.sheet]
        assert [cell.value for cell in sheet[3]] == list(section.columns.values())
        values = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=4)]
        assert values == _cells(EXPECTED[section.field], section.field)


def test_pdf_has_every_section_and_figure(hub: LiveHub) -> None:
    """The usage report in the on-time report's formats (issue: JSON, CSV, XLSX and PDF): each
    section's title and every figure of its rows, in Vietnamese text that extracts as NFC."""
    _crafted(hub)
    with hub.client("officer") as client:
        as_pdf = client.get(URL, params={**PARAMS, "format": "pdf"})
    assert as_pdf.status_code == 200, as_pdf.text
    assert as_pdf.headers["content-type"] == "application/pdf"
    assert f'filename="usage-{FIRST:%Y%m%d}-{LAST:%Y%m%d}.pdf"' in as_pdf.headers["content-disposition"]
    out = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=as_pdf.content, capture_output=True, check=True
    )
    text = out.stdout.decode()
    assert unicodedata.is_normalized("NFC", text)
    assert "BÁO CÁO TÌNH HÌNH SỬ DỤNG HỆ THỐNG" in text
    lines = [" ".join(line.split()) for line in text.splitlines()]
    for section in SECTIONS:
        assert section.title in lines, section.title
        for row in _cells(EXPECTED[section.field], section.field):
            # the figures of a row stand on one line, in the column order of the CSV
            figures = " ".join(str(v) for v in row[1:] if v is not None and not isinstance(v, str))
            assert figures, row
            first = str(row[0])
            assert any(line.startswith(first) and line.endswith(figures) for line in lines), (
                section.field,
                row,
            )


def test_cli(hub: LiveHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _crafted(hub)
    monkeypatch.setenv("HUB_DATABASE_URL", hub.settings.database_url)
    runner = CliRunner()
    dates = ["--from", FIRST.isoformat(), "--to", LAST.isoformat()]
    as_json = runner.invoke(report_app, ["usage", *dates, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    _check(json.loads(as_json.stdout))
    table = runner.invoke(report_app, ["usage", *dates])
    assert table.exit_code == 0, table.output
    assert "portal-a" in table.output
    assert "Tra cứu đã trả lời" in table.output
    out = tmp_path / "usage.xlsx"
    written = runner.invoke(report_app, ["usage", *dates, "--format", "xlsx", "--out", str(out)])
    assert written.exit_code == 0, written.output
    sheet = load_workbook(out)["Đồng bộ"]
    assert [cell.value for cell in sheet[sheet.max_row]][:3] == ["portal-b", 20, 20]
    pdf = tmp_path / "usage.pdf"
    written = runner.invoke(report_app, ["usage", *dates, "--format", "pdf", "--out", str(pdf)])
    assert written.exit_code == 0, written.output
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert runner.invoke(report_app, ["usage", *dates, "--format", "pdf"]).exit_code == 2  # no --out
    assert runner.invoke(report_app, ["usage", "--period", "2026-13"]).exit_code != 0


# Roles and bad parameters: tests/api/test_api_reports.py (with the on-time report's).
