"""The role × page matrix of the console: every page declares who may open it, the server
keeps to it, and docs/security.md §10 holds the same table (generated)."""

from __future__ import annotations

import re
from pathlib import Path

from hub.api.access_matrix import ACCOUNT_CALLERS, console_routes, rewrite_all
from hub.console.policy import console_policy
from tests.console.support import add_account, browser, console_hub, csrf, login

SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_every_console_page_answers_as_its_policy_says(database_url: str, tmp_path: Path) -> None:
    routes = console_routes()
    assert len(routes) >= 8
    wrong: list[str] = []
    with console_hub(database_url, tmp_path / "d") as (hub, _clock):
        add_account(hub, "root", "admin")  # the last admin stays, whatever the pages do
        for caller in ACCOUNT_CALLERS:
            if caller is not None:
                add_account(hub, f"as-{caller.value}", caller.value)
        for route in routes:
            policy = console_policy(route)
            assert policy is not None
            path = re.sub(r"\{[^}]+\}", "nobody", route.path)
            for method in sorted(route.methods or ()):
                for caller in ACCOUNT_CALLERS:
                    with browser(hub) as client:
                        data: dict[str, str] = {}
                        if caller is not None:
                            assert login(client, f"as-{caller.value}").status_code == 303
                            data["csrf_token"] = csrf(client.get("/console/"))
                        if policy.public and method == "POST":  # the login form's own token
                            data["csrf_token"] = csrf(client.get("/console/login"))
                        status = client.request(method, path, data=data or None).status_code
                    refused_to_login = status == 303 and caller is None
                    if policy.allows(frozenset({caller}) if caller else None):
                        ok = status != 403 and not refused_to_login
                    else:
                        ok = status == (303 if caller is None else 403)
                    if not ok:
                        wrong.append(f"{method} {route.path} as {caller or 'not logged in'}: {status}")
    assert wrong == []


def test_the_console_matrix_in_docs_security_md_is_current() -> None:
    """Regenerate with ``python -m hub.api.access_matrix docs/security.md``."""
    document = SECURITY_DOC.read_text(encoding="utf-8")
    assert "| GET | `/console/admin/users` | ✗ | ✗ | ✗ | ✗ | ✓ |" in document
    assert rewrite_all(document) == document
