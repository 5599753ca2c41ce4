"""The console over a real server on loopback: login, sessions, CSRF, lockout, admin pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from hub.db.account_tables import UserAccount
from tests.accounts.support import OTHER_PASSWORD, PASSWORD
from tests.console.support import add_account, browser, console_hub, console_of, csrf, login


def _set_cookies(response_headers: list[str], name: str) -> list[str]:
    return [value for value in response_headers if value.startswith(f"{name}=")]


def test_login_logout_and_the_cookie(database_url: str, tmp_path: Path) -> None:
    with console_hub(database_url, tmp_path / "d") as (hub, _clock), browser(hub) as client:
        add_account(hub, "lan", "officer")
        answer = login(client, "lan")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/"
        (cookie,) = _set_cookies(answer.headers.get_list("set-cookie"), "hub_console")
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite", "path"} <= attributes
        assert "samesite=strict" in cookie.lower()
        assert "secure" not in attributes  # console.secure_cookies is off for loopback HTTP
        token = client.cookies["hub_console"]
        home = client.get("/console/")
        assert home.status_code == 200
        assert "Người dùng lan" in home.text
        assert "Quản lý tài khoản" not in home.text  # officers do not manage accounts
        assert "default-src 'none'" in home.headers["content-security-policy"]
        assert "<script" not in home.text
        out = client.post("/console/logout", data={"csrf_token": csrf(home)})
        assert out.status_code == 303
        assert out.headers["location"] == "/console/login"
        client.cookies.set("hub_console", token)  # the old cookie opens nothing any more
        after = client.get("/console/")
        assert after.status_code == 303
        assert after.headers["location"].startswith("/console/login")


def test_secure_cookies_use_the_host_prefix(database_url: str, tmp_path: Path) -> None:
    with (
        console_hub(database_url, tmp_path / "d", secure_cookies=True) as (hub, _clock),
        browser(hub) as client,
    ):
        form = client.get("/console/login")
    (cookie,) = _set_cookies(form.headers.get_list("set-cookie"), "__Host-hub_login")
    lowered = cookie.lower()
    assert "; secure" in lowered
    assert "; httponly" in lowered
    assert "; path=/" in lowered
    assert "domain=" not in lowered


def test_each_login_gets_a_new_session_id(database_url: str, tmp_path: Path) -> None:
    with console_hub(database_url, tmp_path / "d") as (hub, _clock), browser(hub) as client:
        add_account(hub, "lan", "officer")
        assert login(client, "lan").status_code == 303
        first = client.cookies["hub_console"]
        assert login(client, "lan").status_code == 303  # the first cookie is sent along
        second = client.cookies["hub_console"]
        assert second != first
        with browser(hub) as other:
            other.cookies.set("hub_console", first)
            assert other.get("/console/").status_code == 303  # the replaced session is gone
            other.cookies.set("hub_console", second)
            assert other.get("/console/").status_code == 200


def test_login_form_needs_its_csrf_cookie(database_url: str, tmp_path: Path) -> None:
    with console_hub(database_url, tmp_path / "d") as (hub, _clock), browser(hub) as client:
        add_account(hub, "lan", "officer")
        form = client.get("/console/login")
        token = csrf(form)
        client.cookies.clear()
        forged = client.post(
            "/console/login", data={"username": "lan", "password": PASSWORD, "csrf_token": token}
        )
    assert forged.status_code == 403
    assert "hub_console" not in forged.headers.get("set-cookie", "")


def test_wrong_passwords_lock_the_account_then_the_address(database_url: str, tmp_path: Path) -> None:
    settings = {"lockout_threshold": 3, "lockout_seconds": 60, "login_failures_per_address_per_minute": 5}
    with console_hub(database_url, tmp_path / "d", **settings) as (hub, clock), browser(hub) as client:
        add_account(hub, "lan", "officer")
        wrong = [login(client, "lan", "not the password").status_code for _ in range(3)]
        locked = login(client, "lan")
        assert wrong == [401, 401, 401]
        assert locked.status_code == 401
        assert "tạm thời" in locked.text
        assert PASSWORD not in locked.text
        clock.advance(seconds=61)
        assert login(client, "lan").status_code == 303
        assert login(client, "nobody").status_code == 401  # fifth failure of this address
        throttled = login(client, "lan")
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) >= 1
    assert ("account.locked", "client:127.0.0.1") in hub.audit_trail("lan")


def test_idle_and_absolute_timeouts(database_url: str, tmp_path: Path) -> None:
    with (
        console_hub(database_url, tmp_path / "d", idle_timeout_minutes=30, absolute_timeout_hours=1) as (
            hub,
            clock,
        ),
        browser(hub) as client,
    ):
        add_account(hub, "lan", "officer")
        login(client, "lan")
        clock.advance(minutes=25)
        assert client.get("/console/").status_code == 200
        clock.advance(minutes=31)
        assert client.get("/console/").status_code == 303  # idle
        login(client, "lan")
        for _ in range(2):
            clock.advance(minutes=25)
            assert client.get("/console/").status_code == 200
        clock.advance(minutes=25)  # busy, but 75 minutes after the login
        assert client.get("/console/").status_code == 303


def test_admin_pages_refuse_other_roles_and_send_strangers_to_login(
    database_url: str, tmp_path: Path
) -> None:
    with console_hub(database_url, tmp_path / "d") as (hub, _clock), browser(hub) as client:
        add_account(hub, "lan", "officer", "clerk", "technician")
        anonymous = client.get("/console/admin/users")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/console/login?next=%2Fconsole%2Fadmin%2Fusers"
        login(client, "lan")
        refused = client.get("/console/admin/users")
        assert refused.status_code == 403
        assert "không có quyền" in refused.text


def test_csrf_refusal_changes_nothing(database_url: str, tmp_path: Path) -> None:
    with console_hub(database_url, tmp_path / "d") as (hub, _clock), browser(hub) as client:
        add_account(hub, "root", "admin")
        add_account(hub, "lan", "officer")
        login(client, "root")
        page = client.get("/console/admin/users")
        token = csrf(page)
        with browser(hub) as other:
            login(other, "root")
            other_token = csrf(other.get("/console/admin/users"))
        new = {"username": "binh", "display_name": "Trần Bình", "password": OTHER_PASSWORD, "role": ["clerk"]}
        missing = client.post("/console/admin/users", data=new)
        foreign = client.post("/console/admin/users", data={**new, "csrf_token": other_token})
        disable = client.post("/console/admin/users/lan/disable", data={"csrf_token": "x" * 43})
        assert [missing.status_code, foreign.status_code, disable.status_code] == [403, 403, 403]
        assert [a.username for a in console_of(hub).accounts.list()] == ["lan", "root"]
        assert not console_of(hub).accounts.get("lan").disabled
        created = client.post("/console/admin/users", data={**new, "csrf_token": token})
        assert created.status_code == 200
        assert console_of(hub).accounts.get("binh").role_names == ["clerk"]


def test_admin_manages_accounts_in_the_console(database_url: str, tmp_path: Path) -> None:
    with console_hub(database_url, tmp_path / "d") as (hub, _clock), browser(hub) as client:
        add_account(hub, "root", "admin")
        login(client, "root", lang="en")
        home = client.get("/console/", params={"lang": "en"})
        assert '<a href="/console/admin/users?lang=en">Accounts</a>' in home.text
        page = client.get("/console/admin/users", params={"lang": "en"})
        assert page.status_code == 200
        assert '<html lang="en">' in page.text
        token = csrf(page)
        hostile = '<img src=x onerror="alert(1)">'
        weak = client.post(
            "/console/admin/users?lang=en",
            data={
                "username": "binh",
                "display_name": "B",
                "password": "password1234",
                "role": ["clerk"],
                "csrf_token": token,
            },
        )
        assert weak.status_code == 422
        assert "too common" in weak.text
        made = client.post(
            "/console/admin/users",
            data={
                "username": "binh",
                "display_name": hostile,
                "unit": "Văn thư",
                "password": OTHER_PASSWORD,
                "role": ["officer", "clerk"],
                "csrf_token": token,
            },
        )
        assert made.status_code == 200
        assert hostile not in made.text
        assert "&lt;img src=x" in made.text
        roles = client.post(
            "/console/admin/users/binh/roles", data={"role": ["technician"], "csrf_token": token}
        )
        disabled = client.post("/console/admin/users/binh/disable", data={"csrf_token": token})
        last_admin = client.post("/console/admin/users/root/disable", data={"csrf_token": token})
        assert (roles.status_code, disabled.status_code, last_admin.status_code) == (200, 200, 409)
        account = console_of(hub).accounts.get("binh")
        assert (account.role_names, account.disabled) == (["technician"], True)
        with hub.db.sessions() as session:
            stored = session.scalar(select(UserAccount.password_hash).where(UserAccount.username == "binh"))
        assert stored is not None
        assert stored.startswith("$argon2id$")
        assert OTHER_PASSWORD not in stored
    assert [action for action, _ in hub.audit_trail("binh")] == [
        "account.create",
        "account.roles",
        "account.disable",
    ]
    assert {actor for _, actor in hub.audit_trail("binh")} == {"root"}


@pytest.mark.parametrize(
    ("query", "header", "expected"),
    [
        ({}, None, "Đăng nhập"),
        ({"lang": "en"}, None, "Log in"),
        ({}, "en-GB,en;q=0.9,vi;q=0.5", "Log in"),
        ({}, "fr,vi;q=0.8,en;q=0.5", "Đăng nhập"),
        ({"lang": "vi"}, "en", "Đăng nhập"),
    ],
)
def test_vietnamese_by_default_english_on_request(
    database_url: str, tmp_path: Path, query: dict[str, str], header: str | None, expected: str
) -> None:
    with console_hub(database_url, tmp_path / "d") as (hub, _clock), browser(hub) as client:
        headers = {"Accept-Language": header} if header else {}
        page = client.get("/console/login", params=query, headers=headers)
    assert f"<h1>{expected}</h1>" in page.text
    assert '<label for="username">' in page.text
    assert '<label for="password">' in page.text
