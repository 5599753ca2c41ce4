"""Sign-in through the OIDC provider in headless Chromium, the provider on another site.

The hub is served at ``127.0.0.1`` and the local provider at ``localhost``: two sites, so the
browser applies its cross-site cookie rules as it would with the province's real provider
(the ``SameSite=Lax`` flow cookie follows the provider's redirect back; the ``Strict`` session
cookie is used once the callback page has moved on by itself: a redirect from the callback,
still in the navigation the provider's page started, would go without it). docs/security.md
§10.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from hub.simulators.oidc import OidcProvider
from tests.accounts.support import PASSWORD
from tests.conftest import migrated_database
from tests.console.support import console_hub, console_of
from tests.e2e.harness import ConsoleSite, Screenshots, console_site

PROVIDER = "Cổng xác thực tỉnh"


@pytest.fixture
def oidc_site(
    request: pytest.FixtureRequest, tmp_path: Path, chromium: Browser
) -> Iterator[tuple[ConsoleSite, OidcProvider]]:
    shots = Screenshots(tmp_path / "screenshots")
    shots.directory.mkdir()
    with OidcProvider(host="localhost") as provider:
        oidc = {
            "provider_name": PROVIDER,
            "issuer": provider.issuer,
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
        }
        with (
            migrated_database(request, "sqlite", tmp_path) as url,
            console_hub(url, tmp_path / "data", oidc=oidc) as (hub, clock),
        ):
            provider.clock = lambda: clock.now.timestamp()
            provider.redirect_uris = [f"{hub.base_url}/console/oidc/callback"]
            console_of(hub).accounts.create(
                "lan", "Nguyễn Thị Lan", PASSWORD, ["technician"], actor="tests", unit="Sở Nội vụ"
            )
            with console_site(hub, clock, chromium, shots) as running:
                yield running, provider


def test_the_provider_button_signs_in(oidc_site: tuple[ConsoleSite, OidcProvider]) -> None:
    site, provider = oidc_site
    assert provider.base_url.startswith("http://localhost:")
    assert site.hub.base_url.startswith("http://127.0.0.1:")
    provider.add_user("vneid-0001", preferred_username="lan")
    provider.login_as = "vneid-0001"
    provider.interactive = True  # the browser leaves the provider from a page of the provider's
    page = site.page()
    page.goto("/console/ops")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    expect(page.locator("#password")).to_be_visible()  # the password form stays
    button = page.get_by_role("link", name=f"Đăng nhập bằng {PROVIDER}")
    site.shot(page, "login-oidc")
    button.click()
    expect(page).to_have_url(re.compile(r"^http://localhost:\d+/authorize\?"))
    page.locator("#approve").click()
    expect(page).to_have_url(re.compile(r"/console/ops$"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.locator("header")).to_contain_text("Nguyễn Thị Lan")
    site.shot(page, "oidc-signed-in")
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert cookies["hub_console"]["sameSite"] == "Strict"
    assert cookies["hub_console"]["httpOnly"]
    assert "hub_oidc" not in cookies  # the flow cookie is spent
    # logging out works as for a password login
    page.get_by_role("button", name="Đăng xuất").click()
    expect(page).to_have_url(re.compile(r"/console/login"))


def test_an_unknown_identity_sees_why(oidc_site: tuple[ConsoleSite, OidcProvider]) -> None:
    site, provider = oidc_site
    provider.add_user("vneid-0002", preferred_username="khach")
    provider.login_as = "vneid-0002"
    page = site.page()
    page.goto("/console/login")
    page.get_by_role("link", name=f"Đăng nhập bằng {PROVIDER}").click()
    expect(page.locator("#oidc-error")).to_contain_text("Chưa có tài khoản nào gắn với danh tính này")
    expect(page.get_by_role("link", name="Quay lại trang đăng nhập")).to_be_visible()
    site.shot(page, "oidc-refused")
    assert site.hub.audit_trail("oidc:khach") == [("account.oidc_refused", "client:127.0.0.1")]
