"""``hub serve`` and ``hub worker`` as real processes: API and delivery worker, signals."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from hub.auth.keys import ApiKeyService
from hub.db.migrate import upgrade
from hub.db.models import AuditEntry, DossierRow, HubRun, OutboxMessage
from hub.db.session import Database
from hub.outbox.enqueue import enqueue
from hub.runtime import EXIT_FORCED
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.sink import WebhookSink
from schemas.timefmt import VN_TZ
from tests.api.livehub import dossier_json, free_port

HUB = str(Path(sys.executable).with_name("hub"))


def wait_ready(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"hub serve exited: {process.stderr.read() if process.stderr else ''}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("hub serve did not become ready")


@pytest.mark.parametrize("with_worker", [True, False])
def test_serve_runs_api_and_worker(database_url: str, tmp_path: Path, with_worker: bool) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    upgrade(database_url)
    db = Database.connect(database_url)
    token = ApiKeyService(db).create("src", "source", actor="test", agency_codes=["000.00.18.H42"]).token
    with WebhookSink() as sink:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(
            HUB_DATABASE_URL=database_url,
            HUB_DATA_DIR=str(tmp_path / "data"),
            HUB_API__PORT=str(port),
            HUB_API__PUBLIC_BASE_URL=base,
            HUB_WORKER__POLL_INTERVAL_SECONDS="0.1",
            HUB_ENDPOINTS=json.dumps({"portal": {"kind": "webhook", "url": sink.url}}),
            HUB_ROUTING=json.dumps([{"kinds": ["dossier.sync"], "endpoints": ["portal"]}]),
        )
        args = [HUB, "serve", "--port", str(port)] + ([] if with_worker else ["--no-worker"])
        process = subprocess.Popen(
            args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            wait_ready(base, process)
            code = f"000.00.18.H42-{datetime.now(VN_TZ):%y%m%d}-0001"
            dossier = dossier_json(
                code=code,
                received_at=datetime.now(VN_TZ).isoformat(),
                due_at=(datetime.now(VN_TZ) + timedelta(days=3)).isoformat(),
            )
            headers = {"Authorization": f"Bearer {token}"}
            created = httpx.post(f"{base}/api/v1/dossiers", json={"dossier": dossier}, headers=headers)
            assert created.status_code == 201, created.text
            deadline = time.monotonic() + (20 if with_worker else 2)
            state = "pending"
            while time.monotonic() < deadline and state != "delivered":
                state = httpx.get(f"{base}/api/v1/dossiers/{code}/deliveries", headers=headers).json()[0][
                    "state"
                ]
                time.sleep(0.1)
            assert state == ("delivered" if with_worker else "pending")
            assert len(sink.arrivals()) == (1 if with_worker else 0)
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=30)
            db.dispose()
        assert process.returncode == 0, err
        assert "Traceback" not in err
        assert "001099012345" not in err  # the owner's ID number never reaches the logs


def _enqueue(db: Database, dossier: str) -> int:
    with db.transaction() as session:
        rows = enqueue(
            session,
            endpoints=["portal"],
            kind="dossier.sync",
            ordering_key=dossier,
            payload={"dossier": dossier},
            dossier_code=dossier,
        )
        return rows[0].seq


def _state(db: Database, seq: int) -> str:
    with db.sessions() as session:
        row = session.get(OutboxMessage, seq)
        assert row is not None
        return row.state


def _worker(database_url: str, sink_url: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=database_url,
        HUB_WORKER__POLL_INTERVAL_SECONDS="0.1",
        HUB_WORKER__SHUTDOWN_GRACE_SECONDS="600",
        HUB_ENDPOINTS=json.dumps({"portal": {"kind": "webhook", "url": sink_url, "timeout_seconds": 900}}),
    )
    return subprocess.Popen(
        [HUB, "worker"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for(db: Database, seq: int, state: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while _state(db, seq) != state:
        if process.poll() is not None:
            raise AssertionError(f"hub worker exited: {process.stderr.read() if process.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"message {seq} never reached {state}")
        time.sleep(0.05)


def test_worker_stops_gracefully_on_sigterm(database_url: str, tmp_path: Path) -> None:
    db = Database.connect(database_url)
    try:
        with WebhookSink() as sink:
            process = _worker(database_url, sink.url, tmp_path)
            try:
                seq = _enqueue(db, "H42-0001")
                _wait_for(db, seq, "delivered", process)
            finally:
                process.send_signal(signal.SIGTERM)
                _out, err = process.communicate(timeout=60)
    finally:
        db.dispose()
    assert process.returncode == 0, err
    assert "stopping gracefully" in err
    assert "Traceback" not in err


def test_a_second_signal_forces_the_stop(database_url: str, tmp_path: Path) -> None:
    """A delivery that would hold the graceful stop for minutes (slow portal, long grace) is
    abandoned on the second signal; its lease expires and another worker takes it over."""
    db = Database.connect(database_url)
    try:
        with WebhookSink() as sink:
            # the portal answers only after ten minutes
            sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=600, times=None)])
            process = _worker(database_url, sink.url, tmp_path)
            try:
                seq = _enqueue(db, "H42-0002")
                _wait_for(db, seq, "in_flight", process)
                process.send_signal(signal.SIGTERM)  # graceful: waits for the delivery in flight
                process.send_signal(signal.SIGINT)  # forced
                _out, err = process.communicate(timeout=60)
            finally:
                _kill_if_running(process)
    finally:
        db.dispose()
    assert process.returncode == EXIT_FORCED, err
    assert "forcing the stop" in err


def _kill_if_running(process: subprocess.Popen[str]) -> None:
    """After a failed test: no process left behind."""
    if process.poll() is None:
        process.kill()
        process.communicate()


def _sockets(pid: int) -> int:
    """Open sockets of a process (Linux): its listener, database connections, accepted clients."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # closed since the listing
            count += os.readlink(fd).startswith("socket:")
    return count


