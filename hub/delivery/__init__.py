"""Delivery engine: the outbox worker, retry policy, circuit breaker (issue 2).

Entry points: :class:`Worker` / :func:`run_worker`; processes start it through
:mod:`hub.runtime` (embedded in ``hub serve``, or alone with ``hub worker``).

Layout: ``worker`` (claim loop, deliveries, shutdown) composes ``planner`` (how much to claim
per endpoint, and the claimed messages waiting for a slot), ``ledger`` (leases held, batched
results, heartbeat), ``breaker`` and ``retry`` (per endpoint), over an
:class:`~hub.delivery.store.OutboxStore`: ``sql_store`` (the database) or ``memory_store``
(tests). State changes and the head-of-queue rule live in :mod:`hub.outbox.transitions` and
:mod:`hub.outbox.queue`.
"""

from __future__ import annotations

from hub.delivery.worker import Worker, WorkerStats, run_worker

__all__ = ["Worker", "WorkerStats", "run_worker"]
