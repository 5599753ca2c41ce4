"""Authentication and roles over a real server: 401 vs 403, revocation, bootstrap, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.auth.keys import ApiKeyService, Principal, hash_token, parse_token
from hub.db.models import ApiKey, ApiRole
from schemas.errors import ConflictError, InvalidInputError
from tests.api.livehub import LiveHub, dossier_json

CREATE = "/api/v1/dossiers"


def test_missing_credentials_are_401_with_bearer_challenge(hub: LiveHub) -> None:
    with hub.client() as client:
        response = client.post(CREATE, json={"dossier": dossier_json()})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert error["message_vi"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer hub_aaaaaaaa_" + "x" * 43},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "hub_zzzzzzzz_" + "y" * 43},
    ],
)
def test_unknown_or_malformed_tokens_are_401(hub: LiveHub, headers: dict[str, str]) -> None:
    with hub.client(headers=headers) as client:
        response = client.get("/api/v1/dossiers/000.00.18.H42-251125-0001")
    assert response.status_code == 401
    assert "bearer" in response.headers["www-authenticate"].lower()


@pytest.mark.parametrize(
    ("role", "expected"),
    [("source", 201), ("admin", 201), ("portal", 403), ("officer", 403), ("technician", 403)],
)
def test_intake_needs_source_role(hub: LiveHub, role: str, expected: int) -> None:
    with hub.client(role) as client:
        response = client.post(CREATE, json={"dossier": dossier_json()})
    assert response.status_code == expected, response.text
    if expected == 403:
        body = response.json()["error"]
        assert body["code"] == "forbidden"
        assert body["details"]["role"] == role
        assert "www-authenticate" not in response.headers


def test_read_roles(hub: LiveHub) -> None:
    with hub.client("source") as client:
        assert client.post(CREATE, json={"dossier": dossier_json()}).status_code == 201
    path = "/api/v1/dossiers/000.00.18.H42-251125-0001"
    for role, expected in [("officer", 200), ("technician", 200), ("admin", 200), ("portal", 403)]:
        with hub.client(role) as client:
            assert client.get(path).status_code == expected, role


def test_x_api_key_header_works(hub: LiveHub) -> None:
    with hub.client(headers={"X-API-Key": hub.tokens["source"]}) as client:
        assert client.post(CREATE, json={"dossier": dossier_json()}).status_code == 201


def test_revoked_key_is_refused_and_audited(hub: LiveHub) -> None:
    keys: ApiKeyService = hub.app.state.services.keys  # the server's own: it forgets verified keys
    issued = keys.create("to-revoke", "source", actor="tests", agency_codes=["000.00.18.H42"])
    with hub.client(headers={"Authorization": f"Bearer {issued.token}"}) as client:
        assert client.post(CREATE, json={"dossier": dossier_json()}).status_code == 201
        keys.revoke("to-revoke", actor="tests")
        assert client.get("/api/v1/dossiers/000.00.18.H42-251125-0001").status_code == 401
    assert [action for action, _ in hub.audit_trail("to-revoke")] == ["api_key.create", "api_key.revoke"]


def test_verified_keys_are_remembered_briefly(hub: LiveHub) -> None:
    """A revocation made elsewhere (another process: ``hub keys revoke``) reaches a server that
    verified the key within the cache period, and no later."""
    clock = [0.0]
    server = ApiKeyService(hub.db, cache_seconds=5, clock=lambda: clock[0])
    elsewhere = ApiKeyService(hub.db)
    issued = elsewhere.create("cached", "source", actor="tests")
    assert server.authenticate(issued.token) == Principal("cached", ApiRole.SOURCE)
    elsewhere.revoke("cached", actor="tests")
    clock[0] = 4.9
    assert server.authenticate(issued.token) == Principal("cached", ApiRole.SOURCE)
    clock[0] = 5.1
    assert server.authenticate(issued.token) is None
    assert elsewhere.authenticate(issued.token) is None


def test_only_a_hash_is_stored(hub: LiveHub) -> None:
    issued = ApiKeyService(hub.db).create("hashed", "officer", actor="tests")
    assert parse_token(issued.token) == issued.info.prefix
    with hub.db.sessions() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.name == "hashed"))
    assert row is not None
    assert row.key_hash == hash_token(issued.token)
    assert issued.token not in (row.key_hash, row.key_prefix)


def test_key_service_refuses_bad_names_roles_and_duplicates(hub: LiveHub) -> None:
    keys = ApiKeyService(hub.db)
    with pytest.raises(InvalidInputError):
        keys.create("bad name with spaces", "source", actor="t")
    with pytest.raises(InvalidInputError):
        keys.create("ok-name", "superuser", actor="t")
    keys.create("dup", "source", actor="t")
    with pytest.raises(ConflictError):
        keys.create("dup", "admin", actor="t")
    assert [k.name for k in keys.list()].count("dup") == 1
