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
from sqlalchemy import select, text

from hub.api.offload import WriteGroups
from hub.db.models import DossierRow, OutboxMessage
from tests.api.livehub import LiveHub, dossier_json, status_json
from tests.core.test_intake_statements import statements
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


_Request = tuple[str, dict[str, Any], str]  # path, body, X-Request-ID


def _while_lanes_busy(hub: LiveHub, requests: list[_Request]) -> tuple[list[httpx.Response], list[str]]:
    """Every lane busy with a status change that waits (``_lanes_held``), then ``requests``
    sent at once; once all of them wait for a lane, the lanes are let go. The answers (lanes'
    first), and the statements the database received meanwhile."""
    groups = _groups(hub)
    blockers = [_code(900 + lane) for lane in range(groups.lanes)]
    with hub.client("source") as client:
        for code in blockers:
            assert client.post("/api/v1/dossiers", json={"dossier": dossier_json(code)}).status_code == 201

    def post(request: _Request) -> httpx.Response:
        path, body, request_id = request
        with hub.client("source", headers={"X-Request-ID": request_id}) as client:
            return client.post(path, json=body)

    change = status_json(4, T0 + timedelta(hours=1))
    with statements(hub.db) as seen, ThreadPoolExecutor(16) as pool:
        with _lanes_held(hub, blockers):
            busy = [
                pool.submit(post, (f"/api/v1/dossiers/{c}/status", change, f"busy-{c}")) for c in blockers
            ]
            _wait_for(lambda: groups.busy == groups.lanes, "every lane busy")
            waiting = [pool.submit(post, request) for request in requests]
            _wait_for(lambda: groups.waiting == len(requests), "the requests waiting for a lane")
        answers = [future.result(timeout=30) for future in busy + waiting]
    assert [a.status_code for a in answers[: len(blockers)]] == [200] * len(blockers)
    return answers[len(blockers) :], seen


def _creates(numbers: range) -> dict[str, _Request]:
    return {
        _code(n): ("/api/v1/dossiers", {"dossier": dossier_json(_code(n))}, f"req-{_code(n)}")
        for n in numbers
    }


def test_requests_waiting_for_a_lane_are_written_together(hub: LiveHub) -> None:
    creates = _creates(range(1, 9))
    refused = dossier_json(_code(9), agency_code="000.00.19.H42")  # not the caller's agency
    answers, seen = _while_lanes_busy(
        hub, [*creates.values(), ("/api/v1/dossiers", {"dossier": refused}, "req-refused")]
    )
    assert [a.status_code for a in answers[:-1]] == [201] * len(creates)
    assert answers[-1].status_code == 403, answers[-1].text  # its own answer, as if alone
    assert all(a.json()["created"] and len(a.json()["message_ids"]) == 2 for a in answers[:-1])
    # refused for one change, the group was written again change by change: one INSERT each
    assert seen.count("INSERT INTO dossiers") <= len(creates)
    with hub.db.sessions() as session:
        stored = set(session.scalars(select(DossierRow.code)))
        messages = session.execute(select(OutboxMessage.dossier_code, OutboxMessage.correlation_id)).all()
    assert stored >= set(creates)
    assert _code(9) not in stored
    assert {(code, cid) for code, cid in messages if code in creates} == {(c, f"req-{c}") for c in creates}


def test_a_group_that_stands_is_one_insert(hub: LiveHub) -> None:
    answers, seen = _while_lanes_busy(hub, list(_creates(range(1, 11)).values()))
    assert [a.status_code for a in answers] == [201] * 10
    assert seen.count("INSERT INTO dossiers") == 1  # ten creates of one caller, one transaction
