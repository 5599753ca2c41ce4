"""Outages are recorded (issue 12): a gap between a hub's stop and the next start, a database
outage once the database is back, and an operator's outage of the department's software; the
report merges what several processes recorded (docs/architecture.md, "Late entries")."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from hub import runtime
from hub.db.availability import OutageSpan
from hub.db.models import AuditEntry, HubRun, OutageRow
from hub.db.session import Database
from hub.services.outages import OutageKind, outage_report, record_outages
from schemas.timefmt import VN_TZ, now_utc
from tests.api.livehub import hub_settings, live_hub
from tests.cli.test_cli_commands import hub_env
from tests.delivery.helpers import wait_until
from tests.pgcluster import PrivatePostgres

HUB = str(Path(sys.executable).with_name("hub"))
FAST = {"heartbeat_seconds": 0.2, "min_gap_seconds": 1.0}


def outages(db: Database, kind: str) -> list[OutageRow]:
    with db.sessions() as session:
        return list(session.scalars(select(OutageRow).where(OutageRow.kind == kind).order_by(OutageRow.id)))


def runs(db: Database) -> list[HubRun]:
    with db.sessions() as session:
        return list(session.scalars(select(HubRun).order_by(HubRun.id)))


def test_a_gap_between_hub_runs_is_recorded_as_a_hub_outage(database_url: str, tmp_path: Path) -> None:
    settings = hub_settings(database_url, tmp_path / "data", 0, outages=FAST)
    db = Database.connect(database_url)
    try:
        for pause in (0.0, 1.6):  # a quick restart is no outage; 1.6 s down (> min_gap 1 s) is one
            time.sleep(pause)
            with runtime.run_in_thread(settings, api=False, worker=True):
                pass
        with runtime.run_in_thread(settings, api=False, worker=True):
            pass
        recorded = outages(db, "hub")
        first, second, third = runs(db)
    finally:
        db.dispose()
    assert [r.kind for r in (first, second, third)] == ["worker"] * 3
    assert all(r.stopped_at is not None for r in (first, second, third))
    [outage] = recorded
    assert first.stopped_at is not None
    assert outage.started_at == first.stopped_at
    assert outage.ended_at == second.started_at
    assert (outage.ended_at - outage.started_at).total_seconds() >= 1.6
    assert outage.recorded_by == "hub"


def test_report_merges_overlapping_records_and_clips_to_the_period(db: Database) -> None:
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=VN_TZ)
    spans = [
        OutageSpan(t0, t0 + timedelta(minutes=10), "connection refused"),  # seen by two processes
        OutageSpan(t0 + timedelta(minutes=2), t0 + timedelta(minutes=12), "server closed the connection"),
        OutageSpan(t0 + timedelta(hours=2), t0 + timedelta(hours=3), "connection refused"),
    ]
    record_outages(db, OutageKind.DATABASE, spans, "hub")
    report = outage_report(db, t0 - timedelta(hours=1), t0 + timedelta(hours=2, minutes=30))
    assert [(o.kind, o.started_at, o.ended_at) for o in report.outages] == [
        (OutageKind.DATABASE, t0, t0 + timedelta(minutes=12)),
        (OutageKind.DATABASE, t0 + timedelta(hours=2), t0 + timedelta(hours=2, minutes=30)),
    ]
    assert report.outages[0].reasons == ["connection refused", "server closed the connection"]
    assert report.seconds_by_kind == {"database": 42 * 60.0, "hub": 0.0, "department": 0.0}


def _cli(database_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = hub_env(database_url, tmp_path, USER="operator1")
    return subprocess.run(
        [HUB, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )


def test_operator_adds_a_department_outage_audited_and_reported(database_url: str, tmp_path: Path) -> None:
    start, end = "2026-03-02T08:00:00+07:00", "2026-03-02T11:30:00+07:00"
    reason = "Phần mềm một cửa của Sở ngừng hoạt động"
    added = _cli(database_url, tmp_path, "outage", "add", "--from", start, "--to", end, "--reason", reason)
    backwards = _cli(database_url, tmp_path, "outage", "add", "--from", end, "--to", start, "--reason", "x")
    report = _cli(
        database_url,
        tmp_path,
        "report",
        "outages",
        "--from",
        "2026-03-01T00:00+07:00",
        "--to",
        "2026-03-03",
        "--json",
    )
    assert added.returncode == 0, added.stderr
    assert backwards.returncode == 2
    assert "ends after it starts" in backwards.stderr
    assert report.returncode == 0, report.stderr
    [outage] = json.loads(report.stdout)["outages"]
    assert outage["kind"] == "department"
    assert outage["reasons"] == [reason]
    assert outage["recorded_by"] == ["cli:operator1"]
    assert outage["seconds"] == 3.5 * 3600
    db = Database.connect(database_url)
    try:
        with db.sessions() as session:
            actions = session.execute(select(AuditEntry.action, AuditEntry.actor)).all()
    finally:
        db.dispose()
    assert [tuple(a) for a in actions] == [("outage.add", "cli:operator1")]


def test_outage_report_api_for_technicians(database_url: str, tmp_path: Path) -> None:
    t0 = now_utc() - timedelta(days=2)
    with live_hub(database_url, tmp_path / "data") as hub:
        record_outages(
            hub.db, OutageKind.DATABASE, [OutageSpan(t0, t0 + timedelta(minutes=5), "refused")], "hub"
        )
        with hub.client("technician") as client:
            default = client.get("/api/v1/reports/outages")
            empty = client.get(
                "/api/v1/reports/outages",
                params={
                    "from": (t0 - timedelta(days=3)).isoformat(),
                    "to": (t0 - timedelta(days=1)).isoformat(),
                },
            )
            naive = client.get("/api/v1/reports/outages", params={"from": "2026-03-01T00:00:00"})
        with hub.client("source") as client:
            refused = client.get("/api/v1/reports/outages")
    assert default.status_code == 200, default.text
    assert [o["seconds"] for o in default.json()["outages"]] == [300.0]
    assert empty.json()["outages"] == []
    assert naive.status_code == 422
    assert refused.status_code == 403


@pytest.mark.slow
def test_a_database_outage_is_recorded_once_the_database_is_back(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    url = private_postgres.create_database("hub")
    env = hub_env(
        url,
        tmp_path,
        HUB_WORKER__POLL_INTERVAL_SECONDS="0.1",
        HUB_OUTAGES__HEARTBEAT_SECONDS="0.2",
        HUB_OUTAGES__MIN_GAP_SECONDS="60",
    )
    process = subprocess.Popen(
        [HUB, "worker"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    db = Database.connect(url)
    try:
        wait_until(lambda: len(runs(db)) == 1)
        db.engine.dispose()
        before = now_utc()
        private_postgres.stop()
        time.sleep(3)  # the outage (not a measurement)
        private_postgres.start()
        after = now_utc()
        wait_until(lambda: len(outages(db, "database")) == 1, within=30)
        [outage] = outages(db, "database")
    finally:
        process.terminate()
        process.communicate(timeout=60)
        db.dispose()
    assert before <= outage.started_at < outage.ended_at <= now_utc()
    assert outage.started_at < after
    assert outage.reason
    assert outage.recorded_by == "hub"