def _both_accept(base: str, pids: list[int]) -> bool:
    """Whether 16 connections kept open to ``base`` reached every one of ``pids``."""
    before = {pid: _sockets(pid) for pid in pids}
    clients = [httpx.Client(base_url=base) for _ in range(16)]
    try:
        assert all(client.get("/healthz").status_code == 200 for client in clients)
        return all(_sockets(pid) > count for pid, count in before.items())
    finally:
        for client in clients:
            client.close()


def _running(db: Database) -> dict[int, str]:
    """pid → kind of the hub processes running now."""
    with db.sessions() as session:
        runs = session.execute(select(HubRun.pid, HubRun.kind).where(HubRun.stopped_at.is_(None)))
        return {pid: kind for pid, kind in runs}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, SO_REUSEPORT's spreading")
def test_serve_several_processes(database_url: str, tmp_path: Path) -> None:
    """``hub serve --processes 2``: two API processes on one port, both answering, the worker in
    the first only; SIGTERM stops both gracefully, and a change is stored whole or not at all."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    upgrade(database_url)
    db = Database.connect(database_url)
    token = ApiKeyService(db).create("src", "source", actor="test", agency_codes=["000.00.18.H42"]).token
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=database_url,
        HUB_DATA_DIR=str(tmp_path / "data"),
        HUB_API__PUBLIC_BASE_URL=base,
        HUB_ENDPOINTS=json.dumps({"portal": {"kind": "webhook", "url": "http://127.0.0.1:9/unused"}}),
        HUB_ROUTING=json.dumps([{"kinds": ["dossier.sync"], "endpoints": ["portal"]}]),
    )
    process = subprocess.Popen(
        [HUB, "serve", "--processes", "2", "--port", str(port), "--plain-logs"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answered: list[str] = []
    try:
        wait_ready(base, process)
        deadline = time.monotonic() + 60
        while len(running := _running(db)) < 2:
            assert time.monotonic() < deadline, "the second API process did not start"
            time.sleep(0.2)
        assert sorted(running.values()) == ["api", "api+worker"]
        # Both answer: connections kept open are spread over both processes (SO_REUSEPORT)
        # once the second listens (it registers its run a moment before).
        while not _both_accept(base, list(running)):
            assert time.monotonic() < deadline, "the connections all went to one process"
        # A stream of creations, SIGTERM in the middle of it.
        headers = {"Authorization": f"Bearer {token}"}
        day = f"{datetime.now(VN_TZ):%y%m%d}"

        def create(n: int) -> None:
            code = f"000.00.18.H42-{day}-{n:04d}"
            dossier = dossier_json(
                code=code,
                received_at=datetime.now(VN_TZ).isoformat(),
                due_at=(datetime.now(VN_TZ) + timedelta(days=3)).isoformat(),
            )
            try:
                answer = httpx.post(f"{base}/api/v1/dossiers", json={"dossier": dossier}, headers=headers)
            except httpx.TransportError:
                return  # refused once stopping: not stored (checked below)
            if answer.status_code == 201:
                answered.append(code)

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(create, n) for n in range(1, 201)]
            while len(answered) < 20:
                time.sleep(0.01)
            process.send_signal(signal.SIGTERM)
            for future in futures:
                future.result()
        _out, err = process.communicate(timeout=60)
    finally:
        _kill_if_running(process)
    try:
        assert process.returncode == 0, err
        assert "Traceback" not in err
        assert err.count("hub stopped") == 2
        assert _running(db) == {}
        with db.sessions() as session:
            stored = set(session.scalars(select(DossierRow.code)))
            routed = set(session.scalars(select(OutboxMessage.dossier_code)))
            dossier_events = select(AuditEntry.target).where(AuditEntry.action.like("dossier.%"))
            audited = set(session.scalars(dossier_events))
    finally:
        db.dispose()
    assert set(answered) <= stored
    assert routed == stored  # each stored creation has its message…
    assert audited == stored  # …and its audit row
