"""``GET /api/v1/audit``: admin only, filters, exports; operator actions through the API are
chained with where they came from (docs/security.md, "Audit log")."""

from __future__ import annotations

import json

from hub.audit.log import record
from hub.audit.verify import verify_chain
from tests.api.livehub import LiveHub


def test_api_actions_are_chained_with_their_client_and_admins_read_them(hub: LiveHub) -> None:
    with hub.client("admin", headers={"User-Agent": "console/1.0"}) as admin:
        assert admin.post("/api/v1/keys", json={"name": "k-1", "role": "technician"}).status_code == 201
        assert admin.delete("/api/v1/keys/k-1").status_code in (200, 204)
        page = admin.get("/api/v1/audit", params={"action": "api_key.", "target": "k-1", "limit": 1})
        assert page.status_code == 200
        body = page.json()
        assert [e["action"] for e in body["items"]] == ["api_key.revoke"]
        assert body["items"][0]["client"] == "127.0.0.1 console/1.0"
        assert body["items"][0]["before"] == {"revoked_at": None}
        older = admin.get("/api/v1/audit", params={"target": "k-1", "cursor": body["next_cursor"]})
        assert [e["action"] for e in older.json()["items"]] == ["api_key.create"]
        jsonl = admin.get("/api/v1/audit", params={"format": "jsonl", "target": "k-1"})
        assert jsonl.headers["content-type"].startswith("application/jsonl")
        assert [json.loads(line)["action"] for line in jsonl.text.splitlines()] == [
            "api_key.create",
            "api_key.revoke",
        ]
        csv_answer = admin.get("/api/v1/audit", params={"format": "csv", "target": "k-1"})
        assert csv_answer.headers["content-type"].startswith("text/csv")
        assert csv_answer.headers["content-disposition"] == 'attachment; filename="audit.csv"'
        assert len(csv_answer.text.splitlines()) == 3
        naive = admin.get("/api/v1/audit", params={"since": "2025-01-01T00:00:00"})
        assert naive.status_code == 422
        assert naive.json()["error"]["details"]["field"] == "since"
    assert verify_chain(hub.db).ok


def test_only_admins_read_the_audit_log(hub: LiveHub) -> None:
    for role in ("source", "technician", "officer"):
        if role not in hub.tokens:
            continue
        with hub.client(role) as client:
            assert client.get("/api/v1/audit").status_code == 403, role
    with hub.client() as anonymous:
        assert anonymous.get("/api/v1/audit").status_code == 401


def test_the_dossier_and_outcome_filters_of_the_console_are_in_the_api_too(hub: LiveHub) -> None:
    code = "000.00.18.H42-251125-0009"
    with hub.db.transaction() as session:
        refused = record(
            session,
            actor="cb",
            action="signing.personal",
            target="sha256:00",
            details={"outcome": "refused", "dossier_code": code},
        ).id
        shown = record(session, actor="qt", action="pii.reveal", target=code, details={"kind": "dossier"}).id
    with hub.client("admin") as admin:
        by_dossier = admin.get("/api/v1/audit", params={"dossier": code}).json()["items"]
        assert [e["id"] for e in by_dossier] == [shown, refused]
        failed = admin.get("/api/v1/audit", params={"outcome": "failure"}).json()["items"]
        assert [e["id"] for e in failed] == [refused]
        assert admin.get("/api/v1/audit", params={"outcome": "perhaps"}).status_code == 422


def test_q_finds_text_in_the_details(hub: LiveHub) -> None:
    with hub.db.transaction() as session:
        found = record(session, actor="qt", action="test.note", target="t", details={"note": "xyz-42"}).id
        record(session, actor="qt", action="test.note", target="t", details={"note": "other"})
    with hub.client("admin") as admin:
        items = admin.get("/api/v1/audit", params={"q": "xyz-42"}).json()["items"]
        assert [e["id"] for e in items] == [found]
        too_long = admin.get("/api/v1/audit", params={"q": "x" * 201})
        assert too_long.status_code == 422
        assert [e["loc"] for e in too_long.json()["error"]["details"]["errors"]] == ["query.q"]
