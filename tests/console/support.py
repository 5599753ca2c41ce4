"""A live hub with the console on plain-HTTP loopback, and a browser-like client."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from hub.console.policy import Console
from tests.accounts.support import FAST, PASSWORD, Clock
from tests.api.livehub import LiveHub, live_hub

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@contextmanager
def console_hub(database_url: str, data_dir: Path, **console: Any) -> Iterator[tuple[LiveHub, Clock]]:
    """A hub whose console sends non-Secure cookies (loopback HTTP) and reads ``Clock``."""
    settings = {**FAST, "secure_cookies": False, **console}
    with live_hub(database_url, data_dir, console=settings) as running:
        clock = Clock()
        console_of(running).accounts.clock = clock
        yield running, clock


def console_of(hub: LiveHub) -> Console:
    console: Console = hub.app.state.console
    return console


def add_account(hub: LiveHub, username: str, *roles: str, password: str = PASSWORD) -> None:
    console_of(hub).accounts.create(username, f"Người dùng {username}", password, roles, actor="tests")


def csrf(page: httpx.Response) -> str:
    found = CSRF_RE.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def login(client: httpx.Client, username: str, password: str = PASSWORD, **params: str) -> httpx.Response:
    form = client.get("/console/login", params=params)
    return client.post(
        "/console/login",
        params=params,
        data={
            "username": username,
            "password": password,
            "csrf_token": csrf(form),
            "next": params.get("next", ""),
        },
    )


def browser(hub: LiveHub) -> httpx.Client:
    return hub.client(follow_redirects=False)


def finished_job_page(client: httpx.Client, url: str, *, within: float, every: float) -> httpx.Response:
    """The page of a console background job, reloaded every ``every`` seconds until it no longer
    refreshes itself (the job is over); fails after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        page = client.get(url)
        assert page.status_code == 200
        if 'http-equiv="refresh"' not in page.text:
            return page
        assert time.monotonic() < deadline, page.text
        time.sleep(every)
