"""Pausing delivery to one endpoint: its messages keep queueing but are not claimed."""

from __future__ import annotations

import pytest

from hub.db.session import Database
from hub.delivery.sql_store import SqlOutboxStore
from hub.dlq import service
from schemas.errors import ConflictError, InvalidInputError
from tests.delivery.helpers import put

from .test_service import audit


def claimed_endpoints(db: Database, token: str) -> list[str]:
    store = SqlOutboxStore(db)
    claimed = store.claim_sync({"portal": 10, "lgsp": 10}, token, 30)
    store.release_sync([(m.seq, token) for m in claimed])
    return sorted(m.endpoint for m in claimed)


def test_a_paused_endpoint_is_not_claimed_until_resumed(db: Database) -> None:
    put(db, "portal", "H42.01-260101-0001")
    put(db, "lgsp", "H42.01-260101-0002")
    service.pause_endpoint(db, "portal", actor="tech", reason="cổng bảo trì")
    assert claimed_endpoints(db, "t#1") == ["lgsp"]
    assert set(service.paused_endpoints(db)) == {"portal"}
    service.resume_endpoint(db, "portal", actor="tech2")
    assert claimed_endpoints(db, "t#2") == ["lgsp", "portal"]
    entries = [(e.actor, e.action, e.target) for e in audit(db)]
    assert ("tech", "endpoint.pause", "endpoint:portal") in entries
    assert ("tech2", "endpoint.resume", "endpoint:portal") in entries


def test_pause_needs_a_reason_and_is_not_repeated(db: Database) -> None:
    with pytest.raises(InvalidInputError):
        service.pause_endpoint(db, "portal", actor="tech", reason="  ")
    with pytest.raises(ConflictError):
        service.resume_endpoint(db, "portal", actor="tech")
    service.pause_endpoint(db, "portal", actor="tech", reason="bảo trì")
    with pytest.raises(ConflictError):
        service.pause_endpoint(db, "portal", actor="tech", reason="bảo trì")
    assert [e.action for e in audit(db)].count("endpoint.pause") == 1
