"""Delivery engine: the outbox worker, retry policy, circuit breaker (issue 2).

Entry points: :class:`Worker` / :func:`run_worker` (embedded in ``hub serve`` or run by
``hub worker``), and ``python -m hub.delivery`` for a stand-alone worker process.

Layout: ``worker`` (claim loop, deliveries, shutdown) composes ``planner`` (how much to claim
per endpoint), ``ledger`` (leases held, batched results, heartbeat), ``breaker`` and ``retry``
(per endpoint), over an :class:`~hub.delivery.store.OutboxStore`: ``sql_store`` (the database)
or ``memory_store`` (tests). State changes and the head-of-queue rule live in
:mod:`hub.outbox.transitions` and :mod:`hub.outbox.queue`.
"""

from __future__ import annotations

from hub.delivery.worker import Worker, WorkerStats, run_worker

__all__ = ["Worker", "WorkerStats", "run_worker"]
