"""The console in a real headless Chromium: a live hub, one account per role, pages, screenshots.

:class:`ConsoleSite` is what a test gets (fixture ``site`` in ``conftest.py``): the running hub
(:mod:`tests.console.support`, console on plain-HTTP loopback), its clock (the accounts' time
seam, so session expiry needs no real wait), and :meth:`ConsoleSite.page` / :meth:`ConsoleSite.
login` to open a fresh browser context. A new console flow (DLQ, signing desk) is a test that
calls ``site.login("technician")``, clicks through the page and ``site.shot(page, "name")``s it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Response, expect

from hub.console.policy import console_policy
from hub.console.routes import router
from hub.db.account_tables import AccountRole
from tests.accounts.support import PASSWORD, Clock
from tests.api.livehub import LiveHub
from tests.console.support import console_of

#: The accounts every site has: username → (display name, roles). Usernames are the role names.
ACCOUNTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("Trần Quản Trị", ("admin",)),
    "technician": ("Lê Kỹ Thuật", ("technician",)),
    "officer": ("Nguyễn Thị Cán Bộ", ("officer",)),
    "clerk": ("Phạm Văn Thư", ("clerk",)),
}
#: Fail fast: a missing element is a failed test in seconds, not the 30 s default.
TIMEOUT_MS = 10_000


def console_pages() -> list[tuple[str, frozenset[AccountRole] | None]]:
    """``(path, roles allowed)`` of every console GET page without path parameters, read from
    the routes' own declarations (``None``: public). New pages are covered without editing."""
    pages: list[tuple[str, frozenset[AccountRole] | None]] = []
    for route in router.routes:
        if not isinstance(route, APIRoute) or "GET" not in (route.methods or ()) or "{" in route.path:
            continue
        policy = console_policy(route)
        if policy is None or route.path.startswith("/console/static/"):
            continue
        pages.append((route.path, None if policy.public else policy.roles))
    return pages


@dataclass
class Screenshots:
    """Full-page PNGs in the test's tmp dir, copied to ``export`` (E2E_SCREENSHOTS_DIR) if set."""

    directory: Path
    export: Path | None = None

    def take(self, page: Page, name: str) -> Path:
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if self.export is not None:
            self.export.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.export / path.name)
        return path


@dataclass
class ConsoleSite:
    """One test's console: the live hub, its clock, the browser, the screenshots."""

    hub: LiveHub
    clock: Clock
    browser: Browser
    shots: Screenshots
    contexts: list[BrowserContext] = field(default_factory=list, repr=False)
    #: Errors the pages logged (a CSP violation, a missing stylesheet): none are expected.
    errors: list[str] = field(default_factory=list)

    def page(self, **context: Any) -> Page:
        """A page in a browser context of its own (its own cookies), Vietnamese unless told."""
        context.setdefault("locale", "vi-VN")
        browser_context = self.browser.new_context(base_url=self.hub.base_url, **context)
        browser_context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(browser_context)
        page = browser_context.new_page()
        page.on("console", self._console_message)
        page.on("response", self._response)
        return page

    def _console_message(self, message: ConsoleMessage) -> None:
        # Chromium logs every 4xx as "Failed to load resource"; a page's own 401/403 is expected,
        # a sub-resource's is caught in _response. What remains: CSP violations, other errors.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"{message.text} ({message.location.get('url')})")

    def _response(self, response: Response) -> None:
        # The browser asks for /favicon.ico on its own; the hub serves no icon (not a page's).
        own = response.request.is_navigation_request() or response.url.endswith("/favicon.ico")
        if response.status >= 400 and not own:
            self.errors.append(f"{response.status} {response.url}")

    def login(self, username: str, password: str = PASSWORD, page: Page | None = None) -> Page:
        """Log ``username`` in through the form (mouse-free), landing on the console home."""
        page = page or self.page()
        page.goto("/console/login")
        page.get_by_label(re.compile("Tên đăng nhập|Username")).fill(username)
        page.get_by_label(re.compile("Mật khẩu|Password")).fill(password)
        page.get_by_label(re.compile("Mật khẩu|Password")).press("Enter")
        expect(page).to_have_url(re.compile(r"/console/(\?.*)?$"))
        return page

    def shot(self, page: Page, name: str) -> Path:
        return self.shots.take(page, name)

    def account_names(self) -> set[str]:
        return {account.username for account in console_of(self.hub).accounts.list()}

    def close(self) -> None:
        for browser_context in self.contexts:
            browser_context.close()


def screenshot_folder(tmp_path: Path) -> Screenshots:
    """The test's screenshot folder (``screenshots/`` in its tmp dir), copied to
    ``E2E_SCREENSHOTS_DIR`` when that is set."""
    export = os.environ.get("E2E_SCREENSHOTS_DIR")
    shots = Screenshots(tmp_path / "screenshots", Path(export) if export else None)
    shots.directory.mkdir()
    return shots


@contextmanager
def console_site(hub: LiveHub, clock: Clock, browser: Browser, shots: Screenshots) -> Iterator[ConsoleSite]:
    """The test's :class:`ConsoleSite`: its browser contexts closed afterwards, and then no page
    may have logged an error."""
    running = ConsoleSite(hub, clock, browser, shots)
    try:
        yield running
    finally:
        running.close()
    assert running.errors == [], running.errors
