"""The console's report pages over a real server on loopback, on both backends: the figures
are the report service's, the filters and downloads apply, wrong roles and bad parameters are
refused with a page (docs/console.md, docs/reports.md §9)."""

from __future__ import annotations

import html
import io
import re
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import insert

from hub.db.models import DossierRow
from hub.db.session import Database
from hub.reports.projection import rebuild
from hub.reports.query import GroupBy, ReportFilter, day_range
from hub.reports.service import ReportService
from schemas.dossier import Channel
from tests.accounts.support import FAST
from tests.api.livehub import live_hub
from tests.console.support import add_account, browser, login
from tests.reports.support import dossier_rows, generate

NOW = datetime.fromisoformat("2026-12-01T10:00:00+07:00")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _store(db: Database) -> None:
    dossiers = generate(400, 2025, seed=5)
    with db.transaction() as session:
        session.execute(insert(DossierRow), dossier_rows(dossiers))
        rebuild(session.connection(), batch=256)


def _cells(text: str, table: str) -> dict[str, str]:
    found = re.search(rf'<table id="{table}"[^>]*>(.*?)</table>', text, re.S)
    assert found is not None, text
    return dict(re.findall(r'data-field="([a-z_]+)">([^<]*)<', found.group(1)))


def _rows(text: str, table: str) -> list[list[str]]:
    found = re.search(rf'<table id="{table}"[^>]*>.*?<tbody>(.*?)</tbody>', text, re.S)
    assert found is not None, text
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S):
        rows.append(
            [
                re.sub(r"<[^>]+>", "", cell).strip()
                for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
            ]
        )
    return rows


def test_ontime_page_shows_the_service_figures_with_filters_and_downloads(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    _store(db)
    with live_hub(database_url, tmp_path / "d", console={**FAST, "secure_cookies": False}) as hub:
        add_account(hub, "officer", "officer")
        service = ReportService(db, hub.settings)
        with browser(hub) as client:
            assert login(client, "officer").status_code == 303
            whole = client.get("/console/reports/ontime", params={"period": "2025-Q2", "group_by": "field"})
            query = {"period": "2025-Q2", "procedure": "1.003901.H42", "channel": "2"}
            filtered = client.get("/console/reports/ontime", params=query)
            days = client.get("/console/reports/ontime", params={"from": "2025-03-10", "to": "2025-04-20"})
            xlsx = client.get("/console/reports/ontime/export", params={**query, "format": "xlsx"})
            csv = client.get("/console/reports/ontime/export", params={**query, "format": "csv"})
            pdf = client.get("/console/reports/ontime/export", params={**query, "format": "pdf"})
            english = client.get("/console/reports/ontime", params={"period": "2025", "lang": "en"})
    window = day_range(period="2025-Q2")
    expected = service.ontime(window, GroupBy.FIELD, now=NOW)
    assert whole.status_code == 200, whole.text
    totals = _cells(whole.text, "totals")
    for name in (
        "received",
        "new",
        "finished",
        "early",
        "on_time",
        "late",
        "within_due",
        "overdue",
        "supplement",
    ):
        assert int(totals[name]) == getattr(expected.total, name), name
    assert expected.total.received > 100
    assert expected.total.overdue > 0
    groups = _rows(whole.text, "groups")
    assert [row[0] for row in groups] == [row.key for row in expected.rows]
    assert [int(row[2]) for row in groups] == [row.received for row in expected.rows]
    # the weekly chart's table adds up to the report's new and finished dossiers
    weeks = _rows(whole.text, "flow-table")
    assert len(weeks) == 14  # 1 Apr 2025 is a Tuesday: 13 Mondays follow
    assert sum(int(row[1]) for row in weeks) == expected.total.new
    assert sum(int(row[2]) for row in weeks) == expected.total.finished
    assert whole.text.count('<rect class="bar-in"') == 14
    # the overdue list: the report's overdue dossiers, linked to the dossier page for an officer
    overdue = service.overdue(window, now=NOW)
    listed = _rows(whole.text, "overdue")
    assert [row[0] for row in listed] == [item.code for item in overdue]
    assert len(listed) == expected.total.overdue
    assert f'href="/console/dossiers/{overdue[0].code}"' in whole.text
    # the on-time share chart has one bar per group with something finished
    assert whole.text.count('<rect class="bar-ok" x="150"') == sum(1 for r in expected.rows if r.finished)

    only = ReportFilter(procedure="1.003901.H42", channel=Channel.ONLINE)
    narrow = service.ontime(window, GroupBy.PROCEDURE, filters=only, now=NOW)
    assert filtered.status_code == 200
    assert int(_cells(filtered.text, "totals")["received"]) == narrow.total.received
    assert 0 < narrow.total.received < expected.total.received
    assert [row[0] for row in _rows(filtered.text, "groups")] == ["1.003901.H42"]
    assert (
        'href="/console/reports/ontime/export?period=2025-Q2&amp;procedure=1.003901.H42&amp;channel=2'
        in filtered.text
    )

    by_days = service.ontime(
        day_range(datetime(2025, 3, 10).date(), datetime(2025, 4, 20).date()), GroupBy.PROCEDURE
    )
    assert int(_cells(days.text, "totals")["received"]) == by_days.total.received

    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"] == XLSX
    assert 'filename="ontime-procedure-20250401-20250630.xlsx"' in xlsx.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    values = [cell for row in sheet.iter_rows(values_only=True) for cell in row]
    assert "1.003901.H42" in values
    assert narrow.total.received in values
    assert csv.status_code == 200
    assert csv.content.startswith(b"\xef\xbb\xbf")
    assert "1.003901.H42" in csv.content.decode("utf-8-sig")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    assert english.status_code == 200
    assert "On-time rate" in english.text
    assert "lang=en" in english.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": "2025-13"}, "không hợp lệ"),
        ({"from": "2025-05-01", "to": "2025-04-01"}, "ngày kết thúc trước ngày bắt đầu"),
        ({"from": "2025-02-30", "to": "2025-03-01"}, "không phải ngày"),
        ({"period": "2025", "from": "2025-01-01"}, "không chọn cả hai"),
        ({"period": "2025", "group_by": "owner"}, "cách nhóm"),
        ({"period": "2025", "channel": "9"}, "Bộ lọc không hợp lệ"),
        ({"period": "2025", "procedure": "x" * 41}, "Bộ lọc không hợp lệ"),
        ({"from": "2000-01-01", "to": "2025-12-31"}, "tối đa"),
    ],
)
def test_bad_parameters_give_a_422_page(
    db: Database, database_url: str, tmp_path: Path, params: dict[str, str], message: str
) -> None:
    with live_hub(database_url, tmp_path / "d", console={**FAST, "secure_cookies": False}) as hub:
        add_account(hub, "officer", "officer")
        with browser(hub) as client:
            assert login(client, "officer").status_code == 303
            shown = client.get("/console/reports/ontime", params=params)
            export = client.get("/console/reports/ontime/export", params={**params, "format": "xlsx"})
    assert shown.status_code == 422, shown.text
    assert message in html.unescape(shown.text)
    assert 'id="totals"' not in shown.text
    assert export.status_code == 422
    assert message in html.unescape(export.text)


