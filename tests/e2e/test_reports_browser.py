"""The on-time statistics page in headless Chromium: open it, change the period, download the
XLSX with the page's filters (docs/console.md, docs/reports.md §9)."""

from __future__ import annotations

import io
import re

import openpyxl
from playwright.sync_api import expect
from sqlalchemy import insert

from hub.db.models import DossierRow
from hub.reports.projection import rebuild
from hub.reports.query import GroupBy, day_range
from hub.reports.service import ReportService
from tests.e2e.harness import ConsoleSite
from tests.reports.support import dossier_rows, generate


def test_an_officer_changes_the_period_and_downloads_the_xlsx(site: ConsoleSite) -> None:
    db = site.hub.db
    with db.transaction() as session:
        session.execute(insert(DossierRow), dossier_rows(generate(300, 2025, seed=11)))
        rebuild(session.connection(), batch=256)
    expected = ReportService(db, site.hub.settings).ontime(day_range(period="2025-Q2"), GroupBy.PROCEDURE)

    page = site.login("officer")
    page.get_by_role("link", name="Thống kê giải quyết đúng hạn").click()
    expect(page).to_have_url(re.compile(r"/console/reports/ontime$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Thống kê giải quyết đúng hạn")
    page.get_by_label("Kỳ (năm, quý hoặc tháng)").fill("2025-Q2")
    page.get_by_label("Kênh thực hiện").select_option(label="Tất cả")
    page.get_by_role("button", name="Xem báo cáo").click()
    expect(page).to_have_url(re.compile(r"period=2025-Q2"))
    expect(page.locator("#window")).to_have_text("2025-04-01 – 2025-06-30")
    expect(page.locator('#totals [data-field="received"]')).to_have_text(str(expected.total.received))
    expect(page.locator('#totals [data-field="overdue"]')).to_have_text(str(expected.total.overdue))
    expect(page.get_by_role("img", name=re.compile("theo tuần"))).to_be_visible()
    site.shot(page, "reports-ontime")

    with page.expect_download() as waiting:
        page.get_by_role("link", name="XLSX").click()
    download = waiting.value
    assert download.suggested_filename == "ontime-procedure-20250401-20250630.xlsx"
    path = download.path()
    sheet = openpyxl.load_workbook(io.BytesIO(path.read_bytes())).active
    assert sheet is not None
    cells = [cell for row in sheet.iter_rows(values_only=True) for cell in row]
    assert expected.total.received in cells
    assert all(row.key in cells for row in expected.rows)
