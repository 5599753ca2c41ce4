"""Scheduled exports (docs/reports.md §10) on both backends: the period a run owes, a real
folder written atomically and once, two runners racing, a failure retried, a stale claim taken
over, and a real loopback endpoint reached through the outbox (with a retry)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import insert, select

from hub.config import ReportSchedule, Settings
from hub.db.models import AuditEntry, DossierRow, OutboxMessage
from hub.db.session import Database
from hub.reports.models import ReportExportRun
from hub.reports.projection import rebuild
from hub.reports.query import GroupBy, day_range
from hub.reports.schedules import due_period, run_schedules
from hub.reports.service import ReportService
from schemas.timefmt import VN_TZ
from tests.api.livehub import live_hub
from tests.reports.support import dossier_rows, generate

#: 2 July 2025, 07:00 Vietnam time: the monthly run of 1 July 06:00 is due (June).
NOW = datetime.fromisoformat("2025-07-02T07:00:00+07:00")


def _schedule(**values: Any) -> ReportSchedule:
    return ReportSchedule.model_validate({"name": "monthly", **values})


@pytest.mark.parametrize(
    ("values", "now", "period"),
    [
        ({}, "2025-07-01T06:00:00+07:00", "2025-06"),
        ({}, "2025-07-01T05:59:00+07:00", "2025-05"),  # not yet due: the last run owed is June's
        ({}, "2025-06-30T23:30:00+00:00", "2025-06"),  # 1 July 06:30 in Vietnam
        ({"day": 5, "time": "08:30"}, "2025-01-04T12:00:00+07:00", "2024-11"),
        ({"period": "previous_quarter"}, "2025-05-20T00:00:00+07:00", "2025-Q1"),
        ({"period": "previous_quarter"}, "2025-01-01T07:00:00+07:00", "2024-Q4"),
        ({"period": "previous_quarter", "day": 10}, "2025-04-09T07:00:00+07:00", "2024-Q4"),
        ({"period": "previous_year"}, "2026-03-01T00:00:00+07:00", "2025"),
        ({"period": "previous_year", "day": 15}, "2026-01-14T00:00:00+07:00", "2024"),
    ],
)
def test_the_period_a_run_owes(values: dict[str, Any], now: str, period: str) -> None:
    due = due_period(_schedule(folder="/tmp/x", **values), datetime.fromisoformat(now))
    assert due.period == period
    assert due.due_at <= datetime.fromisoformat(now)
    assert due.window == day_range(period=period)


def test_a_schedule_needs_one_target_and_a_declared_webhook() -> None:
    with pytest.raises(ValueError, match="exactly one of folder and endpoint"):
        _schedule()
    with pytest.raises(ValueError, match="not a declared webhook endpoint"):
        Settings(reports={"schedules": [{"name": "m", "endpoint": "nowhere"}]})
    with pytest.raises(ValueError, match="no PDF"):
        _schedule(folder="/tmp/x", report="usage", format="pdf")


def _store(db: Database) -> None:
    dossiers = generate(300, 2025, seed=9)
    with db.transaction() as session:
        session.execute(insert(DossierRow), dossier_rows(dossiers))
        rebuild(session.connection(), batch=256)


def _settings(database_url: str, *schedules: dict[str, Any], **extra: Any) -> Settings:
    return Settings(database_url=database_url, reports={"schedules": list(schedules)}, **extra)


def _runs(db: Database) -> list[ReportExportRun]:
    with db.sessions() as session:
        return list(session.scalars(select(ReportExportRun).order_by(ReportExportRun.id)))


def _audits(db: Database) -> list[AuditEntry]:
    with db.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == "report.export")))


def _sheet_values(body: bytes) -> list[Any]:
    sheet = openpyxl.load_workbook(io.BytesIO(body)).active
    assert sheet is not None
    return [cell for row in sheet.iter_rows(values_only=True) for cell in row]


def test_folder_export_is_written_once_and_audited(db: Database, database_url: str, tmp_path: Path) -> None:
    _store(db)
    folder = tmp_path / "exports"
    settings = _settings(
        database_url,
        {"name": "monthly", "folder": str(folder), "group_by": "field"},
        {"name": "usage-csv", "report": "usage", "format": "csv", "folder": str(folder)},
    )
    first = run_schedules(db, settings, NOW)
    assert [(o.schedule, o.period, o.outcome) for o in first] == [
        ("monthly", "2025-06", "done"),
        ("usage-csv", "2025-06", "done"),
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["monthly-2025-06.xlsx", "usage-csv-2025-06.csv"]
    written = (folder / "monthly-2025-06.xlsx").read_bytes()
    expected = ReportService(db, settings).ontime(day_range(period="2025-06"), GroupBy.FIELD)
    values = _sheet_values(written)
    assert expected.total.received in values
    assert [row.key for row in expected.rows if row.key in values] == [row.key for row in expected.rows]
    assert (folder / "usage-csv-2025-06.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    stamp = (folder / "monthly-2025-06.xlsx").stat().st_mtime_ns

    again = run_schedules(db, settings, NOW + timedelta(hours=3))
    assert [o.outcome for o in again] == ["skipped", "skipped"]
    assert (folder / "monthly-2025-06.xlsx").stat().st_mtime_ns == stamp
    runs = _runs(db)
    assert [(r.schedule, r.period, r.state, r.attempts) for r in runs] == [
        ("monthly", "2025-06", "done", 1),
        ("usage-csv", "2025-06", "done", 1),
    ]
    assert runs[0].sha256 == hashlib.sha256(written).hexdigest()
    assert runs[0].target == f"folder:{folder / 'monthly-2025-06.xlsx'}"
    audits = _audits(db)
    assert [(a.target, a.details["outcome"]) for a in audits] == [
        ("monthly/2025-06", "done"),
        ("usage-csv/2025-06", "done"),
    ]
    assert audits[0].actor == "system:report-schedules"
    # a month later the next period is owed
    later = run_schedules(db, settings, NOW + timedelta(days=31))
    assert [(o.period, o.outcome) for o in later] == [("2025-07", "done"), ("2025-07", "done")]


def test_two_runners_racing_export_once(db: Database, database_url: str, tmp_path: Path) -> None:
    _store(db)
    folder = tmp_path / "exports"
    settings = _settings(database_url, {"name": "monthly", "folder": str(folder)})
    runners = [Database.connect(database_url, pool_size=2) for _ in range(4)]
    start = threading.Barrier(len(runners))
    outcomes: list[str] = []

    def run(runner: Database) -> None:
        start.wait()
        outcomes.extend(o.outcome for o in run_schedules(runner, settings, NOW))

    threads = [threading.Thread(target=run, args=(runner,)) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for runner in runners:
        runner.dispose()
    assert sorted(outcomes) == ["done", "skipped", "skipped", "skipped"]
    assert [p.name for p in folder.iterdir()] == ["monthly-2025-06.xlsx"]  # no temporary left
    assert len(_runs(db)) == 1
    assert len(_audits(db)) == 1


def test_a_failed_export_is_retried_and_a_stale_claim_taken_over(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    _store(db)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    broken = _settings(database_url, {"name": "monthly", "folder": str(blocker / "exports")})
    (failed,) = run_schedules(db, broken, NOW)
    assert failed.outcome == "failed"
    (run,) = _runs(db)
    assert (run.state, run.attempts) == ("failed", 1)
    assert run.error is not None
    assert "FileExistsError" in run.error or "NotADirectoryError" in run.error
    assert [a.details["outcome"] for a in _audits(db)] == ["failed"]

    folder = tmp_path / "exports"
    fixed = _settings(database_url, {"name": "monthly", "folder": str(folder)})
    (done,) = run_schedules(db, fixed, NOW + timedelta(minutes=5))
    assert done.outcome == "done"
    (run,) = _runs(db)
    assert (run.state, run.attempts, run.error) == ("done", 2, None)

    # a runner that died after its claim: taken over once the claim is stale, not before
    with db.transaction() as session:
        session.add(
            ReportExportRun(
                schedule="monthly",
                period="2025-07",
                state="running",
                attempts=1,
                claimed_at=NOW + timedelta(days=31),
            )
        )
    next_month = NOW + timedelta(days=31, minutes=10)
    assert [o.outcome for o in run_schedules(db, fixed, next_month)] == ["skipped"]
    assert [o.outcome for o in run_schedules(db, fixed, next_month + timedelta(minutes=30))] == ["done"]
    assert (folder / "monthly-2025-07.xlsx").exists()


class _Receiver:
    """A loopback HTTPS-less receiver: answers 503 to the first POST, 200 after."""

    def __init__(self) -> None:
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.bodies.append((dict(self.headers), body))
                    first = len(receiver.bodies) == 1
                self.send_response(503 if first else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/exports"


@contextmanager
def _receiver() -> Iterator[_Receiver]:
    receiver = _Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_an_endpoint_export_goes_through_the_outbox(db: Database, database_url: str, tmp_path: Path) -> None:
    _store(db)
    with _receiver() as receiver:
        endpoints = {
            "dvcqg": {"kind": "webhook", "url": "http://127.0.0.1:9/dvcqg"},
            "lgsp": {"kind": "webhook", "url": "http://127.0.0.1:9/lgsp"},
            "province": {
                "kind": "webhook",
                "url": receiver.url,
                "password": "token-from-the-secrets-dir",
                "retry": {"schedule_seconds": [0.2, 0.2], "jitter_ratio": 0},
            },
        }
        schedule = {"name": "quarterly", "period": "previous_quarter", "endpoint": "province"}
        with live_hub(
            database_url,
            tmp_path / "d",
            worker=True,
            endpoints=endpoints,
            reports={"schedules": [schedule], "schedule_check_seconds": 0},
        ) as hub:
            outcomes = run_schedules(hub.db, hub.settings, NOW)
            assert [(o.period, o.outcome) for o in outcomes] == [("2025-Q2", "done")]
            assert [o.outcome for o in run_schedules(hub.db, hub.settings, NOW)] == ["skipped"]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with db.sessions() as session:
                    state = session.scalar(
                        select(OutboxMessage.state).where(OutboxMessage.endpoint == "province")
                    )
                if state is not None and str(getattr(state, "value", state)) == "delivered":
                    break
                time.sleep(0.1)
            expected = ReportService(db, hub.settings).ontime(day_range(period="2025-Q2"), GroupBy.PROCEDURE)
    assert len(receiver.bodies) == 2  # 503, then delivered on the retry
    (h1, b1), (h2, b2) = receiver.bodies
    assert b1 == b2
    assert h1["Authorization"] == "Bearer token-from-the-secrets-dir"
    assert h1["X-Message-Id"] == h2["X-Message-Id"]
    assert h1["X-Message-Kind"] == "report.export"
    payload = json.loads(b2)
    body = base64.b64decode(payload["content_base64"])
    assert payload["sha256"] == hashlib.sha256(body).hexdigest()
    assert payload["size"] == len(body)
    assert (payload["period"], payload["from"], payload["to"]) == ("2025-Q2", "2025-04-01", "2025-06-30")
    assert payload["file_name"] == "quarterly-2025-Q2.xlsx"
    assert expected.total.received in _sheet_values(body)
    (run,) = _runs(db)
    assert run.state == "done"
    assert run.target is not None
    assert run.target.startswith("endpoint:province#")


def test_two_worker_processes_run_the_schedules_once(db: Database, database_url: str, tmp_path: Path) -> None:
    """The worker runtime runs the schedules itself (``reports.schedule_check_seconds``): two
    hubs with workers on one database export the period owed now once."""
    _store(db)
    folder = tmp_path / "exports"
    reports = {
        "schedules": [{"name": "yearly", "period": "previous_year", "folder": str(folder)}],
        "schedule_check_seconds": 0.2,
    }
    with (
        live_hub(database_url, tmp_path / "a", worker=True, reports=reports),
        live_hub(database_url, tmp_path / "b", roles=(), worker=True, reports=reports),
    ):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not _runs(db):
            time.sleep(0.1)
        time.sleep(1)  # several more rounds of both runners
        runs = _runs(db)
    year = datetime.now(VN_TZ).year - 1
    assert [(r.schedule, r.period, r.state, r.attempts) for r in runs] == [("yearly", str(year), "done", 1)]
    assert [p.name for p in folder.iterdir()] == [f"yearly-{year}.xlsx"]
    assert len(_audits(db)) == 1


def test_the_command_runs_the_schedules(db: Database, database_url: str, tmp_path: Path) -> None:
    """``hub report run-schedules`` as a cron job calls it: a TOML configuration, one export,
    then nothing more for the same period."""
    folder = tmp_path / "exports"
    config = tmp_path / "hub.toml"
    config.write_text(
        f'database_url = "{database_url}"\n\n[[reports.schedules]]\nname = "monthly"\nformat = "csv"\n'
        f'folder = "{folder}"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_CONFIG_FILE=str(config), PYTHONPATH=os.pathsep.join(sys.path))
    command = [sys.executable, "-m", "hub", "report", "run-schedules"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    period = due_period(_schedule(folder=str(folder)), datetime.now(VN_TZ)).period
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"monthly {period} done folder:")
    assert second.stdout.strip() == f"monthly {period} skipped"
    assert [p.name for p in folder.iterdir()] == [f"monthly-{period}.csv"]
