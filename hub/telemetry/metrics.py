"""Prometheus metrics of one hub process (docs/deployment.md §6, metric table there).

Counters and histograms are updated where things happen (delivery attempts, rescues, the
fence, signing, lookups); queue depths, circuit states and worker heartbeats are read from the
database when Prometheus scrapes (:class:`DatabaseCollector`: a few aggregate queries over
partial indexes, answered from a short cache), so every process reports the same shared
truth and nothing drifts after a restart. The registry is a
:class:`prometheus_client.CollectorRegistry` of the process's own, never the library's global
default: the composition root (:mod:`hub.runtime`) makes one and the API and the worker of
that process share it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select

from hub.db.base import utcnow
from hub.db.models import DeliveryWorker, EndpointHealth, MessageState
from hub.outbox.queue import depth_by_endpoint

if TYPE_CHECKING:
    from hub.db.session import Database

log = logging.getLogger("hub.telemetry")

#: Content type of :meth:`HubMetrics.exposition` (the Prometheus text format).
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Outbox states whose rows are counted at scrape time (delivered and discarded rows pile up
#: until pruned; the attempt counters cover them).
QUEUE_STATES = (MessageState.PENDING, MessageState.IN_FLIGHT, MessageState.DEAD)
#: Circuit states exposed as one 0/1 series each (a Prometheus "state set").
CIRCUIT_STATES = ("closed", "open", "half_open")
#: From a few milliseconds to a day: a message may wait out a retry schedule of hours.
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)
#: A portal call: milliseconds to the connector's timeout.
ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: A signature: key access, pre-check (OCSP/CRL), time-stamp, the PDF.
SIGNING_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class HubMetrics:
    """The instruments of one process, on its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.attempts = Counter(
            "hub_delivery_attempts",
            "Delivery attempts finished by this process, by endpoint and outcome (delivered, retry, dead)",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.attempt_seconds = Histogram(
            "hub_delivery_attempt_duration_seconds",
            "Time of one delivery attempt (the connector's call), by endpoint",
            ["endpoint"],
            buckets=ATTEMPT_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "hub_delivery_latency_seconds",
            "From enqueue (the dossier change committed) to delivered, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rescues = Counter(
            "hub_delivery_lease_rescues",
            "Messages taken back from lost leases by this process's rescuer (reason: dead_worker, expired)",
            ["reason"],
            registry=r,
        )
        self.fenced = Counter(
            "hub_delivery_fenced",
            "Sends withheld because the lease could no longer be trusted (docs/delivery.md §12.2)",
            ["endpoint"],
            registry=r,
        )
        self.signing = Histogram(
            "hub_signing_duration_seconds",
            "Signing attempts with server-held or external keys, by key purpose and outcome "
            "(signed, prepared, refused, failed); _count is the number of attempts",
            ["purpose", "outcome"],
            buckets=SIGNING_BUCKETS,
            registry=r,
        )
        self.lookups = Counter(
            "hub_lookup_requests",
            "Citizens' status lookups by channel (api, web, qr, sms) and outcome",
            ["channel", "outcome"],
            registry=r,
        )
        self._attempt_children: dict[tuple[str, str], tuple[Any, Any, Any]] = {}

    # --- the worker ---------------------------------------------------------------------------

    def observe_attempt(
        self, endpoint: str, outcome: str, seconds: float, enqueued_for: float | None
    ) -> None:
        """One finished attempt; ``enqueued_for``: seconds since enqueue, for a delivered one."""
        children = self._attempt_children.get((endpoint, outcome))
        if children is None:  # once per (endpoint, outcome): labels() takes a lock each time
            children = self._attempt_children[endpoint, outcome] = (
                self.attempts.labels(endpoint, outcome),
                self.attempt_seconds.labels(endpoint),
                self.latency.labels(endpoint),
            )
        attempts, durations, latency = children
        attempts.inc()
        durations.observe(seconds)
        if enqueued_for is not None:
            latency.observe(max(enqueued_for, 0.0))

    def rescued(self, dead_worker: int, expired: int) -> None:
        if dead_worker:
            self.rescues.labels("dead_worker").inc(dead_worker)
        if expired:
            self.rescues.labels("expired").inc(expired)

    def observe_fenced(self, endpoint: str) -> None:
        self.fenced.labels(endpoint).inc()

    # --- the API ------------------------------------------------------------------------------

    def observe_signing(self, purpose: str | None, outcome: str, seconds: float) -> None:
        self.signing.labels(purpose or "unknown", outcome).observe(seconds)

    def observe_lookup(self, channel: str, outcome: str) -> None:
        self.lookups.labels(channel, outcome).inc()

    def watch_database(
        self,
        db: Database,
        *,
        endpoints: Iterable[str] = (),
        dead_worker_seconds: float,
        cache_seconds: float,
    ) -> DatabaseCollector:
        """Report the outbox, circuits and workers of ``db`` at scrape time (``endpoints``: the
        configured ones, reported 0 rather than absent when their queues are empty)."""
        collector = DatabaseCollector(
            db, endpoints=endpoints, dead_worker_seconds=dead_worker_seconds, cache_seconds=cache_seconds
        )
        self.registry.register(collector)
        return collector

    def exposition(self) -> bytes:
        """Every series in the Prometheus text format (reads the database, at most once per cache)."""
        return generate_latest(self.registry)


class DatabaseCollector(Collector):
    """Queue depth, oldest pending message, circuit states and worker heartbeats, from the
    database at scrape time; answers repeated scrapes within ``cache_seconds`` from memory."""

    def __init__(
        self, db: Database, *, endpoints: Iterable[str] = (), dead_worker_seconds: float, cache_seconds: float
    ) -> None:
        self._db = db
        self._endpoints = tuple(endpoints)
        self._dead_after = timedelta(seconds=dead_worker_seconds)
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def describe(self) -> Iterable[Metric]:
        return []  # no database query when the collector is registered

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self._cache_seconds:
                self._cached = (now, self._read())
            families = self._cached[1]
        yield from families

    def _read(self) -> list[Metric]:
        up = GaugeMetricFamily("hub_metrics_database_up", "1 if the last scrape could read the database")
        try:
            families = self._query()
        except Exception as exc:  # noqa: BLE001  # a scrape must answer; the outage shows as up == 0
            log.debug("metrics: database not readable: %s", exc)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [*families, up]

    def _query(self) -> list[Metric]:
        depth = GaugeMetricFamily(
            "hub_outbox_messages",
            "Outbox messages by endpoint and state (pending, in_flight, dead)",
            labels=["endpoint", "state"],
        )
        oldest = GaugeMetricFamily(
            "hub_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending message, by endpoint",
            labels=["endpoint"],
        )
        circuit = GaugeMetricFamily(
            "hub_endpoint_circuit_state",
            "Circuit breaker state as last published by a worker: 1 for the current state",
            labels=["endpoint", "state"],
        )
        failures = GaugeMetricFamily(
            "hub_endpoint_consecutive_failures", "Failures in a row as last published", labels=["endpoint"]
        )
        workers = GaugeMetricFamily(
            "hub_workers",
            "Registered delivery workers not stopped: alive, or silent past dead_worker_seconds",
            labels=["state"],
        )
        h, w = EndpointHealth, DeliveryWorker
        now = utcnow()
        with self._db.reader.connect() as conn:
            rows = conn.execute(depth_by_endpoint(QUEUE_STATES)).all()
            health = conn.execute(select(h.endpoint, h.state, h.consecutive_failures)).all()
            beats = conn.execute(select(w.last_heartbeat_at).where(w.stopped_at.is_(None))).scalars().all()
            conn.rollback()
        counts = {(endpoint, state.value): 0 for endpoint in self._endpoints for state in QUEUE_STATES}
        for endpoint, state, count, first in rows:
            counts[endpoint, state] = count
            if state == MessageState.PENDING.value and first is not None:
                oldest.add_metric([endpoint], max((now - first).total_seconds(), 0.0))
        for (endpoint, state), count in sorted(counts.items()):
            depth.add_metric([endpoint, state], count)
        for endpoint, state, consecutive in health:
            for name in CIRCUIT_STATES:
                circuit.add_metric([endpoint, name], 1 if state == name else 0)
            failures.add_metric([endpoint], consecutive)
        alive = sum(1 for beat in beats if now - beat < self._dead_after)
        workers.add_metric(["alive"], alive)
        workers.add_metric(["silent"], len(beats) - alive)
        return [depth, oldest, circuit, failures, workers]
