"""Chaos: the PostgreSQL server crashes and restarts in the middle of a drain.

On a private cluster (:mod:`tests.pgcluster`), never the shared test server. Workers keep
their results in memory while the database is away and write them when it is back; claims,
heartbeats and rescues fail and are tried again; the ``LISTEN`` connection reconnects
(docs/delivery.md §4, §5). A crash that outlasts the lease also makes the rescuer return the
messages held meanwhile. The verifier then checks the drain as usual.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.db.session import Database
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.sink import WebhookSink
from tests.delivery.helpers import put_many
from tests.pgcluster import PrivatePostgres
from tests.processes import write_config

from .conftest import Record
from .fleet import Fleet, scaled, undelivered, wait_for
from .verifier import verify

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LEASE_SECONDS = 2.0


@pytest.fixture
def private_db(private_pg_url: str) -> Iterator[Database]:
    database = Database.connect(private_pg_url, pool_size=2)
    yield database
    database.dispose()


def test_postgres_restarted_mid_drain(
    private_pg: PrivatePostgres,
    private_pg_url: str,
    private_db: Database,
    sink: WebhookSink,
    tmp_path: Path,
    chaos_report: Record,
) -> None:
    total, dossiers, restarts = scaled(1000), scaled(100), scaled(2)
    sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=0.02, times=None)])
    put_many(private_db, "portal", [(f"D{i % dossiers}", {"n": i}) for i in range(total)])
    config = write_config(tmp_path / "hub.toml", sink.url, lease_seconds=LEASE_SECONDS)

    with Fleet(private_pg_url, config, tmp_path / "logs") as fleet:
        fleet.start("w1")
        fleet.start("w2")
        for k in range(restarts):
            target = total * (k + 1) // (restarts + 1)
            assert wait_for(lambda t=target: len(sink.arrivals()) >= t, within=120), fleet.log_tail()
            if k % 2 == 0:
                # A crash, down for longer than a lease: heartbeats fail, leases run out.
                private_pg.stop("immediate")
                time.sleep(LEASE_SECONDS * 1.5)
                private_pg.start()
            else:
                private_pg.stop("fast")  # clients cut, back at once
                private_pg.start()
        settled = wait_for(lambda: undelivered(private_db) == 0, within=60 + total / 10)
        survivors = [p.name for p in fleet.processes.values() if p.alive()]
        logs = fleet.log_tail()
    report = verify(private_db, sink.arrivals())
    chaos_report(report, restarts=restarts)
    assert settled, f"{report}\n{logs}\n{private_pg.server_log()}"
    report.assert_ok()
    assert len(survivors) == 2, logs  # the workers rode the outages out
    assert fleet.graceful_exits(), fleet.exits
