"""The signing desk in headless Chromium: an officer previews and signs a draft result, a clerk
numbers, dates and seals it, and the verification report shows both signatures.

Real parts: the test PKI (OCSP, CRL, TSA on loopback), PKCS#12 keys bound to the console
accounts (``user:officer``, ``user:clerk``), the hub on SQLite. Screenshots of every desk page
go to the test's tmp dir (``screenshots/``) and to ``E2E_SCREENSHOTS_DIR`` when it is set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from hub.simulators.pki import RunningPki
from tests.accounts.support import Clock
from tests.conftest import migrated_database
from tests.console.desk_support import desk_hub, desk_images, desk_pki, upload_draft
from tests.e2e.harness import ConsoleSite, console_site, screenshot_folder


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPki]:
    yield from desk_pki(tmp_path_factory)


@pytest.fixture
def desk_site(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    chromium: Browser,
    pki: RunningPki,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ConsoleSite]:
    shots = screenshot_folder(tmp_path)
    images = desk_images(tmp_path_factory)
    with (
        migrated_database(request, "sqlite", tmp_path) as url,
        desk_hub(url, tmp_path / "data", pki, images, monkeypatch) as hub,
        console_site(hub, Clock(), chromium, shots) as running,
    ):
        yield running


def _image_loaded(page: Page, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 100"))


def test_officer_signs_and_clerk_seals(desk_site: ConsoleSite) -> None:
    site = desk_site
    upload_draft(site.hub)

    officer = site.login("officer")
    officer.get_by_role("link", name="Văn bản chờ ký").click()
    expect(officer.get_by_role("heading", level=1)).to_have_text("Văn bản chờ ký")
    expect(officer.locator("#waiting-count")).to_have_text("1")
    site.shot(officer, "desk-waiting")
    officer.get_by_role("link", name="Giấy chứng nhận an toàn thực phẩm").click()
    preview = officer.get_by_role("img", name="Trang 1")
    expect(preview).to_be_visible()
    officer.wait_for_load_state("load")  # images included
    assert _image_loaded(officer, ".pages img")
    site.shot(officer, "desk-document")
    officer.get_by_label("Khóa ký").select_option("lanh-ntl")
    officer.get_by_role("button", name="Ký số", exact=True).click()
    expect(officer.get_by_role("heading", level=1)).to_have_text("Đã ký số")
    expect(officer.get_by_role("status")).to_contain_text("chuyển văn thư")
    site.shot(officer, "desk-signed")
    officer.get_by_role("link", name="Văn bản chờ ký").click()
    expect(officer.locator("#waiting-count")).to_have_text("0")

    clerk = site.login("clerk")
    clerk.get_by_role("link", name="Văn bản chờ cấp số và đóng dấu").click()
    expect(clerk.locator("#queue-count")).to_have_text("1")
    expect(clerk.locator("#queue")).to_contain_text("user:officer")
    site.shot(clerk, "issuance-queue")
    clerk.get_by_role("link", name="Giấy chứng nhận an toàn thực phẩm").click()
    clerk.wait_for_load_state("load")
    assert _image_loaded(clerk, ".pages img")
    site.shot(clerk, "issuance-document")
    expect(clerk.get_by_label("Tên giấy tờ kết quả")).to_have_value("Giấy chứng nhận an toàn thực phẩm")
    clerk.get_by_label("Ký hiệu loại văn bản (GCN, QĐ…)").fill("GCN")
    clerk.get_by_role("button", name="Cấp số, ngày và đóng dấu").click()
    expect(clerk.get_by_role("heading", level=1)).to_have_text("Đã ban hành")
    expect(clerk.locator("#document-number")).to_have_text("01/GCN-SNNMT")
    expect(clerk.locator("#document-date")).to_contain_text(re.compile(r"^Ninh Bình, ngày \d\d tháng"))
    clerk.wait_for_load_state("load")
    assert _image_loaded(clerk, ".pages img")  # the issued paper: number, date and seal drawn
    site.shot(clerk, "issuance-done")

    clerk.get_by_role("link", name="Kết quả kiểm tra chữ ký số").click()
    expect(clerk.locator("#verdict")).to_have_text("Hợp lệ")
    rows = clerk.locator("#signatures tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Chữ ký chứng nhận (người có thẩm quyền)")
    expect(clerk.locator("#report")).to_contain_text("Chữ ký số thứ 2")
    site.shot(clerk, "verification-vi")
    clerk.get_by_role("link", name="English").click()
    expect(clerk.locator("#verdict")).to_have_text("Valid")
    expect(clerk.locator("#report")).to_contain_text("DIGITAL SIGNATURE VERIFICATION REPORT")
    site.shot(clerk, "verification-en")


def test_officer_batch_signs_and_watches_the_progress(desk_site: ConsoleSite) -> None:
    site = desk_site
    for n in (1, 2):
        upload_draft(site.hub, f"QUYET DINH {n}")
    officer = site.login("officer")
    officer.goto("/console/signing")
    expect(officer.locator("#waiting-count")).to_have_text("2")
    for box in officer.get_by_role("checkbox").all():
        box.check()
    officer.get_by_role("button", name="Ký số các văn bản đã chọn").click()
    expect(officer).to_have_url(re.compile(r"/console/signing/jobs/[0-9a-f]{32}$"))
    expect(officer.get_by_role("heading", level=1)).to_have_text("Ký số hàng loạt")
    site.shot(officer, "desk-job-running")
    # the page refreshes itself every 2 s until the job ends
    expect(officer.locator("#job-state")).to_have_text("Hoàn tất", timeout=60_000)
    expect(officer.locator("#job-progress")).to_have_text("2/2")
    expect(officer.get_by_role("link", name="Kết quả kiểm tra chữ ký số")).to_have_count(2)
    site.shot(officer, "desk-job-done")
    officer.get_by_role("link", name="Văn bản chờ ký").click()
    expect(officer.locator("#waiting-count")).to_have_text("0")
