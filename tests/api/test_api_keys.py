"""Key administration over HTTP: admin only, token shown once, revocation effective, audited."""

from __future__ import annotations

from tests.api.livehub import LiveHub, dossier_json


def test_admin_creates_lists_and_revokes_keys(hub: LiveHub) -> None:
    with hub.client("admin") as admin:
        created = admin.post(
            "/api/v1/keys",
            json={"name": "lgsp-ninh-binh", "role": "source", "agency_codes": ["000.00.18.h42"]},
        )
        assert created.status_code == 201, created.text
        assert created.json()["agency_codes"] == ["000.00.18.H42"]
        token = created.json()["token"]
        assert created.headers["cache-control"] == "no-store"
        listed = admin.get("/api/v1/keys")
        assert token not in listed.text
        assert "lgsp-ninh-binh" in {k["name"] for k in listed.json()}
        with hub.client(headers={"Authorization": f"Bearer {token}"}) as new:
            assert new.post("/api/v1/dossiers", json={"dossier": dossier_json()}).status_code == 201
            assert admin.delete("/api/v1/keys/lgsp-ninh-binh").json()["revoked_at"] is not None
            assert new.get("/api/v1/keys").status_code == 401
        duplicate = admin.post("/api/v1/keys", json={"name": "test-source", "role": "admin"})
        assert duplicate.status_code == 409
        bad_role = admin.post("/api/v1/keys", json={"name": "x", "role": "root"})
        assert bad_role.status_code == 422
        assert admin.delete("/api/v1/keys/nobody").status_code == 404
    assert [actor for _, actor in hub.audit_trail("lgsp-ninh-binh")] == ["test-admin", "test-admin"]


def test_only_admins_manage_keys(hub: LiveHub) -> None:
    for role in ("source", "portal", "officer", "technician"):
        with hub.client(role) as client:
            assert client.get("/api/v1/keys").status_code == 403
            assert client.post("/api/v1/keys", json={"name": "x", "role": "admin"}).status_code == 403
