"""Chaos: the SQLite database's disk fills up mid-drain (SQLITE_FULL), then space comes back.

The hub runs as real processes (``hub serve`` with its in-process worker, and one more
``hub worker``) under :mod:`tests.chaos.diskfull`, which caps the database at its current size
on demand. While the disk is full the intake API answers a clear 503 (``storage_full``, in
both languages; never a 500) and creates nothing; workers keep their results and try again.
Once space is back: intake works, delivery resumes, and the verifier finds nothing lost.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.auth.keys import ApiKeyService
from hub.db.session import Database
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.sink import WebhookSink
from tests.api.livehub import free_port
from tests.api.test_api_storage_full import large_dossier
from tests.conftest import migrated_database
from tests.delivery.helpers import put_many
from tests.processes import write_config

from .conftest import Record
from .diskfull import CONTROL_ENV, PageLimit
from .fleet import Fleet, scaled, undelivered, wait_for
from .verifier import verify

pytestmark = pytest.mark.slow

LEASE_SECONDS = 2.0
SQLITE_FULL = "database or disk is full"


@pytest.fixture
def sqlite_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Database]]:
    with migrated_database(request, "sqlite", tmp_path) as url:
        database = Database.connect(url, pool_size=2)
        yield url, database
        database.dispose()


def _intake(client: httpx.Client, n: int) -> httpx.Response:
    """A new dossier of some 30 KB within the field bounds (its row needs new pages, whatever free
    space is left)."""
    code = f"000.00.18.H42-251125-{n:04d}"
    body = {"dossier": {**large_dossier("Đề nghị cấp giấy chứng nhận. "), "code": code}}
    return client.post("/api/v1/dossiers", json=body, headers={"Idempotency-Key": f"chaos-{n}"})


def _workers_met_it(fleet: Fleet) -> bool:
    """A worker logged SQLITE_FULL (a claim, heartbeat, flush or rescue refused; JSON log lines,
    through the worker's database outage reporter, logger ``hub.db``)."""
    return any(
        '"hub.db"' in line and SQLITE_FULL in line
        for running in fleet.processes.values()
        for line in running.log.read_text(encoding="utf-8", errors="replace").splitlines()
    )


def _vacuum(path: str) -> None:
    """No free pages left in the file: once capped, every write that needs room fails."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("VACUUM")


def test_disk_full_on_sqlite_mid_drain(
    sqlite_db: tuple[str, Database], sink: WebhookSink, tmp_path: Path, chaos_report: Record
) -> None:
    url, db = sqlite_db
    total, dossiers = scaled(600), scaled(60)
    token = (
        ApiKeyService(db)
        .create("chaos-source", "source", actor="tests", agency_codes=["000.00.18.H42"])
        .token
    )
    sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=0.02, times=None)])
    _vacuum(url.removeprefix("sqlite:///"))
    config = write_config(tmp_path / "hub.toml", sink.url, lease_seconds=LEASE_SECONDS, routing=True)
    disk = PageLimit(tmp_path / "page-limit")
    disk.free()
    port = free_port()
    env = {CONTROL_ENV: str(disk.control), "HUB_DATA_DIR": str(tmp_path / "data")}
    full_answers: list[httpx.Response] = []

    with (
        Fleet(url, config, tmp_path / "logs", env=env) as fleet,
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client,
    ):
        fleet.start("api", "--port", str(port), command=("tests.chaos.diskfull", "serve"))
        fleet.start("w2", command=("tests.chaos.diskfull", "worker"))
        assert wait_for(lambda: client.get("/readyz").status_code == 200, within=60), fleet.log_tail()
        assert _intake(client, 1).status_code == 201
        put_many(db, "portal", [(f"D{i % dossiers}", {"n": i}) for i in range(total)])
        assert wait_for(lambda: len(sink.arrivals()) >= total // 4, within=120), fleet.log_tail()

        disk.fill()
        # Workers meet it mid-drain (their results stay in memory) ...
        assert wait_for(lambda: _workers_met_it(fleet), within=30), fleet.log_tail()
        # ... and so does the intake API; the disk stays full past a lease.
        full_answers = [_intake(client, n) for n in range(2, 5)]
        time.sleep(LEASE_SECONDS * 1.5)
        disk.free()

        after = _intake(client, 5)
        assert after.status_code == 201, after.text
        settled = wait_for(lambda: undelivered(db) == 0, within=60 + total / 10)
        logs = fleet.log_tail()
    report = verify(db, sink.arrivals())
    chaos_report(report, full_answers=[r.status_code for r in full_answers])
    for answer in full_answers:
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["code"] == "storage_full"
        assert "full" in error["message"]
        assert error["message_vi"] == unicodedata.normalize("NFC", error["message_vi"])
        assert "đầy" in error["message_vi"]
        assert "Retry-After" in answer.headers
    assert settled, f"{report}\n{logs}"
    report.assert_ok()
    assert report.enqueued == total + 2  # the two dossiers accepted before and after; none while full
    assert fleet.graceful_exits(), fleet.exits
