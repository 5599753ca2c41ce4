"""The console in headless Chromium: login, lockout, admin pages, roles, CSRF, expiry, language.

docs/security.md §10; what the browser adds over tests/console/: the real form submission
(keyboard, labels, hidden fields), cookies as a browser keeps them (HttpOnly, SameSite=Strict),
the CSP applied to the real stylesheet, and screenshots of the pages.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from hub.db.account_tables import AccountRole
from tests.accounts.support import PASSWORD
from tests.e2e.harness import ACCOUNTS, ConsoleSite, console_pages

HOME = re.compile(r"/console/$")
ACCOUNTS_LINK = "Quản lý tài khoản"


def test_keyboard_login_shows_the_role_aware_home(site: ConsoleSite) -> None:
    page = site.page()
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2F$"))
    expect(page.locator("#username")).to_be_focused()  # autofocus: type at once
    # The stylesheet passes the CSP and applies (header colour from console.css).
    expect(page.locator("header")).to_have_css("background-color", "rgb(11, 61, 145)")
    site.shot(page, "login")
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(HOME)
    expect(page.get_by_role("heading", level=1)).to_have_text("Xin chào, Trần Quản Trị")
    expect(page.get_by_role("link", name=ACCOUNTS_LINK)).to_be_visible()
    site.shot(page, "home-admin")
    for username in ("technician", "officer", "clerk"):
        other = site.login(username)
        expect(other.get_by_role("heading", level=1)).to_have_text(f"Xin chào, {ACCOUNTS[username][0]}")
        expect(other.get_by_role("link", name=ACCOUNTS_LINK)).to_have_count(0)
        site.shot(other, f"home-{username}")
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert cookies["hub_console"]["httpOnly"] is True
    assert cookies["hub_console"]["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # no script can read the session


def test_wrong_password_shows_the_error_then_the_account_locks(site: ConsoleSite) -> None:
    page = site.page()
    page.goto("/console/login")
    for _ in range(3):  # console.lockout_threshold of the site
        page.get_by_label("Tên đăng nhập").fill("officer")
        page.get_by_label("Mật khẩu").fill("not the password at all")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.get_by_role("button", name="Đăng nhập").click()
        assert answer.value.status == 401
        expect(page.get_by_role("alert")).to_contain_text("sai tên đăng nhập hoặc mật khẩu")
        expect(page.get_by_label("Tên đăng nhập")).to_have_value("officer")  # kept; the password not
        expect(page.get_by_label("Mật khẩu")).to_have_value("")
    site.shot(page, "login-error")
    page.get_by_label("Mật khẩu").fill(PASSWORD)  # the right password, but locked now
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page).to_have_url(re.compile("/console/login"))
    assert "hub_console" not in {cookie["name"] for cookie in page.context.cookies()}
    assert ("account.locked", "client:127.0.0.1") in site.hub.audit_trail("officer")
    site.clock.advance(seconds=61)  # console.lockout_seconds later
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page).to_have_url(HOME)


def test_an_admin_creates_a_user_who_then_logs_in(site: ConsoleSite) -> None:
    page = site.login("admin")
    page.get_by_role("link", name=ACCOUNTS_LINK).click()
    expect(page).to_have_url(re.compile("/console/admin/users$"))
    form = page.locator("form:has(#new-username)")
    form.get_by_label("Tên đăng nhập").fill("hoa.nt")
    form.get_by_label("Họ và tên").fill("Nguyễn Thị Hoa")
    form.get_by_label("Đơn vị").fill("UBND xã Tân Phú")
    form.get_by_label("Mật khẩu").fill("Hồ sơ một cửa 2025")
    form.get_by_label("Văn thư").check()
    form.get_by_role("button", name="Tạo tài khoản").click()
    expect(page.get_by_role("status")).to_have_text("Đã cập nhật tài khoản")
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="hoa.nt"))
    expect(row).to_contain_text("Nguyễn Thị Hoa")
    expect(row.get_by_role("checkbox", name="Văn thư")).to_be_checked()
    expect(row.get_by_role("checkbox", name="Quản trị")).not_to_be_checked()
    admin_row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="admin"))
    expect(admin_row).to_contain_text("2025-11-25 08:00")  # logged in 01:00 UTC: Vietnam time
    site.shot(page, "admin-users")
    assert ("account.create", "admin") in site.hub.audit_trail("hoa.nt")

    newcomer = site.login("hoa.nt", "Hồ sơ một cửa 2025")
    expect(newcomer.get_by_role("heading", level=1)).to_have_text("Xin chào, Nguyễn Thị Hoa")
    expect(newcomer.locator("main")).to_contain_text("Văn thư")
    newcomer.goto("/console/admin/users")
    expect(newcomer.get_by_role("heading", level=1)).to_have_text("Không có quyền")


def test_each_page_is_forbidden_to_the_wrong_roles_and_anonymous_goes_to_login(site: ConsoleSite) -> None:
    pages = console_pages()
    assert "/console/admin/users" in dict(pages)
    anonymous = site.page()
    pages_by_role = {username: site.login(username) for username in ACCOUNTS}
    checked = 0
    for path, allowed in pages:
        if allowed is None:
            continue
        anonymous.goto(path)
        expect(anonymous).to_have_url(re.compile(r"/console/login\?next="))
        expect(anonymous.get_by_label("Tên đăng nhập")).to_be_visible()
        for username, (_name, roles) in ACCOUNTS.items():
            page = pages_by_role[username]
            answer = page.goto(path)
            assert answer is not None
            held = {AccountRole(role) for role in roles}
            if AccountRole.ADMIN in held or held & allowed:
                assert answer.status == 200, (username, path)
                expect(page.get_by_role("heading", name="Không có quyền")).to_have_count(0)
                continue
            assert answer.status == 403, (username, path)
            expect(page.get_by_role("heading", level=1)).to_have_text("Không có quyền")
            expect(page.get_by_role("alert")).to_have_text(
                "Tài khoản của bạn không có quyền truy cập trang này."
            )
            slug = path.strip("/").replace("/", "-")
            site.shot(page, f"forbidden-{username}-{slug}")
            checked += 1
    assert checked >= 3  # at least the admin page for officer, clerk and technician


def test_a_tampered_csrf_token_is_refused_and_nothing_changes(site: ConsoleSite) -> None:
    page = site.login("admin")
    page.goto("/console/admin/users")
    form = page.locator("form:has(#new-username)")
    form.get_by_label("Tên đăng nhập").fill("mallory")
    form.get_by_label("Họ và tên").fill("Kẻ Giả Mạo")
    form.get_by_label("Mật khẩu").fill("Hồ sơ một cửa 2025")
    form.get_by_label("Quản trị").check()
    token = form.locator('input[name="csrf_token"]')
    token.evaluate("(input) => { input.value = input.value.slice(0, -4) + 'AAAA'; }")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        form.get_by_role("button", name="Tạo tài khoản").click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_have_text(
        "Biểu mẫu đã hết hạn hoặc không hợp lệ. Hãy tải lại trang và thử lại."
    )
    site.shot(page, "csrf-refused")
    assert "mallory" not in site.account_names()
    assert site.hub.audit_trail("mallory") == []

    # Another live session's token is refused too: the token is bound to its session.
    other = site.login("admin")
    other.goto("/console/admin/users")
    stolen = other.locator('input[name="csrf_token"]').first.input_value()
    page.goto("/console/admin/users")
    disable = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="clerk"))
    disable.locator('input[name="csrf_token"]').last.evaluate(
        "(input, value) => { input.value = value; }", stolen
    )
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        disable.get_by_role("button", name=re.compile("^Khóa")).click()
    assert answer.value.status == 403
    assert site.hub.audit_trail("clerk") == [("account.create", "tests")]
    # The refusal's language link opens a page (the form's URL answers only POST).
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Trần Quản Trị")


def test_an_idle_session_expires_and_the_next_click_goes_to_login(site: ConsoleSite) -> None:
    page = site.login("admin")
    site.clock.advance(seconds=50)  # inside console.idle_timeout_minutes (1)
    page.get_by_role("link", name=ACCOUNTS_LINK).click()
    expect(page).to_have_url(re.compile("/console/admin/users$"))
    site.clock.advance(minutes=1, seconds=1)  # idle past it
    page.get_by_role("link", name="Bảng điều khiển hệ thống liên thông một cửa").click()
    expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2F$"))
    page.get_by_label("Tên đăng nhập").fill("admin")
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page).to_have_url(HOME)  # back where the click was going


def test_logout_ends_the_session(site: ConsoleSite) -> None:
    page = site.login("officer")
    page.get_by_role("button", name="Đăng xuất").click()
    expect(page).to_have_url(re.compile("/console/login$"))
    assert "hub_console" not in {cookie["name"] for cookie in page.context.cookies()}
    page.go_back()  # the home page is not served from the cache (no-store)
    expect(page).to_have_url(re.compile(r"/console/login\?next="))


def test_the_language_switch_gives_english_pages(site: ConsoleSite) -> None:
    page = site.page()
    page.goto("/console/login")
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    site.shot(page, "login-en")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Trần Quản Trị")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("link", name="Accounts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Accounts")
    site.shot(page, "admin-users-en")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")  # still English
    page.goto("/console/admin/users?lang=en")  # logged out: to the login form, in English
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    page.get_by_role("link", name="Tiếng Việt").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Đăng nhập")
