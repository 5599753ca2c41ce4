"""Delivery engine: the outbox worker, retry policy, circuit breaker (issue 2).

Entry points: :class:`Worker` / :func:`run_worker`; processes start it through
:mod:`hub.runtime` (embedded in ``hub serve``, or alone with ``hub worker``).
"""

from __future__ import annotations

from hub.delivery.worker import Worker, WorkerStats, run_worker

__all__ = ["Worker", "WorkerStats", "run_worker"]
