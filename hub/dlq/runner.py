"""Runs queued DLQ bulk jobs in the background (docs/delivery.md §8).

Hosted by every delivery worker (``process_bulk_jobs``): jobs run one at a time per runner,
in a thread, chunk by chunk (:func:`hub.dlq.service.run_next_bulk_job`). When the runner is
asked to stop, the running job finishes its current chunk and goes back to ``queued`` for
the next runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

from hub.db.availability import OutageReporter
from hub.db.session import Database
from hub.dlq.service import run_bulk_job, run_next_bulk_job

#: Seconds between looks for a queued job.
POLL_SECONDS = 2.0


class BulkJobRunner:
    def __init__(
        self,
        db: Database,
        *,
        on_progress: Callable[[], None] | None = None,
        outage: OutageReporter | None = None,
    ) -> None:
        self.db = db
        self._on_progress = on_progress
        #: Reports failures once per change of state and paces the retries (the worker's).
        self._outage = outage or OutageReporter()

    async def run(self, stop: asyncio.Event) -> None:
        """Run queued jobs until ``stop`` is set; returns once the current chunk is written."""
        while not stop.is_set():
            ran = False
            try:
                ran = await asyncio.to_thread(run_next_bulk_job, self.db, should_stop=stop.is_set)
            except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
                await self._outage.pause(max(POLL_SECONDS, self._outage.failed("bulk jobs", exc)), stop)
                continue
            self._outage.succeeded("bulk jobs")
            if ran and self._on_progress is not None:
                # Retried messages are claimable now.
                self._on_progress()
            if not ran:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=POLL_SECONDS)


def run_in_background(db: Database, job_id: int) -> None:
    """Run the queued bulk job ``job_id`` in a daemon thread of this process (the API's and
    the console's "run now", instead of waiting for a worker's runner)."""

    def run() -> None:
        run_bulk_job(db, job_id)

    threading.Thread(target=run, name=f"dlq-bulk-{job_id}", daemon=True).start()