def test_roles_and_the_usage_page(db: Database, database_url: str, tmp_path: Path) -> None:
    _store(db)
    with live_hub(database_url, tmp_path / "d", console={**FAST, "secure_cookies": False}) as hub:
        for role in ("clerk", "technician", "officer"):
            add_account(hub, role, role)
        service = ReportService(db, hub.settings)
        with browser(hub) as client:
            anonymous = client.get("/console/reports/ontime", params={"period": "2025"})
        with browser(hub) as client:
            assert login(client, "clerk").status_code == 303
            clerk_page = client.get("/console/reports/ontime", params={"period": "2025"})
            clerk_usage = client.get("/console/reports/usage", params={"period": "2025"})
            clerk_usage_file = client.get("/console/reports/usage/export", params={"period": "2025"})
            home = client.get("/console/")
        with browser(hub) as client:
            assert login(client, "technician").status_code == 303
            usage = client.get("/console/reports/usage", params={"period": "2025"})
            usage_xlsx = client.get(
                "/console/reports/usage/export", params={"period": "2025", "format": "xlsx"}
            )
            bad_usage = client.get("/console/reports/usage", params={"period": "2025-Q5"})
            usage_pdf = client.get(
                "/console/reports/usage/export", params={"period": "2025", "format": "pdf"}
            )
            bad_format = client.get(
                "/console/reports/usage/export", params={"period": "2025", "format": "docx"}
            )
    assert anonymous.status_code == 303
    assert "/console/login" in anonymous.headers["location"]
    assert clerk_page.status_code == 200
    assert "/console/dossiers/" not in clerk_page.text  # clerks do not open the dossier page
    assert clerk_usage.status_code == 403
    assert clerk_usage_file.status_code == 403
    assert 'href="/console/reports/ontime"' in home.text
    assert "/console/reports/usage" not in home.text
    expected = service.usage(day_range(period="2025"))
    assert usage.status_code == 200, usage.text
    rows = _rows(usage.text, "usage-dossiers")
    assert [(row[0], int(row[1]), int(row[2])) for row in rows] == [
        (item.label, item.received, item.ended) for item in expected.dossiers
    ]
    assert usage_xlsx.status_code == 200
    assert usage_xlsx.headers["content-type"] == XLSX
    assert 'href="/console/reports/usage/export?period=2025&amp;format=pdf"' in usage.text
    assert usage_pdf.status_code == 200
    assert usage_pdf.headers["content-type"] == "application/pdf"
    assert usage_pdf.content.startswith(b"%PDF-")
    assert bad_usage.status_code == 422
    assert bad_format.status_code == 422
