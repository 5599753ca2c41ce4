"""Console sign-in through an OIDC provider: the hub on loopback against a real local provider
(:class:`hub.simulators.oidc.OidcProvider`, aiohttp on loopback), every refusal with its page
and its audit row."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import select

from hub.config import load_settings
from hub.db.account_tables import UserAccount
from hub.db.models import AuditEntry
from hub.simulators.oidc import OidcProvider
from schemas.errors import ConfigurationError
from tests.accounts.support import Clock
from tests.api.livehub import LiveHub
from tests.console.support import add_account, browser, console_hub, console_of, csrf, login

PROVIDER = "Cổng xác thực tỉnh"
REASON_RE = re.compile(r'data-reason="([a-z_]+)"')


@contextmanager
def oidc_hub(
    database_url: str, data_dir: Path, console: dict[str, Any] | None = None, **oidc: Any
) -> Iterator[tuple[LiveHub, Clock, OidcProvider]]:
    """A console hub configured for a local provider whose tokens follow the hub's clock."""
    with OidcProvider() as provider:
        settings = {
            "provider_name": PROVIDER,
            "issuer": provider.issuer,
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
            **oidc,
        }
        with console_hub(database_url, data_dir, oidc=settings, **(console or {})) as (hub, clock):
            provider.clock = lambda: clock.now.timestamp()
            provider.redirect_uris = [f"{hub.base_url}/console/oidc/callback"]
            yield hub, clock, provider


def start(client: httpx.Client, next_path: str = "") -> httpx.Response:
    """The console's redirect to the provider (the flow cookie set), then the provider's answer."""
    begin = client.get("/console/oidc/login", params={"next": next_path} if next_path else None)
    assert begin.status_code == 303, begin.text
    assert "hub_oidc" in client.cookies
    return client.get(begin.headers["location"])


def sign_in(client: httpx.Client, next_path: str = "") -> httpx.Response:
    """The whole round trip; the callback's answer."""
    back = start(client, next_path)
    assert back.status_code == 302, back.text
    return client.get(back.headers["location"])


def reason(page: httpx.Response) -> str:
    found = REASON_RE.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def audit_rows(hub: LiveHub, action: str) -> list[AuditEntry]:
    with hub.db.sessions() as session:
        return list(
            session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        )


def refusals(hub: LiveHub) -> list[tuple[str, str]]:
    return [(row.details["reason"], row.target) for row in audit_rows(hub, "account.oidc_refused")]


def linked_identity(hub: LiveHub, username: str) -> tuple[str | None, str | None]:
    """The provider identity (issuer, subject) linked to the console account ``username``."""
    with hub.db.sessions() as session:
        row = session.scalar(select(UserAccount).where(UserAccount.username == username))
        assert row is not None
        return row.oidc_issuer, row.oidc_subject


def test_sign_in_maps_to_the_local_account_and_links_it(database_url: str, tmp_path: Path) -> None:
    with oidc_hub(database_url, tmp_path / "d") as (hub, _clock, provider), browser(hub) as client:
        add_account(hub, "lan", "officer")
        provider.add_user("vneid-0001", preferred_username="lan", email="lan@ninhbinh.gov.vn")
        provider.login_as = "vneid-0001"
        form = client.get("/console/login")
        assert f"Đăng nhập bằng {PROVIDER}" in form.text
        assert 'name="password"' in form.text  # local login stays
        done = sign_in(client, "/console/admin/users")
        assert done.status_code == 200, done.text
        # the Strict session cookie is set on a page that moves on by itself, not on a redirect
        assert 'http-equiv="refresh" content="0;url=/console/admin/users"' in done.text
        assert "hub_console" in client.cookies
        assert "hub_oidc" not in client.cookies  # the flow cookie is spent
        home = client.get("/console/")
        assert home.status_code == 200
        assert "Người dùng lan" in home.text
        # the same session as a password login: the logout form works with its CSRF token
        assert client.post("/console/logout", data={"csrf_token": csrf(home)}).status_code == 303
        assert linked_identity(hub, "lan") == (provider.issuer, "vneid-0001")
        trail = hub.audit_trail("lan")
        assert ("account.oidc_link", "lan") in trail
        assert trail.index(("account.oidc_login", "lan")) < trail.index(("session.login", "lan"))
        # linked: the next sign-in finds the account by iss + sub, whatever the username claim says
        provider.users["vneid-0001"]["preferred_username"] = "lan.renamed"
        assert sign_in(client).status_code == 200
        assert "Người dùng lan" in client.get("/console/").text
        assert len(audit_rows(hub, "account.oidc_link")) == 1
        assert len(audit_rows(hub, "account.oidc_login")) == 2
        # the password still works beside it
        client.cookies.clear()
        assert login(client, "lan").status_code == 303


