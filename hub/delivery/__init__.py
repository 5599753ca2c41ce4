"""Delivery engine: the outbox worker, retry policy, circuit breaker (issue 2).

Entry points: :class:`Worker` / :func:`run_worker` (embedded in ``hub serve`` or run by
``hub worker``), and ``python -m hub.delivery`` for a stand-alone worker process.
"""

from __future__ import annotations

from hub.delivery.worker import Worker, WorkerStats, run_worker

__all__ = ["Worker", "WorkerStats", "run_worker"]
