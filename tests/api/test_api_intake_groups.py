"""The group commit over a real server (hub/api/offload.py; docs/architecture.md, "Intake
throughput"): single-change requests that wait for a busy lane are written together, each
answered as it would have been alone, with its own correlation id on its messages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import event, select, text

from hub.api.offload import WriteGroups
from hub.db.models import DossierRow, OutboxMessage
from tests.api.livehub import LiveHub, dossier_json, status_json
from tests.sample_dossier import T0


def _code(n: int) -> str:
    return f"000.00.18.H42-251125-{n:04d}"


def _groups(hub: LiveHub) -> WriteGroups[Any, Any, Any]:
    groups = hub.app.state.services.groups
    assert isinstance(groups, WriteGroups)
    return groups


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@contextmanager
def _lanes_held(hub: LiveHub, codes: list[str]) -> Iterator[None]:
    """Writes to ``codes`` wait while the block runs: on PostgreSQL their rows are locked by
    another transaction; on SQLite this thread holds the database's writer gate."""
    if not hub.db.is_postgres:
        with hub.db.writer_gate:
            yield
        return
    with hub.db.engine.connect() as connection:
        connection.execute(
            text("SELECT id FROM dossiers WHERE code = ANY(:codes) FOR UPDATE"), {"codes": codes}
        )
        yield
        connection.rollback()


def test_requests_waiting_for_a_lane_are_written_together(hub: LiveHub) -> None:
    groups = _groups(hub)
    blockers = [_code(900 + lane) for lane in range(groups.lanes)]
    with hub.client("source") as client:
        for code in blockers:
            assert client.post("/api/v1/dossiers", json={"dossier": dossier_json(code)}).status_code == 201
    inserts: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith("INSERT INTO dossiers"):
            inserts.append(statement)

    def post(path: str, body: dict[str, Any], request_id: str) -> httpx.Response:
        with hub.client("source", headers={"X-Request-ID": request_id}) as client:
            return client.post(path, json=body)

    change = status_json(4, T0 + timedelta(hours=1))
    creates = {_code(n): {"dossier": dossier_json(_code(n))} for n in range(1, 9)}
    refused = dossier_json(_code(9), agency_code="000.00.19.H42")  # not the caller's agency
    event.listen(hub.db.engine, "before_cursor_execute", record)
    try:
        with ThreadPoolExecutor(16) as pool:
            with _lanes_held(hub, blockers):
                # every lane busy with a status change that waits for the held rows (the gate)
                busy = [
                    pool.submit(post, f"/api/v1/dossiers/{c}/status", change, f"busy-{c}") for c in blockers
                ]
                _wait_for(lambda: groups.busy == groups.lanes, "every lane busy")
                waiting = [
                    pool.submit(post, "/api/v1/dossiers", body, f"req-{c}") for c, body in creates.items()
                ]
                waiting.append(pool.submit(post, "/api/v1/dossiers", {"dossier": refused}, "req-refused"))
                _wait_for(lambda: groups.waiting == len(creates) + 1, "the creates waiting for a lane")
            answers = [future.result(timeout=30) for future in busy + waiting]
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", record)
    assert [a.status_code for a in answers[: len(blockers)]] == [200] * len(blockers)
    assert [a.status_code for a in answers[len(blockers) : -1]] == [201] * len(creates)
    assert answers[-1].status_code == 403, answers[-1].text  # its own answer, as if alone
    assert all(a.json()["created"] and len(a.json()["message_ids"]) == 2 for a in answers[len(blockers) : -1])
    # the group was refused for one change, so written again without it, change by change; a
    # group that stands is one INSERT: at most one per create, and fewer when one stood
    assert len(inserts) <= len(creates)
    with hub.db.sessions() as session:
        stored = set(session.scalars(select(DossierRow.code)))
        messages = session.execute(select(OutboxMessage.dossier_code, OutboxMessage.correlation_id)).all()
    assert stored == set(blockers) | set(creates)
    assert {(code, cid) for code, cid in messages if code in creates} == {(c, f"req-{c}") for c in creates}


def test_a_group_that_stands_is_one_insert(hub: LiveHub) -> None:
    groups = _groups(hub)
    blockers = [_code(900 + lane) for lane in range(groups.lanes)]
    with hub.client("source") as client:
        for code in blockers:
            assert client.post("/api/v1/dossiers", json={"dossier": dossier_json(code)}).status_code == 201
    inserts: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith("INSERT INTO dossiers"):
            inserts.append(statement)

    def post(path: str, body: dict[str, Any]) -> httpx.Response:
        with hub.client("source") as client:
            return client.post(path, json=body)

    change = status_json(4, T0 + timedelta(hours=1))
    event.listen(hub.db.engine, "before_cursor_execute", record)
    try:
        with ThreadPoolExecutor(16) as pool:
            with _lanes_held(hub, blockers):
                busy = [pool.submit(post, f"/api/v1/dossiers/{c}/status", change) for c in blockers]
                _wait_for(lambda: groups.busy == groups.lanes, "every lane busy")
                waiting = [
                    pool.submit(post, "/api/v1/dossiers", {"dossier": dossier_json(_code(n))})
                    for n in range(1, 11)
                ]
                _wait_for(lambda: groups.waiting == 10, "the creates waiting for a lane")
            answers = [future.result(timeout=30) for future in busy + waiting]
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", record)
    assert [a.status_code for a in answers] == [200] * len(blockers) + [201] * 10
    assert len(inserts) == 1  # ten creates of one caller, one transaction