def test_the_login_page_language_survives_the_provider(database_url: str, tmp_path: Path) -> None:
    """The provider sends the browser back without ``?lang=``: the flow keeps it."""
    with oidc_hub(database_url, tmp_path / "d") as (hub, _clock, provider), browser(hub) as client:
        add_account(hub, "lan", "officer")
        provider.add_user("vneid-0001", preferred_username="lan")
        provider.login_as = "vneid-0001"
        form = client.get("/console/login", params={"lang": "en", "next": "/console/audit"})
        button = re.search(r'id="oidc-login" href="([^"]+)"', form.text)
        assert button is not None, form.text
        begin = client.get(button.group(1).replace("&amp;", "&"))
        assert begin.status_code == 303, begin.text
        back = client.get(begin.headers["location"])
        assert "lang" not in back.headers["location"].split("?", 1)[0]
        done = client.get(back.headers["location"])
        assert done.status_code == 200, done.text
        assert "<h1>Signed in</h1>" in done.text
        assert 'content="0;url=/console/audit?lang=en"' in done.text
        # without a choice, the page follows the browser's language as before
        client.cookies.clear()
        assert "<h1>Đã đăng nhập</h1>" in sign_in(client).text


def test_state_and_code_are_bound_to_the_browser_and_used_once(database_url: str, tmp_path: Path) -> None:
    with oidc_hub(database_url, tmp_path / "d") as (hub, _clock, provider), browser(hub) as client:
        add_account(hub, "lan", "officer")
        provider.add_user("s1", preferred_username="lan")
        provider.login_as = "s1"
        # wrong state: the answer does not belong to this browser's flow
        back = start(client)
        callback = httpx.URL(back.headers["location"])
        forged = client.get(callback.copy_set_param("state", "forged-state"))
        assert forged.status_code == 400
        assert reason(forged) == "state"
        assert "hub_console" not in client.cookies
        # no flow cookie at all (another browser, login CSRF)
        back = start(client)
        with browser(hub) as other:
            stranger = other.get(back.headers["location"])
        assert stranger.status_code == 400
        assert reason(stranger) == "state"
        # the genuine answer, then the same answer again: the flow cookie is gone
        done = client.get(back.headers["location"])
        assert done.status_code == 200
        again = client.get(back.headers["location"])
        assert again.status_code == 400
        assert reason(again) == "state"
        # the used code under a fresh flow: the provider refuses it
        used_code = httpx.URL(back.headers["location"]).params["code"]
        fresh = httpx.URL(start(client).headers["location"])
        replay = client.get(fresh.copy_set_param("code", used_code))
        assert replay.status_code == 401
        assert reason(replay) == "token_endpoint"
        # the provider refused to sign the user in
        provider.login_as = None
        denied = client.get(start(client).headers["location"])
        assert denied.status_code == 401
        assert reason(denied) == "provider_error"
        assert [r for r, _ in refusals(hub)] == [
            "state",
            "state",
            "state",
            "token_endpoint",
            "provider_error",
        ]
        # nothing of the code or token reaches the audit log
        for row in audit_rows(hub, "account.oidc_refused"):
            assert used_code not in str(row.details)
            assert set(row.details) == {"reason", "issuer"}


#: tamper of the next ID token → the refusal's reason.
TOKEN_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("wrong nonce", {"claims": {"nonce": "another-sign-in"}}, "nonce"),
    ("no nonce", {"claims": {"nonce": None}}, "nonce"),
    ("wrong audience", {"claims": {"aud": "another-client"}}, "audience"),
    ("several audiences, no azp", {"claims": {"aud": ["motcua-hub", "another-client"]}}, "audience"),
    ("wrong issuer", {"claims": {"iss": "https://idp.example.org"}}, "issuer"),
    ("expired", {"claims": {"exp": -3600}}, "expired"),
    ("issued in the future", {"claims": {"iat": 3600}}, "claims"),
    ("no subject", {"claims": {"sub": None}}, "claims"),
    ("key not in the JWKS", {"foreign_key": True}, "signature"),
    ("alg none", {"alg_none": True}, "alg"),
]


def test_id_token_refusals(database_url: str, tmp_path: Path) -> None:
    with oidc_hub(database_url, tmp_path / "d") as (hub, clock, provider), browser(hub) as client:
        add_account(hub, "lan", "officer")
        provider.add_user("s1", preferred_username="lan")
        provider.login_as = "s1"
        now = int(clock.now.timestamp())
        for case, tamper, expected in TOKEN_CASES:
            claims = dict(tamper.get("claims", {}))
            for name in ("exp", "iat"):  # relative to the clock
                if name in claims:
                    claims[name] = now + claims[name]
            provider.tamper = {**tamper, "claims": claims}
            answer = sign_in(client)
            assert answer.status_code == 401, case
            assert reason(answer) == expected, case
            assert "hub_console" not in client.cookies, case
        assert [r for r, _ in refusals(hub)] == [expected for _, _, expected in TOKEN_CASES]
        # within the leeway (60 s by default): accepted
        provider.tamper = {"claims": {"exp": now - 30}}
        assert sign_in(client).status_code == 200
        assert linked_identity(hub, "lan")[1] == "s1"


