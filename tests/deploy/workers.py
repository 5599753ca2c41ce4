"""Worker processes as an operator starts them (``python -m hub worker``), for the scale-out and
reconnect tests: a webhook endpoint ``portal``, test-friendly timings, logs to a file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests import processes


def write_config(tmp_path: Path, url: str, *, lease: float = 30.0, poll: float = 0.2) -> Path:
    """Timings for a few thousand messages over several processes."""
    return processes.write_config(
        tmp_path / "hub.toml",
        url,
        lease_seconds=lease,
        heartbeat_seconds=2,
        concurrency=32,
        batch_size=50,
        poll_interval_seconds=poll,
        shutdown_grace_seconds=10,
        schedule_seconds=[0.2, 0.5, 1, 1, 1, 1, 1, 1, 1, 1],
    )


class WorkerProcess:
    """One ``hub worker`` process; its log (stderr) goes to ``<tmp>/<worker_id>.log``."""

    def __init__(self, database_url: str, config: Path, worker_id: str) -> None:
        self.worker_id = worker_id
        self.log_path = config.parent / f"{worker_id}.log"
        env = {name: value for name, value in os.environ.items() if not name.startswith("HUB_")}
        env.update(
            {"HUB_DATABASE_URL": database_url, "HUB_CONFIG_FILE": str(config), "HUB_LOG_LEVEL": "WARNING"}
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hub", "worker", "--worker-id", worker_id],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (graceful stop) and the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise
