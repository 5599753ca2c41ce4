"""Personal data on ``GET /api/v1/dossiers/{code}``: masked for every role, in clear only with
``?reveal=pii`` for the roles the route declares, and every reveal audited (docs/security.md §3)."""

from __future__ import annotations

from fastapi.routing import APIRoute
from sqlalchemy import select

from hub.api.access_matrix import app_routes
from hub.api.deps import reveal_policy
from hub.db.models import ApiRole, AuditEntry
from tests.api.livehub import LiveHub, dossier_json

CODE = "000.00.18.H42-251125-0001"
PATH = f"/api/v1/dossiers/{CODE}"
CCCD = "001099012345"
PHONE = "0912345678"


def _create(hub: LiveHub) -> None:
    owner = {"name": "Nguyễn Văn An", "id_number": CCCD, "identities": [{"kind": 1, "number": CCCD}]}
    body = dossier_json(owner=owner, contact={"phone": PHONE, "other": f"Gọi {PHONE} trước 17h"})
    with hub.client("source") as client:
        assert client.post("/api/v1/dossiers", json={"dossier": body}).status_code == 201


def _reveals(hub: LiveHub) -> list[tuple[str, str, dict[str, object]]]:
    with hub.db.sessions() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "pii.reveal")).all()
        return [(row.actor, row.target, row.details) for row in rows]


def _declared_reveal_roles(hub: LiveHub) -> frozenset[ApiRole]:
    route = next(
        r for path, r in app_routes(hub.app) if path == "/api/v1/dossiers/{code}" and "GET" in r.methods
    )
    assert isinstance(route, APIRoute)
    policy = reveal_policy(route)
    assert policy is not None
    return policy.roles


def test_every_role_reads_the_dossier_masked(hub: LiveHub) -> None:
    _create(hub)
    for role in ("source", "officer", "technician", "admin"):
        with hub.client(role) as client:
            response = client.get(PATH)
        assert response.status_code == 200, role
        assert CCCD not in response.text, role
        assert PHONE not in response.text, role
        body = response.json()
        assert body["owner"]["id_number"] == "*********345"
        assert body["owner"]["identities"] == [{"kind": 1, "number": "*********345"}]
        assert body["contact"]["phone"] == "091*****78"
        assert body["contact"]["other"] == "Gọi 091*****78 trước 17h"
        assert body["owner"]["name"] == "Nguyễn Văn An"  # the rest is as stored
        assert body["code"] == CODE
    assert _reveals(hub) == []


def test_reveal_only_for_the_declared_roles_and_audited(hub: LiveHub) -> None:
    _create(hub)
    allowed = _declared_reveal_roles(hub)
    assert allowed == {ApiRole.OFFICER, ApiRole.ADMIN}
    readers = [role for role in ApiRole if role.value in hub.tokens and role is not ApiRole.PORTAL]
    for role in readers:
        with hub.client(role.value) as client:
            response = client.get(PATH, params={"reveal": "pii"})
        if role in allowed:
            assert response.status_code == 200, role
            assert response.json()["owner"]["id_number"] == CCCD
            assert response.json()["contact"]["phone"] == PHONE
        else:
            assert response.status_code == 403, role
            assert CCCD not in response.text
            assert response.json()["error"]["details"]["required"] == sorted(r.value for r in allowed)
    reveals = _reveals(hub)
    assert sorted(actor for actor, _, _ in reveals) == sorted(f"test-{role.value}" for role in allowed)
    assert {target for _, target, _ in reveals} == {CODE}
    assert all(details["kind"] == "dossier" for _, _, details in reveals)


def test_reveal_of_an_unknown_dossier_is_404_and_not_audited(hub: LiveHub) -> None:
    with hub.client("officer") as client:
        assert client.get(PATH, params={"reveal": "pii"}).status_code == 404
        assert client.get(PATH, params={"reveal": "everything"}).status_code == 422
    assert _reveals(hub) == []
