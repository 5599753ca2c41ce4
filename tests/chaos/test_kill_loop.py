"""Chaos: worker processes killed (-9) and restarted again and again while a large outbox drains.

docs/delivery.md §4, §10: a killed worker's leases expire, the rescuer returns its messages
(recording ``lease_lost``), and the survivors deliver them; the verifier then checks every
message arrived, none is stuck, duplicates only where a lease was lost, and per-dossier order
at the receiver.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hub.db.session import Database
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.sink import WebhookSink
from tests.delivery.helpers import put_many
from tests.processes import write_config

from .conftest import Record
from .fleet import Fleet, held_by, scaled, undelivered, wait_for
from .verifier import verify

pytestmark = pytest.mark.slow

WORKERS = ("w1", "w2", "w3")


def test_kill_loop_during_a_large_drain(
    db: Database, database_url: str, sink: WebhookSink, tmp_path: Path, chaos_report: Record
) -> None:
    total, dossiers, kills = scaled(1000), scaled(100), scaled(3)
    # A little latency keeps deliveries in flight when a kill lands.
    sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=0.02, times=None)])
    put_many(db, "portal", [(f"D{i % dossiers}", {"n": i}) for i in range(total)])
    config = write_config(tmp_path / "hub.toml", sink.url)
    chooser = random.Random(8)

    with Fleet(database_url, config, tmp_path / "logs") as fleet:
        for name in WORKERS:
            fleet.start(name)
        for k in range(kills):
            # Kills spread over the drain: the k-th once (k+1)/(kills+1) of the messages arrived.
            target = total * (k + 1) // (kills + 1)
            assert wait_for(lambda t=target: len(sink.arrivals()) >= t, within=120), fleet.log_tail()
            victim = chooser.choice(WORKERS)
            worker_id = fleet.processes[victim].name
            wait_for(lambda w=worker_id: held_by(db, w) > 0, within=10, step=0.02)
            fleet.kill(victim)
            fleet.start(victim)
        settled = wait_for(lambda: undelivered(db) == 0, within=60 + total / 10)
        logs = fleet.log_tail()
    report = verify(db, sink.arrivals())
    chaos_report(report, kills=kills, workers=len(WORKERS))
    assert settled, f"{report}\n{logs}"
    report.assert_ok()
    assert report.lease_lost > 0  # the kills hit deliveries in flight: rescued and recorded
    assert fleet.graceful_exits(), fleet.exits
