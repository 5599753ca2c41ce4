"""``hub serve``: API and the in-process delivery worker, as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from hub.auth.keys import ApiKeyService
from hub.db.migrate import upgrade
from hub.db.session import Database
from hub.simulators.sink import WebhookSink
from schemas.timefmt import VN_TZ
from tests.api.livehub import dossier_json, free_port

HUB = str(Path(sys.executable).with_name("hub"))


def wait_ready(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"hub serve exited: {process.stderr.read() if process.stderr else ''}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("hub serve did not become ready")


@pytest.mark.parametrize("with_worker", [True, False])
def test_serve_runs_api_and_worker(database_url: str, tmp_path: Path, with_worker: bool) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    upgrade(database_url)
    db = Database.connect(database_url)
    token = ApiKeyService(db).create("src", "source", actor="test").token
    with WebhookSink() as sink:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(
            HUB_DATABASE_URL=database_url,
            HUB_DATA_DIR=str(tmp_path / "data"),
            HUB_API__PORT=str(port),
            HUB_API__PUBLIC_BASE_URL=base,
            HUB_WORKER__POLL_INTERVAL_SECONDS="0.1",
            HUB_ENDPOINTS=json.dumps({"portal": {"kind": "webhook", "url": sink.url}}),
            HUB_ROUTING=json.dumps([{"kinds": ["dossier.sync"], "endpoints": ["portal"]}]),
        )
        args = [HUB, "serve", "--port", str(port)] + ([] if with_worker else ["--no-worker"])
        process = subprocess.Popen(
            args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            wait_ready(base, process)
            code = f"000.00.18.H42-{datetime.now(VN_TZ):%y%m%d}-0001"
            dossier = dossier_json(
                code=code,
                received_at=datetime.now(VN_TZ).isoformat(),
                due_at=(datetime.now(VN_TZ) + timedelta(days=3)).isoformat(),
            )
            headers = {"Authorization": f"Bearer {token}"}
            created = httpx.post(f"{base}/api/v1/dossiers", json={"dossier": dossier}, headers=headers)
            assert created.status_code == 201, created.text
            deadline = time.monotonic() + (20 if with_worker else 2)
            state = "pending"
            while time.monotonic() < deadline and state != "delivered":
                state = httpx.get(f"{base}/api/v1/dossiers/{code}/deliveries", headers=headers).json()[0][
                    "state"
                ]
                time.sleep(0.1)
            assert state == ("delivered" if with_worker else "pending")
            assert len(sink.arrivals()) == (1 if with_worker else 0)
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=30)
            db.dispose()
        assert process.returncode == 0, err
        assert "Traceback" not in err
        assert "001099012345" not in err  # the owner's ID number never reaches the logs