def test_identity_must_map_to_an_enabled_account(database_url: str, tmp_path: Path) -> None:
    with oidc_hub(database_url, tmp_path / "d") as (hub, _clock, provider), browser(hub) as client:
        add_account(hub, "lan", "officer")
        add_account(hub, "admin", "admin")
        provider.add_user("s-nobody", preferred_username="nobody")
        provider.add_user("s-lan", preferred_username="lan")
        provider.add_user("s-other", preferred_username="lan")
        provider.add_user("s-noclaim")
        provider.login_as = "s-nobody"
        unknown = sign_in(client)
        assert unknown.status_code == 401
        assert reason(unknown) == "unknown_identity"
        assert "quản trị viên" in unknown.text
        provider.login_as = "s-noclaim"
        assert reason(sign_in(client)) == "unknown_identity"
        with hub.db.sessions() as session:  # never auto-created
            assert session.scalar(select(UserAccount).where(UserAccount.username == "nobody")) is None
        console_of(hub).accounts.disable("lan", actor="admin")
        provider.login_as = "s-lan"
        disabled = sign_in(client)
        assert disabled.status_code == 401
        assert reason(disabled) == "disabled"
        console_of(hub).accounts.enable("lan", actor="admin")
        assert sign_in(client).status_code == 200
        # another identity presenting the same username cannot take the linked account over
        client.cookies.clear()
        provider.login_as = "s-other"
        taken = sign_in(client)
        assert reason(taken) == "linked_elsewhere"
        assert client.get("/console/").status_code == 303
        assert refusals(hub) == [
            ("unknown_identity", "oidc:nobody"),
            ("unknown_identity", "oidc"),
            ("disabled", "lan"),
            ("linked_elsewhere", "lan"),
        ]
        assert all(row.actor.startswith("client:") for row in audit_rows(hub, "account.oidc_refused"))
        # the admin sees the link and removes it (the person's identity was reissued) on the
        # accounts page: the new identity links at its sign-in
        with browser(hub) as admin:
            assert login(admin, "admin").status_code == 303
            users = admin.get("/console/admin/users")
            assert f"Đã liên kết với {PROVIDER}" in users.text
            assert users.text.count("/oidc-unlink") == 1  # only lan is linked
            unlinked = admin.post("/console/admin/users/lan/oidc-unlink", data={"csrf_token": csrf(users)})
            assert unlinked.status_code == 200
            assert "/oidc-unlink" not in unlinked.text
        assert ("account.oidc_unlink", "admin") in hub.audit_trail("lan")
        assert sign_in(client).status_code == 200
        assert linked_identity(hub, "lan")[1] == "s-other"


def test_email_domain_and_group_restrictions(database_url: str, tmp_path: Path) -> None:
    restricted: dict[str, Any] = {"allowed_email_domains": ["NinhBinh.gov.vn"], "required_groups": ["motcua"]}
    with (
        oidc_hub(database_url, tmp_path / "d", **restricted) as (hub, _clock, provider),
        browser(hub) as client,
    ):
        add_account(hub, "lan", "officer")
        good = {"preferred_username": "lan", "email": "lan@ninhbinh.gov.vn", "email_verified": True}
        provider.add_user("s1", **good, groups=["motcua", "other"])
        provider.login_as = "s1"
        cases: list[tuple[dict[str, Any], str]] = [
            ({"email": "lan@gmail.com"}, "email_domain"),
            ({"email_verified": False}, "email_domain"),
            ({"email": None}, "email_domain"),
            ({"groups": ["other"]}, "group"),
            ({"groups": None}, "group"),
        ]
        for claims, expected in cases:
            provider.tamper = {"claims": claims}
            assert reason(sign_in(client)) == expected, claims
        assert sign_in(client).status_code == 200
        assert [r for r, _ in refusals(hub)] == [expected for _, expected in cases]


def test_provider_down_is_a_clear_page(database_url: str, tmp_path: Path) -> None:
    with oidc_hub(database_url, tmp_path / "d") as (hub, _clock, provider), browser(hub) as client:
        add_account(hub, "lan", "officer")
        provider.add_user("s1", preferred_username="lan")
        provider.login_as = "s1"
        back = start(client)  # discovery is cached from here on
        provider.stop()
        at_token = client.get(back.headers["location"])
        assert at_token.status_code == 502
        assert reason(at_token) == "unavailable"
        assert "không kết nối được" in at_token.text
        console_of(hub).oidc._provider.clear()  # type: ignore[union-attr]  # discovery cache expired
        at_start = client.get("/console/oidc/login")
        assert at_start.status_code == 502
        assert reason(at_start) == "unavailable"
        assert [r for r, _ in refusals(hub)] == ["unavailable", "unavailable"]
        assert login(client, "lan").status_code == 303  # local accounts do not depend on it
        provider.start()
        client.cookies.clear()
        assert sign_in(client).status_code == 200


