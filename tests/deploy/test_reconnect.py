"""The database goes away and comes back on the same address (a restart, a failover to a standby
behind the same address): the hub reconnects on its own and carries on (docs/deployment.md,
"PostgreSQL high availability"). On a private cluster (tests/pgcluster.py), crashed with
``pg_ctl stop -m immediate``; the shared test server is never touched."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from hub import runtime
from hub.config import Settings
from hub.db.models import OutboxMessage
from hub.db.session import Database
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.sink import WebhookSink
from tests.delivery.helpers import put_many, states, wait_until
from tests.pgcluster import PrivatePostgres

from .workers import WorkerProcess, write_config

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def cluster(private_postgres: PrivatePostgres) -> PrivatePostgres:
    return private_postgres


@pytest.fixture
def cluster_url(cluster: PrivatePostgres) -> str:
    return cluster.create_database(f"hub_{uuid.uuid4().hex[:8]}")


def _messages(start: int, count: int) -> list[tuple[str, dict[str, object]]]:
    return [(f"D{i % 10}", {"dossier": f"D{i % 10}", "n": i}) for i in range(start, start + count)]


def test_a_worker_survives_a_database_crash_and_delivers_what_comes_after(
    cluster: PrivatePostgres, cluster_url: str, tmp_path: Path
) -> None:
    db = Database.connect(cluster_url, pool_size=2)
    with WebhookSink() as sink:
        # Slow answers: deliveries are in flight when the database goes.
        sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=0.3, times=None)])
        worker = WorkerProcess(cluster_url, write_config(tmp_path, sink.url, lease=5), "survivor")
        try:
            put_many(db, "portal", _messages(0, 60))
            wait_until(lambda: sink.faults.calls().get("deliver", 0) >= 5)

            cluster.stop("immediate")
            # The worker meets the outage (its claims or writes fail) and stays up.
            wait_until(lambda: "failed" in worker.log())
            assert worker.alive()

            cluster.start()  # same address
            put_many(db, "portal", _messages(60, 60))  # enqueued after the restart
            wait_until(lambda: states(db) == {"delivered": 120}, within=180, step=0.5)
            assert worker.alive()  # the same process all along: it reconnected
        finally:
            status = worker.stop()
            with db.sessions() as session:
                ids = set(session.scalars(select(OutboxMessage.message_id)))
            db.dispose()
    assert status == 0, worker.log()

    # Nothing lost (at least once: a message in flight at the crash may arrive twice).
    arrivals = sink.arrivals()
    assert len(ids) == 120
    assert ids <= {arrival.message_id for arrival in arrivals}
    # Per-dossier order holds across the crash (a re-sent message may repeat, never overtake).
    last: dict[str, int] = {}
    for arrival in arrivals:
        body = json.loads(arrival.body)
        assert body["n"] >= last.get(body["dossier"], -1), body
        last[body["dossier"]] = body["n"]


def test_the_api_is_unready_while_the_database_is_down_then_ready_again(
    cluster: PrivatePostgres, cluster_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=cluster_url, data_dir=tmp_path, api={"host": "127.0.0.1", "port": 0})
    with (
        runtime.run_in_thread(settings, api=True, worker=False) as hub,
        httpx.Client(base_url=str(hub.base_url), timeout=10) as client,
    ):
        assert client.get("/readyz").status_code == 200
        cluster.stop("immediate")
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200  # alive: no restart wanted
        cluster.start()
        wait_until(lambda: client.get("/readyz").status_code == 200, within=30)
