"""Chaos: the portal goes down (503 for a while) in the middle of a drain, then comes back.

docs/delivery.md §3, §7: failed attempts are rescheduled from durable state, the breaker opens
and probes, and once the portal answers again everything is delivered, in per-dossier order,
with nothing dead-lettered.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.db.models import DeliveryAttempt
from hub.db.session import Database
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.sink import WebhookSink
from tests.delivery.helpers import put_many
from tests.processes import write_config

from .conftest import Record
from .fleet import Fleet, scale, scaled, undelivered, wait_for
from .verifier import verify

pytestmark = pytest.mark.slow

LATENCY = Fault(kind=FaultKind.LATENCY, delay_seconds=0.01, times=None)


def _refused_attempts(db: Database) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.count()).where(DeliveryAttempt.status_code == 503)) or 0)


def test_portal_down_then_back_during_a_drain(
    db: Database, database_url: str, sink: WebhookSink, tmp_path: Path, chaos_report: Record
) -> None:
    total, dossiers = scaled(1000), scaled(100)
    outage_seconds = 3.0 * min(scale(), 4)
    sink.faults.replace([LATENCY])
    put_many(db, "portal", [(f"D{i % dossiers}", {"n": i}) for i in range(total)])
    # Retries enough to outlast the outage; a breaker that opens on it and probes every second.
    config = write_config(
        tmp_path / "hub.toml",
        sink.url,
        schedule_seconds=(0.2, 0.5, *(1.0,) * 20),
        failure_threshold=5,
        open_seconds=1.0,
    )
    with Fleet(database_url, config, tmp_path / "logs") as fleet:
        fleet.start("w1")
        fleet.start("w2")
        assert wait_for(lambda: len(sink.arrivals()) >= total // 4, within=120), fleet.log_tail()
        # The outage: every call answered 503 for a while (first match wins: before the latency).
        sink.faults.replace(
            [Fault(kind=FaultKind.STATUS, status=503, times=None, for_seconds=outage_seconds), LATENCY]
        )
        time.sleep(outage_seconds)  # the scenario's timing (the window closes by itself)
        settled = wait_for(lambda: undelivered(db) == 0, within=60 + total / 10)
        logs = fleet.log_tail()
    report = verify(db, sink.arrivals())
    refused = _refused_attempts(db)
    chaos_report(report, outage_seconds=outage_seconds, refused_attempts=refused)
    assert settled, f"{report}\n{logs}"
    report.assert_ok()
    assert refused > 0  # the outage was met (and retried from the database)
    assert fleet.graceful_exits(), fleet.exits