def test_password_login_can_be_hidden(database_url: str, tmp_path: Path) -> None:
    with (
        oidc_hub(database_url, tmp_path / "d", hide_password_login=True) as (hub, _clock, _provider),
        browser(hub) as client,
    ):
        add_account(hub, "lan", "officer")
        form = client.get("/console/login", params={"lang": "en"})
        assert 'name="password"' not in form.text
        assert f"Sign in with {PROVIDER}" in form.text
        refused = client.post(
            "/console/login",
            data={"username": "lan", "password": "x" * 12, "csrf_token": client.cookies["hub_login"]},
        )
        assert refused.status_code == 403
        assert "hub_console" not in client.cookies


def test_without_oidc_settings_there_is_no_button_and_no_route(database_url: str, tmp_path: Path) -> None:
    with console_hub(database_url, tmp_path / "d") as (hub, _clock), browser(hub) as client:
        assert "oidc" not in client.get("/console/login").text
        assert client.get("/console/oidc/login").status_code == 404
        assert client.get("/console/oidc/callback", params={"state": "x", "code": "y"}).status_code == 404


def _oidc(**values: Any) -> dict[str, Any]:
    return {
        "console": {
            "oidc": {
                "provider_name": "IdP",
                "issuer": "https://idp.example.gov.vn",
                "client_id": "hub",
                **values,
            }
        }
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"issuer": "http://idp.example.gov.vn"}, "console.oidc.issuer must be an https:// URL"),
        ({"redirect_base_url": "ftp://hub"}, "console.oidc.redirect_base_url must be an https:// URL"),
        ({"algorithms": ["none"]}, "console.oidc.algorithms: ['none'] not allowed"),
        ({"algorithms": ["HS256"]}, "console.oidc.algorithms: ['HS256'] not allowed"),
        ({"scopes": ["profile"]}, "must include 'openid'"),
        ({"leeway_seconds": 3600}, "console.oidc.leeway_seconds"),
        ({"client_id": ""}, "console.oidc.client_id"),
    ],
)
def test_settings_are_checked_at_start(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        load_settings(**_oidc(**values))


def test_client_secret_comes_from_the_secrets_directory(tmp_path: Path) -> None:
    (tmp_path / "hub_console__oidc__client_secret").write_text("from-a-file\n")
    settings = load_settings(secrets_dir=tmp_path, **_oidc())
    oidc = settings.console.oidc
    assert oidc is not None
    assert oidc.client_secret is not None
    assert oidc.client_secret.get_secret_value() == "from-a-file"
    assert "from-a-file" not in repr(settings)


def test_key_rotation_fetches_the_jwks_again(database_url: str, tmp_path: Path) -> None:
    with oidc_hub(database_url, tmp_path / "d") as (hub, _clock, provider), browser(hub) as client:
        add_account(hub, "lan", "officer")
        provider.add_user("s1", preferred_username="lan")
        provider.login_as = "s1"
        assert sign_in(client).status_code == 200  # the JWKS is cached from here on
        provider.key = RSAKey.generate_key(2048, parameters={"kid": "hub-test-2", "use": "sig"})
        client.cookies.clear()
        # fetched less than a minute ago: an unknown kid does not make the hub fetch it again
        assert reason(sign_in(client)) == "signature"
        oidc = console_of(hub).oidc
        assert oidc is not None
        oidc.monotonic = lambda: float("inf")  # the once-a-minute limit of re-fetches has passed
        assert sign_in(client).status_code == 200
        assert "Người dùng lan" in client.get("/console/").text


def test_refusals_count_against_the_client_address(database_url: str, tmp_path: Path) -> None:
    throttled = {"login_failures_per_address_per_minute": 2}
    with (
        oidc_hub(database_url, tmp_path / "d", console=throttled) as (hub, _clock, provider),
        browser(hub) as client,
    ):
        add_account(hub, "lan", "officer")
        provider.add_user("s-nobody", preferred_username="nobody")
        provider.add_user("s-lan", preferred_username="lan")
        provider.login_as = "s-nobody"
        assert reason(sign_in(client)) == "unknown_identity"
        assert reason(sign_in(client)) == "unknown_identity"
        provider.login_as = "s-lan"
        slowed = sign_in(client)  # even a good identity waits, like a right password would
        assert slowed.status_code == 429
        assert reason(slowed) == "rate_limited"
        assert "hub_console" not in client.cookies
        assert login(client, "lan").status_code == 429  # one count for both ways in
