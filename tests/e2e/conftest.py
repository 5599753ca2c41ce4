"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, a live hub per test.

The browser is ``/usr/bin/chromium`` from Debian's ``chromium`` package (scripts/bootstrap.sh
installs it). Playwright's own browser download is never used: ``playwright install`` is not
run, and the browsers path points at a directory that does not exist, so a Playwright build
looking for its bundled browser would fail instead of finding one. A missing Chromium fails the
run with the fix to apply; it is not skipped.

The tests run on SQLite (the embedded default): the browser checks the pages, and the console's
storage is tested on both backends in ``tests/console/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.accounts.support import PASSWORD
from tests.conftest import migrated_database
from tests.console.support import console_hub, console_of
from tests.e2e.harness import ACCOUNTS, ConsoleSite, console_site, screenshot_folder

CHROMIUM = "chromium"
#: The console settings of every site: small lockout numbers keep the lockout test short.
SITE_CONSOLE = {"lockout_threshold": 3, "lockout_seconds": 60, "idle_timeout_minutes": 1}


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Debian's headless Chromium, launched once per module: the sync API keeps an event loop
    running while it is open, and later tests call ``asyncio.run``."""
    executable = shutil.which(CHROMIUM)
    if executable is None:
        pytest.fail(
            "the browser tests need Debian's Chromium (/usr/bin/chromium): run scripts/bootstrap.sh "
            "(or apt-get install chromium); Playwright's own browser download is not used"
        )
    nowhere = tmp_path_factory.getbasetemp() / "no-playwright-browsers"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PLAYWRIGHT_BROWSERS_PATH", str(nowhere))
        env.setenv("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        with sync_playwright() as playwright:
            # Chromium refuses its sandbox as root (containers, CI); elsewhere it keeps it.
            args = ["--no-sandbox"] if os.geteuid() == 0 else []
            browser = playwright.chromium.launch(executable_path=executable, args=args)
            debian = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True)
            assert browser.version in debian.stdout, (browser.version, debian.stdout)
            assert not nowhere.exists()  # nothing was downloaded
            yield browser
            browser.close()


@pytest.fixture
def site(request: pytest.FixtureRequest, tmp_path: Path, chromium: Browser) -> Iterator[ConsoleSite]:
    """A live hub with the console on loopback, one account per role (:data:`ACCOUNTS`)."""
    shots = screenshot_folder(tmp_path)
    with (
        migrated_database(request, "sqlite", tmp_path) as url,
        console_hub(url, tmp_path / "data", **SITE_CONSOLE) as (hub, clock),
    ):
        accounts = console_of(hub).accounts
        for username, (display_name, roles) in ACCOUNTS.items():
            accounts.create(username, display_name, PASSWORD, roles, actor="tests", unit="Sở Nội vụ")
        with console_site(hub, clock, chromium, shots) as running:
            yield running
