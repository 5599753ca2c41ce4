"""A running hub rides out a PostgreSQL outage: one log line when it starts, one when it ends,
retries with backoff meanwhile, delivers again after; ``/readyz`` says 503 and why meanwhile
(docs/delivery.md §13).

The server is a private cluster (``private_postgres``) stopped with a fast shutdown, as an
operator restarting PostgreSQL would: never the shared server other tests use.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.db.models import OutboxMessage
from hub.db.session import Database
from hub.simulators.sink import WebhookSink
from tests.cli.test_cli_commands import hub_env
from tests.delivery.helpers import put, wait_until
from tests.pgcluster import PrivatePostgres, free_port

pytestmark = pytest.mark.slow

HUB = str(Path(sys.executable).with_name("hub"))
#: How long the database stays down: before this change a worker logged a traceback every
#: 0.2 s of it.
OUTAGE_SECONDS = 6.0
ADMIN_TOKEN = "outage-test-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _env(database_url: str, sink_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return hub_env(
        database_url,
        tmp_path,
        HUB_WORKER__POLL_INTERVAL_SECONDS="0.1",
        HUB_WORKER__HEARTBEAT_SECONDS="0.5",
        HUB_ENDPOINTS=json.dumps({"portal": {"kind": "webhook", "url": sink_url}}),
        HUB_ROUTING=json.dumps([{"kinds": ["dossier.sync"], "endpoints": ["portal"]}]),
        **extra,
    )


def _delivered(db: Database, seq: int) -> bool:
    with db.sessions() as session:
        row = session.get(OutboxMessage, seq)
        return row is not None and row.state == "delivered"


def _records(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=60)
    return err


def test_a_worker_logs_an_outage_once_and_delivers_after_it(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    url = private_postgres.create_database("hub")
    db = Database.connect(url)
    with WebhookSink() as sink:
        process = subprocess.Popen(
            [HUB, "worker"],
            env=_env(url, sink.url, tmp_path),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            first = put(db, "portal", "D1")
            wait_until(lambda: _delivered(db, first))
            db.engine.dispose()
            private_postgres.stop()
            time.sleep(OUTAGE_SECONDS)  # the outage (not a measurement)
            assert process.poll() is None  # still running
            private_postgres.start()
            second = put(db, "portal", "D2")
            wait_until(lambda: _delivered(db, second))
        finally:
            err = _stop(process)
            db.dispose()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    records = _records(err)
    messages = [record["msg"] for record in records]
    assert len(records) == len(err.strip().splitlines())  # every line is a log record
    unreachable = [m for m in messages if m.startswith("database unreachable: ")]
    back = [m for m in messages if m.startswith("database reachable again after ")]
    assert len(unreachable) == 1, messages
    assert "retrying with backoff" in unreachable[0]
    assert len(back) == 1, messages
    assert messages.index(unreachable[0]) < messages.index(back[0])
    noisy = [record for record in records if record["level"] in ("WARNING", "ERROR", "CRITICAL")]
    assert len(noisy) <= 4, messages
    assert len(sink.arrivals()) == 2


def test_readiness_follows_a_database_outage(private_postgres: PrivatePostgres, tmp_path: Path) -> None:
    url = private_postgres.create_database("hub")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with WebhookSink() as sink:
        env = _env(url, sink.url, tmp_path, HUB_API__PORT=str(port), HUB_BOOTSTRAP_ADMIN_TOKEN=ADMIN_TOKEN)
        process = subprocess.Popen(
            [HUB, "serve"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

        def readiness() -> httpx.Response | None:
            try:
                return httpx.get(f"{base}/readyz", timeout=5)
            except httpx.TransportError:
                return None

        def answers(status: int) -> bool:
            response = readiness()
            return response is not None and response.status_code == status

        try:
            wait_until(lambda: answers(200))
            ready = readiness()
            assert ready is not None
            assert ready.json()["worker"]["last_beat_seconds_ago"] is not None  # the in-process worker
            private_postgres.stop()
            wait_until(lambda: answers(503))
            down = readiness()
            assert down is not None
            reasons = down.json()["error"]["details"]["reasons"]
            assert any(reason.startswith("database unreachable: ") for reason in reasons), reasons
            # An API request meanwhile is told to come back later, not given a 500.
            lookup = httpx.get(f"{base}/api/v1/dossiers/000.00.18.H42-261206-0001", headers=ADMIN, timeout=30)
            assert lookup.status_code == 503, lookup.text
            assert lookup.json()["error"]["code"] == "database_unavailable"
            assert lookup.headers["Retry-After"] == "5"
            private_postgres.start()
            wait_until(lambda: answers(200))
        finally:
            err = _stop(process)
    assert process.returncode == 0, err
    assert "Traceback" not in err
