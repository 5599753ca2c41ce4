"""The technician's job in headless Chromium, against a real hub (API and delivery worker) and a
real loopback receiver: log in, find the dead-lettered messages, inspect one (masked), edit and
retry it, bulk-retry the rest by filter, see them delivered — at the receiver and on the pages.
Then the admin's audit log shows what the technician did. docs/console.md; the screenshots of
each page are kept (docs/development.md, "Browser tests").

The receiver (:class:`hub.simulators.sink.WebhookSink`) first answers every delivery 400 (a
business rejection: dead-lettered at the first attempt), then is "fixed" (its fault cleared),
so the retries really deliver.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from hub.accounts.signin_links import SignInLinks
from hub.console.signin_link import install_sign_in_links
from hub.db.models import MessageState, OutboxMessage
from hub.simulators.faults import FaultKind
from hub.simulators.sink import WebhookSink
from tests.accounts.support import FAST, PASSWORD, Clock
from tests.api.livehub import dossier_json, live_hub
from tests.audit.tampering import tamper
from tests.conftest import migrated_database
from tests.console.support import console_of
from tests.e2e.harness import ACCOUNTS, ConsoleSite, console_site, screenshot_folder
from tests.sample_dossier import T0

ENDPOINT = "cong-dvcqg"
CCCD = "001099012345"
PHONE = "0912345678"
SUMMARY = "Đề nghị cấp giấy chứng nhận"
EDITED = "Đề nghị cấp giấy chứng nhận (đã sửa sau lỗi nghiệp vụ)"
DOSSIERS = [f"000.00.18.H42-251125-{n:04d}" for n in range(1, 5)]
#: Seconds to wait for the worker to deliver or dead-letter.
SETTLE_SECONDS = 30


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as server:
        yield server


@pytest.fixture
def ops_site(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    chromium: Browser,
    sink: WebhookSink,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ConsoleSite]:
    """A hub with its delivery worker, one webhook endpoint at ``sink``, the console's accounts."""
    shots = screenshot_folder(tmp_path)
    monkeypatch.setenv("HUB_WORKER__POLL_INTERVAL_SECONDS", "0.1")  # ``worker=`` is live_hub's own
    fast_retry = {"schedule_seconds": [0.2, 0.4], "jitter_ratio": 0.1}
    with (
        migrated_database(request, "sqlite", tmp_path) as url,
        live_hub(
            url,
            tmp_path / "data",
            worker=True,
            console={**FAST, "secure_cookies": False},
            endpoints={ENDPOINT: {"kind": "webhook", "url": sink.url, "retry": fast_retry}},
            routing=[{"kinds": ["dossier.sync", "dossier.progress"], "endpoints": [ENDPOINT]}],
        ) as hub,
    ):
        accounts = console_of(hub).accounts
        for username, (display_name, roles) in ACCOUNTS.items():
            accounts.create(username, display_name, PASSWORD, roles, actor="tests", unit="Sở Nội vụ")
        with console_site(hub, Clock(), chromium, shots) as running:
            yield running


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {SETTLE_SECONDS} s: {what}")
        time.sleep(0.1)


def states(site: ConsoleSite) -> dict[str, str]:
    """dossier code → state of its message."""
    with site.hub.db.sessions() as session:
        rows = session.execute(select(OutboxMessage.dossier_code, OutboxMessage.state)).all()
    return {code or "": state for code, state in rows}


def delivered_bodies(sink: WebhookSink) -> dict[str, dict[str, object]]:
    return {a.dossier_code: json.loads(a.body) for a in sink.arrivals()}


def feed(site: ConsoleSite) -> None:
    with site.hub.client("source") as api:
        for code in DOSSIERS:
            body = dossier_json(code, received_at=T0.isoformat())
            body["contact"] = {"phone": PHONE}
            body["owner"]["id_number"] = CCCD
            answer = api.post("/api/v1/dossiers", json={"dossier": body, "version": 1})
            assert answer.status_code in (200, 201), answer.text


