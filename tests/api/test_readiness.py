"""``GET /readyz``: 503 with the reasons while the database is unreachable, its schema is not
current, or the in-process worker is stuck or failing (hub.health)."""

from __future__ import annotations

import sqlite3
import threading

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from hub.db.availability import OutageReporter
from hub.db.migrate import downgrade
from hub.db.session import Database
from hub.health import HubHealth, WorkerPulse, check_readiness
from hub.telemetry.metrics import DatabaseCollector
from tests.api.livehub import LiveHub
from tests.clocks import SettableClock


def test_ready_without_a_worker(hub: LiveHub) -> None:
    with hub.client() as client:
        answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "database": hub.db.engine.dialect.name}


def test_a_schema_behind_the_migrations_is_not_ready(hub: LiveHub, database_url: str) -> None:
    downgrade(database_url, "0002")
    with hub.client() as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    [reason] = answer.json()["error"]["details"]["reasons"]
    assert reason.startswith("database schema is at 0002, expected ")


def test_the_worker_pulse_and_its_database_calls(db: Database) -> None:
    clock = SettableClock()
    health = HubHealth(database=OutageReporter(clock=clock), worker=WorkerPulse(clock))
    assert check_readiness(db, health).reasons == ["worker not started yet"]
    health.worker.beat()  # type: ignore[union-attr]
    clock.now = 5
    readiness = check_readiness(db, health)
    assert readiness.ready
    assert readiness.details["worker"] == {"last_beat_seconds_ago": 5.0}
    clock.now = 5 + health.stale_after_seconds
    assert check_readiness(db, health).reasons == ["worker heartbeat stale: last beat 35 s ago"]
    health.worker.beat()  # type: ignore[union-attr]
    health.database.failed("claim", OperationalError("x", {}, psycopg.OperationalError("Connection refused")))
    clock.now += 2
    assert check_readiness(db, health).reasons == [
        "worker: database unreachable for 2.0 s: Connection refused"
    ]
    health.database.succeeded("claim")
    health.worker.stop()  # type: ignore[union-attr]
    assert check_readiness(db, health).reasons == ["worker stopped"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_readiness_and_metrics_read_while_another_connection_holds_the_write_lock(db: Database) -> None:
    """Probes and scrapes only read: on SQLite they begin ``DEFERRED`` (``Database.reader``) and
    never wait for, nor take, the write lock a long write transaction holds."""
    collector = DatabaseCollector(db, endpoints=["portal"], dead_worker_seconds=5, cache_seconds=0)
    answers: dict[str, object] = {}

    def read() -> None:
        answers["ready"] = check_readiness(db, HubHealth()).ready
        up = {m.name: m.samples[0].value for m in collector.collect() if m.name == "hub_metrics_database_up"}
        answers["metrics up"] = up["hub_metrics_database_up"]

    foreign = sqlite3.connect(db.engine.url.database or "", isolation_level=None)
    try:
        foreign.execute("BEGIN IMMEDIATE")
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(5)  # a read waiting for the lock would wait the busy timeout, 30 s
        assert not reader.is_alive()
    finally:
        foreign.close()
    assert answers == {"ready": True, "metrics up": 1}
