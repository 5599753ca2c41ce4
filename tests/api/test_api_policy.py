"""The role × route matrix: every route declares who may call it, and the server keeps to it.

The expected answer of each (route, method, caller) is read from the route's own declaration
(:func:`hub.api.deps.route_policy`), so a new route or a new :class:`ApiRole` is covered without
editing this file; docs/security.md §1 holds the same matrix, generated and checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

from hub.api.access_matrix import CALLERS, END, START, api_routes, app_routes, matrix_rows, render, rewrite
from hub.api.deps import route_policy
from hub.db.models import ApiRole
from tests.api.livehub import LiveHub

SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def _concrete(path: str) -> str:
    """A path with every parameter filled (``1`` parses as an int and as a string)."""
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_declares_an_access_policy() -> None:
    routes = api_routes()
    assert len(routes) > 20
    missing = []
    for route in routes:
        try:
            route_policy(route)
        except LookupError as exc:
            missing.append(str(exc))
    assert missing == []


def test_every_app_route_answers_401_and_403_exactly_where_its_policy_says(full_hub: LiveHub) -> None:
    served = app_routes(full_hub.app)
    assert {(path, frozenset(r.methods)) for path, r in served} == {
        (r.path, frozenset(r.methods)) for r in api_routes()
    }
    assert {role.value for role in ApiRole} <= set(full_hub.tokens)
    wrong: list[str] = []
    checked = 0
    for served_path, route in served:
        policy = route_policy(route)
        path = _concrete(served_path)
        for method in sorted(route.methods):
            for caller in CALLERS:
                with full_hub.client(caller.value if caller else None) as client:
                    status = client.request(method, path).status_code
                checked += 1
                if policy.allows(caller):
                    expected_ok = status not in (401, 403)
                else:
                    expected_ok = status == (401 if caller is None else 403)
                if not expected_ok:
                    wrong.append(f"{method} {route.path} as {caller or 'no key'}: {status}")
    assert wrong == []
    assert checked >= len(served) * len(CALLERS)


def test_the_matrix_in_docs_security_md_is_current() -> None:
    """Regenerate with ``python -m hub.api.access_matrix docs/security.md``."""
    document = SECURITY_DOC.read_text(encoding="utf-8")
    assert START in document
    assert END in document
    assert rewrite(document, render(matrix_rows(api_routes()))) == document, (
        "docs/security.md is stale: run python -m hub.api.access_matrix docs/security.md"
    )