def dead_letter_everything(site: ConsoleSite, sink: WebhookSink) -> None:
    sink.faults.add(kind=FaultKind.STATUS, operation="deliver", status=400, times=None)
    feed(site)
    wait_for(
        lambda: states(site) == dict.fromkeys(DOSSIERS, MessageState.DEAD.value),
        "every message dead-lettered",
    )
    assert sink.arrivals() == []
    sink.faults.clear()  # the receiver is fixed


def seq_of(page: Page, code: str) -> str:
    row = page.get_by_role("row").filter(has_text=code)
    return row.get_by_role("rowheader").inner_text().strip()


def test_the_technician_repairs_and_redelivers_dead_letters(ops_site: ConsoleSite, sink: WebhookSink) -> None:
    site = ops_site
    dead_letter_everything(site, sink)
    page = site.login("technician")
    page.get_by_role("link", name="Tổng quan vận hành").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tổng quan vận hành")
    endpoint_row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=ENDPOINT))
    expect(endpoint_row).to_contain_text("4")
    site.shot(page, "ops-overview")

    # find the dead letters
    page.goto("/console/")
    page.get_by_role("link", name="Hàng đợi bản tin lỗi").click()
    expect(page.locator("#total")).to_have_text("4")
    for code in DOSSIERS:
        expect(page.get_by_role("row").filter(has_text=code)).to_contain_text("BusinessRejectionError")
    site.shot(page, "dlq-list")

    # inspect one: masked
    first = DOSSIERS[0]
    seq = seq_of(page, first)
    page.get_by_role("link", name=seq, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Bản tin {seq}")
    expect(page.locator("#state")).to_have_text("Lỗi")
    payload = page.locator("#payload")
    expect(payload).to_contain_text("*********345")
    expect(payload).to_contain_text(SUMMARY)
    assert CCCD not in page.content()
    assert PHONE not in page.content()
    expect(page.get_by_role("link", name=re.compile("Hiện dữ liệu cá nhân"))).to_have_count(0)  # admins only
    site.shot(page, "dlq-message")

    # edit and retry: the diff first, then save
    editor = page.get_by_label(re.compile("^Nội dung \\(JSON"))
    text = editor.input_value()
    assert CCCD not in text
    editor.fill(text.replace(SUMMARY, EDITED))
    page.get_by_label("Lý do").last.fill("Sửa trích yếu theo yêu cầu của cổng")
    page.get_by_role("button", name="Xem thay đổi").click()
    diff = page.locator("#diff")
    expect(diff.locator("ins")).to_contain_text(EDITED)
    expect(diff.locator("del")).to_contain_text(SUMMARY)
    assert CCCD not in page.content()
    site.shot(page, "dlq-edit-diff")
    page.get_by_role("button", name="Lưu và gửi lại").click()
    expect(page.get_by_role("status")).to_have_text("Đã sửa nội dung và gửi lại.")
    wait_for(lambda: first in delivered_bodies(sink), "the edited message delivered")
    body = json.dumps(delivered_bodies(sink)[first], ensure_ascii=False)
    assert EDITED in body  # the edit went out ...
    assert CCCD in body  # ... with the stored ID number, never the mask
    assert "*********345" not in body
    page.reload()
    expect(page.locator("#state")).to_have_text("Đã gửi")
    attempts = page.get_by_role("table").filter(has_text="HTTP").get_by_role("row")
    expect(attempts).to_have_count(3)  # the header, the rejection (400), the delivery (200)
    expect(attempts.nth(1)).to_contain_text("400")
    expect(attempts.nth(2)).to_contain_text("200")
    site.shot(page, "dlq-message-delivered")

    # bulk-retry the rest by filter
    page.goto("/console/dlq")
    page.get_by_label("Điểm nhận").fill(ENDPOINT)
    page.get_by_role("button", name="Lọc").click()
    expect(page.locator("#total")).to_have_text("3")
    page.get_by_role("button", name="Gửi lại tất cả bản tin khớp (3)").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Xác nhận thao tác hàng loạt")
    expect(page.locator("main")).to_contain_text("3")
    site.shot(page, "dlq-bulk-confirm")
    page.get_by_role("button", name="Xác nhận gửi lại").click()
    expect(page).to_have_url(re.compile(r"/console/dlq/jobs/\d+$"))
    expect(page.locator("main")).to_contain_text("Hoàn tất", timeout=SETTLE_SECONDS * 1000)
    site.shot(page, "dlq-bulk-job")
    wait_for(lambda: set(delivered_bodies(sink)) == set(DOSSIERS), "every message delivered")
    assert all(CCCD in json.dumps(b) for b in delivered_bodies(sink).values())
    assert len(sink.arrivals()) == len(DOSSIERS)  # each once

    # see them delivered on the list
    page.goto("/console/dlq")
    expect(page.locator("#total")).to_have_text("0")
    page.get_by_label("Trạng thái").select_option("delivered")
    page.get_by_role("button", name="Lọc").click()
    expect(page.locator("#total")).to_have_text("4")
    site.shot(page, "dlq-delivered")

    # the admin reads what happened in the audit log
    admin = site.login("admin")
    admin.get_by_role("navigation", name="Quản trị").get_by_role("link", name="Nhật ký kiểm toán").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Nhật ký kiểm toán")
    expect(admin.locator("#chain")).to_contain_text("Chuỗi băm toàn vẹn")
    admin.get_by_label("Người thực hiện").fill("technician")
    admin.get_by_label("Hành động (bắt đầu bằng)").fill("dlq.")
    admin.get_by_role("button", name="Lọc").click()
    rows = admin.locator("table.audit > tbody > tr")
    expect(rows.filter(has_text="dlq.edit")).to_have_count(1)
    expect(rows.filter(has_text="dlq.bulk")).not_to_have_count(0)
    edit_row = rows.filter(has_text="dlq.edit")
    expect(edit_row.locator("tr.changed")).not_to_have_count(0)  # before/after shown as a diff
    assert CCCD not in admin.content()
    site.shot(admin, "audit-log")
    with admin.expect_download() as download:
        admin.get_by_role("link", name="CSV").click()
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert exported.startswith("id,at,actor,action")
    assert "dlq.edit" in exported
    assert "account.create" not in exported  # the page's filter applies
    assert CCCD not in exported
    with httpx.Client(base_url=site.hub.base_url) as anonymous:
        assert anonymous.get("/console/audit/export", follow_redirects=False).status_code == 303


def test_the_demo_sign_in_link_opens_a_technician_session_once(site: ConsoleSite) -> None:
    """What ``hub demo`` prints (hub.accounts.signin_links), followed in the browser."""
    links = SignInLinks(site.hub.db, console_of(site.hub).accounts)
    install_sign_in_links(site.hub.app, links)
    path = f"/console/login/once/{links.issue('technician', actor='hub demo')}"
    page = site.page()
    page.goto(path)
    expect(page.get_by_role("heading", level=1)).to_have_text("Đăng nhập một lần")
    expect(page.locator("main")).to_contain_text("technician")
    site.shot(page, "signin-link")
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Xin chào, {ACCOUNTS['technician'][0]}")
    expect(page.get_by_role("link", name="Hàng đợi bản tin lỗi")).to_be_visible()
    again = site.page()
    answer = again.goto(path)
    assert answer is not None
    assert answer.status == 401
    expect(again.get_by_role("alert")).to_have_text(
        "Đường dẫn đăng nhập không hợp lệ, đã dùng hoặc đã hết hạn."
    )
    expect(again.get_by_role("button")).to_have_count(0)
    site.shot(again, "signin-link-used")


def test_the_admin_sees_a_tampered_audit_row(site: ConsoleSite) -> None:
    accounts = console_of(site.hub).accounts
    accounts.set_roles("clerk", ["clerk", "officer"], actor="admin")
    db = site.hub.db
    tamper(db, "UPDATE audit_log SET actor = 'eve' WHERE action = 'account.roles'")
    page = site.login("admin")
    page.goto("/console/audit?lang=en")
    expect(page.get_by_role("alert")).to_contain_text("Hash chain broken at row #")
    expect(page.get_by_role("alert")).to_contain_text("its contents were changed after it was written")
    broken = page.locator("tr.broken")
    expect(broken).to_have_count(1)
    expect(broken).to_contain_text("account.roles")
    expect(broken).to_contain_text("Hash chain broken here")
    expect(broken.locator("tr.changed")).to_contain_text("officer")  # details' before/after as a diff
    site.shot(page, "audit-log-broken-en")
