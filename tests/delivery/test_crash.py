"""Crash safety with real worker processes (``hub worker``), SIGKILL, SIGTERM and SIGSTOP.

Solid Queue-style kill tests (docs/delivery.md §10): every message is delivered at least
once, none lost or stuck, and the lost leases are recorded as ``lease_lost`` attempts. A killed
worker's messages move again as soon as it misses its heartbeats, long before its leases
expire; a frozen worker never sends a message another worker took over (§12).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from hub.db.models import DeliveryAttempt, DeliveryWorker, MessageState, OutboxMessage
from hub.db.session import Database
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.sink import WebhookSink
from tests.processes import write_config

from .helpers import assert_dossier_order, column, numbers_by_dossier, put_many, states, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as server:
        yield server


def _config(tmp_path: Path, url: str, *, lease: float = 2.0, grace: float = 10.0, extra: str = "") -> Path:
    return write_config(
        tmp_path / "hub.toml", url, lease_seconds=lease, shutdown_grace_seconds=grace, extra=extra
    )


def _spawn(database_url: str, config: Path, worker_id: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HUB_DATABASE_URL": database_url,
        "HUB_CONFIG_FILE": str(config),
        "HUB_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "worker", "--worker-id", worker_id],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _survivor_delivers(
    db: Database, database_url: str, config: Path, count: int, *, within: float
) -> subprocess.Popen[bytes]:
    """Start the worker ``survivor``, wait until all ``count`` messages are delivered, stop it
    with SIGTERM (graceful) and return it, ended."""
    survivor = _spawn(database_url, config, "survivor")
    try:
        wait_until(lambda: states(db) == {"delivered": count}, within=within)
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(30)
    return survivor


def _all_ids(db: Database) -> set[str]:
    return set(column(db, OutboxMessage.message_id))


def _outcomes(db: Database) -> list[str]:
    return column(db, DeliveryAttempt.outcome)


def test_sigkill_mid_delivery_then_restart(
    db: Database, database_url: str, sink: WebhookSink, tmp_path: Path
) -> None:
    sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=0.05, times=None)])
    put_many(db, "portal", [(f"D{i % 40}", {"dossier": f"D{i % 40}", "n": i}) for i in range(400)])
    config = _config(tmp_path, sink.url)

    first = _spawn(database_url, config, "victim")
    wait_until(lambda: len(sink.arrivals()) >= 60, within=60)
    assert states(db).get(MessageState.IN_FLIGHT, 0) > 0  # killed with deliveries in flight
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert first.returncode == -signal.SIGKILL

    second = _survivor_delivers(db, database_url, config, 400, within=120)
    assert second.returncode == 0, second.stderr.read() if second.stderr else ""

    arrived = [a.message_id for a in sink.arrivals()]
    assert _all_ids(db) <= set(arrived)  # at least once, none lost
    assert "lease_lost" in _outcomes(db)  # the killed worker's claims were rescued and recorded
    # Per-dossier order holds across the crash (a re-sent head may repeat, never overtake).
    assert_dossier_order(sink)


def test_sigkill_while_the_endpoint_is_down(
    db: Database, database_url: str, sink: WebhookSink, tmp_path: Path
) -> None:
    put_many(db, "portal", [(f"D{i % 10}", {"n": i}) for i in range(100)])
    config = _config(tmp_path, sink.url)
    sink.stop()  # the portal is down

    first = _spawn(database_url, config, "victim")
    wait_until(lambda: "retry" in _outcomes(db), within=60)
    first.send_signal(signal.SIGKILL)
    first.wait(10)

    sink.start()  # the portal comes back
    _survivor_delivers(db, database_url, config, 100, within=120)
    assert _all_ids(db) <= {a.message_id for a in sink.arrivals()}


def test_sigterm_is_graceful(db: Database, database_url: str, sink: WebhookSink, tmp_path: Path) -> None:
    sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=0.5, times=None)])
    put_many(db, "portal", [(f"D{i}", {"n": i}) for i in range(200)])
    worker = _spawn(database_url, _config(tmp_path, sink.url, lease=60), "polite")
    # Deliveries under way at the portal (claimed is not enough: a claim that returns after the
    # signal is released at once, and nothing would be in flight to finish).
    wait_until(lambda: sink.faults.calls().get("deliver", 0) > 0, within=60)
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)
    assert worker.returncode == 0
    after = states(db)
    # Nothing is left claimed: started deliveries finished, the rest is still queued.
    assert MessageState.IN_FLIGHT not in after
    assert after.get("delivered", 0) == len(sink.arrivals()) > 0
    assert after.get("delivered", 0) + after.get("pending", 0) == 200
    assert "lease_lost" not in _outcomes(db)


def test_several_worker_processes_keep_per_dossier_order(
    db: Database, database_url: str, sink: WebhookSink, tmp_path: Path
) -> None:
    sink.faults.replace(
        [Fault(kind=FaultKind.STATUS, status=503, attempts=1, times=None)]
    )  # every message is retried once
    items = [(f"D{i % 25}", {"dossier": f"D{i % 25}", "n": i}) for i in range(300)]
    put_many(db, "portal", items)
    config = _config(tmp_path, sink.url)
    workers = [_spawn(database_url, config, f"p{i}") for i in range(3)]
    try:
        wait_until(lambda: states(db) == {"delivered": 300}, within=180)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(30)
    assert sum(len(v) for v in numbers_by_dossier(sink).values()) == 300
    assert_dossier_order(sink)
    with db.sessions() as session:
        workers_seen = set(session.scalars(select(DeliveryAttempt.worker_id)))
    assert len(workers_seen) >= 2  # the work really was shared


def _held_by(db: Database, name: str) -> int:
    """Messages in flight under a lease of the worker started as ``--worker-id name``."""
    with db.sessions() as session:
        owners = session.scalars(
            select(OutboxMessage.lease_owner).where(OutboxMessage.state == MessageState.IN_FLIGHT)
        )
        return sum(1 for owner in owners if owner and owner.startswith(f"{name}:"))


def _registered(db: Database, name: str) -> list[DeliveryWorker]:
    with db.sessions() as session:
        return [w for w in session.scalars(select(DeliveryWorker)) if w.id.startswith(f"{name}:")]


def test_a_killed_workers_messages_move_again_long_before_its_leases_expire(
    db: Database, database_url: str, sink: WebhookSink, tmp_path: Path
) -> None:
    """Default liveness settings (1 s heartbeat, dead after 5 s); leases of 60 s. Everything is
    delivered within the 30 s wait: the rescue came from the missed heartbeats, not expiry."""
    sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=0.2, times=None)])
    put_many(db, "portal", [(f"D{i % 20}", {"dossier": f"D{i % 20}", "n": i}) for i in range(200)])
    config = _config(tmp_path, sink.url, lease=60)

    victim = _spawn(database_url, config, "victim")
    wait_until(lambda: _held_by(db, "victim") > 0, within=60)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)

    survivor = _survivor_delivers(db, database_url, config, 200, within=30)
    assert survivor.returncode == 0, survivor.stderr.read() if survivor.stderr else ""

    assert _all_ids(db) <= {a.message_id for a in sink.arrivals()}
    with db.sessions() as session:
        lost = list(session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.outcome == "lease_lost")))
    assert lost
    assert all("missed its heartbeats" in (a.error or "") for a in lost)
    [dead] = _registered(db, "victim")
    [stopped] = _registered(db, "survivor")
    assert dead.stopped_at is not None  # marked by the rescuer
    assert stopped.stopped_at is not None  # deregistered on SIGTERM
    assert_dossier_order(sink)


#: Installed in the test's own database: the victim's claim of the message marked ``trap`` takes
#: two seconds to commit, time for the test to freeze it right after the claim, before the send.
_SLOW_CLAIM_COMMIT = (
    """CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$""",
    """CREATE CONSTRAINT TRIGGER test_slow_claim AFTER UPDATE ON outbox_messages
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.state = 'pending' AND NEW.state = 'in_flight' AND NEW.payload->>'trap' = 'yes'
          AND NEW.lease_owner LIKE 'victim:%')
    EXECUTE FUNCTION test_slow_commit()""",
)


def _claim_committing(db: Database) -> bool:
    with db.engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event = 'PgSleep'"
                )
            ).scalar()
        )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the trap is a PL/pgSQL trigger
def test_a_worker_frozen_between_claim_and_send_never_sends_a_stale_message(
    db: Database, database_url: str, sink: WebhookSink, tmp_path: Path
) -> None:
    """The victim claims dossier D's first message and is frozen (SIGSTOP) before sending it;
    the survivor counts it dead, takes the message over and delivers all of D; the victim is
    woken (SIGCONT). No message of D may reach the portal after a later one was acknowledged."""
    with db.engine.begin() as conn:
        for statement in _SLOW_CLAIM_COMMIT:
            conn.execute(text(statement))
    put_many(db, "portal", [("D", {"dossier": "D", "n": 1, "trap": "yes"})])
    put_many(db, "portal", [("D", {"dossier": "D", "n": n}) for n in (2, 3)])
    liveness = "worker_heartbeat_seconds = 0.2\ndead_worker_seconds = 1.5\nfence_margin_seconds = 0.3"
    config = _config(tmp_path, sink.url, lease=30, extra=liveness)  # only liveness can take it over

    victim = _spawn(database_url, config, "victim")
    try:
        wait_until(lambda: _claim_committing(db), within=60)
        victim.send_signal(signal.SIGSTOP)  # the claim commits; the victim does not see it yet
        wait_until(lambda: _held_by(db, "victim") == 1, within=30)

        _survivor_delivers(db, database_url, config, 3, within=60)

        victim.send_signal(signal.SIGCONT)  # it now gets its claim of the first message
        put_many(db, "portal", [("D", {"dossier": "D", "n": 4})])
        # Delivered by the victim (the only worker left): its stale claim was dealt with before.
        wait_until(lambda: states(db) == {"delivered": 4}, within=60)
    finally:
        victim.send_signal(signal.SIGCONT)
        victim.send_signal(signal.SIGTERM)
        victim.wait(30)
    errors = victim.stderr.read().decode() if victim.stderr else ""
    assert victim.returncode == 0, errors

    numbers = [json.loads(a.body)["n"] for a in sink.arrivals()]
    assert numbers == sorted(numbers), numbers  # nothing after a later message of its dossier
    assert set(numbers) == {1, 2, 3, 4}
    assert "not sending seq=" in errors  # the fence refused the stale claim
    with db.sessions() as session:
        outcomes = list(session.scalars(select(DeliveryAttempt.outcome).order_by(DeliveryAttempt.id)))
    assert outcomes[0] == "lease_lost"  # taken over from the frozen victim
