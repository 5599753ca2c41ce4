"""Chaos: a worker that outlives its lease without dying (docs/delivery.md §4, §11.1).

Two ways a live worker overruns its leases:

* a row lock held past the lease: another transaction locks the rows the worker holds (on
  SQLite: the database's write lock), so its heartbeats, results and claims wait;
* the worker paused (``SIGSTOP``) past its lease, then resumed (``SIGCONT``): a stalled VM, a
  stop-the-world pause.

Meanwhile the other worker's rescuer may take the messages over. Whatever the timing, the
verifier's rules hold: nothing lost or stuck, a duplicate only where a lease was lost, and no
message arriving after a later one of its dossier.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from hub.db.session import Database
from hub.delivery.worker import RESCUE_INTERVAL_SECONDS
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.sink import WebhookSink
from tests.delivery.helpers import put_many
from tests.processes import write_config

from .conftest import Record
from .fleet import Fleet, held_by, scaled, undelivered, wait_for
from .verifier import history, verify

pytestmark = pytest.mark.slow

LEASE_SECONDS = 2.0
#: Long enough for the lease to run out, a rescuer pass to find it and the other worker to
#: deliver what it took over.
OVERRUN_SECONDS = LEASE_SECONDS + RESCUE_INTERVAL_SECONDS + 1.0


def _start(
    db: Database,
    database_url: str,
    sink: WebhookSink,
    tmp_path: Path,
    total: int,
    workers: tuple[str, ...] = ("w1", "w2"),
) -> Fleet:
    sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=0.02, times=None)])
    put_many(db, "portal", [(f"D{i % scaled(60)}", {"n": i}) for i in range(total)])
    config = write_config(tmp_path / "hub.toml", sink.url, lease_seconds=LEASE_SECONDS)
    fleet = Fleet(database_url, config, tmp_path / "logs")
    for name in workers:
        fleet.start(name)
    return fleet


def _w1_holding(
    db: Database, sink: WebhookSink, fleet: Fleet, arrived: int, *, within: float, step: float
) -> str:
    """Wait until ``arrived`` messages arrived, then until ``w1`` holds a claim; its worker id."""
    assert wait_for(lambda: len(sink.arrivals()) >= arrived, within=120), fleet.log_tail()
    worker_id = fleet.processes["w1"].name
    wait_for(lambda: held_by(db, worker_id) > 0, within=within, step=step)
    return worker_id


def _assert_no_violation(
    db: Database,
    sink: WebhookSink,
    fleet: Fleet,
    settled: bool,
    logs: str,
    chaos_report: Record,
    **facts: Any,
) -> None:
    """The run settled, the verifier found nothing (reported with ``facts``), the workers stopped
    gracefully."""
    report = verify(db, sink.arrivals())
    chaos_report(report, overrun_seconds=OVERRUN_SECONDS, **facts)
    assert settled, f"{report}\n{logs}"
    assert report.ok, f"{report}\nattempts recorded:\n{history(db, report.violations)}"
    assert fleet.graceful_exits(), fleet.exits


def test_row_lock_held_past_the_lease(
    db: Database, database_url: str, sink: WebhookSink, tmp_path: Path, chaos_report: Record
) -> None:
    total, locks = scaled(400), scaled(2)
    with _start(db, database_url, sink, tmp_path, total) as fleet:
        for k in range(locks):
            worker_id = _w1_holding(db, sink, fleet, total * (k + 1) // (locks + 1), within=10, step=0.02)
            # Lock every row w1 holds (SQLite: the write lock) and keep the locks past the lease.
            with db.engine.connect() as conn:
                conn.execute(
                    text(
                        "UPDATE outbox_messages SET note = note "
                        "WHERE state = 'in_flight' AND lease_owner LIKE :owner"
                    ),
                    {"owner": f"{worker_id}#%"},
                )
                time.sleep(OVERRUN_SECONDS)
                conn.rollback()
        settled = wait_for(lambda: undelivered(db) == 0, within=60 + total / 10)
        logs = fleet.log_tail()
    _assert_no_violation(db, sink, fleet, settled, logs, chaos_report, locks=locks)


def test_worker_paused_past_its_lease(
    db: Database, database_url: str, sink: WebhookSink, tmp_path: Path, chaos_report: Record
) -> None:
    total, pauses = scaled(400), scaled(1)
    with _start(db, database_url, sink, tmp_path, total) as fleet:
        for k in range(pauses):
            # The first pause lands as soon as w1 holds its first claim, usually before its
            # first sends go out (its HTTP pool opens on the first request); later ones mid-drain.
            _w1_holding(db, sink, fleet, total * k // (pauses + 1), within=30, step=0.005)
            fleet.pause("w1")
            time.sleep(OVERRUN_SECONDS)
            fleet.resume("w1")
        settled = wait_for(lambda: undelivered(db) == 0, within=60 + total / 10)
        logs = fleet.log_tail()
    _assert_no_violation(db, sink, fleet, settled, logs, chaos_report, pauses=pauses)
