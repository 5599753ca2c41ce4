"""The delivery worker: claims outbox messages, calls connectors, records every attempt.

Design (docs/delivery.md §4–§7, §9, §11), split the way procrastinate splits its worker:

* the worker plans and delivers: :class:`~hub.delivery.planner.CapacityPlanner` sizes each
  claim (``max_in_flight`` per endpoint and a circuit breaker, so a dead portal never holds
  more than its own slots) and, under load, claims ahead of the free slots: the messages
  waiting for a slot start as soon as one frees (§11.4); each claimed message is delivered by
  its endpoint's connector and the outcome decided by the endpoint's retry policy;
* an :class:`~hub.delivery.store.OutboxStore` owns the rows: claims with a lease per claim
  batch, guarded completions, heartbeats, rescue of expired leases, and wake-ups (``LISTEN``
  on PostgreSQL, in-process commits, a cheap poll otherwise and as a safety net);
* a :class:`~hub.delivery.ledger.LeaseLedger` keeps the leases held (heartbeat), keeps the
  worker registered (its own heartbeat), fences every send (a message is sent only while its
  lease can be trusted, §12.2) and writes results in batches; a rescuer pass returns to the
  queue the messages of workers that missed their heartbeats and of expired leases (§12.3);
* claiming pauses while the worker cannot heartbeat or its results are not draining (§12.1);
* connectors and their HTTP clients come from :func:`connectors.registry.open_connectors`;
  DLQ bulk jobs and the pruning of finished work run beside the worker
  (:class:`hub.dlq.runner.BulkJobRunner`, :class:`hub.outbox.retention.RetentionRunner`);
* a database outage is reported once per change of state, and every loop (claim, flush,
  heartbeat, rescue, listen, bulk jobs) retries with a capped backoff, through one shared
  :class:`~hub.db.availability.OutageReporter`; the claim loop beats a
  :class:`~hub.health.WorkerPulse` that ``/readyz`` reads;
* when an endpoint's circuit closes, the messages its outage pushed back are made due at once
  (:meth:`~hub.delivery.store.OutboxStore.make_due`); a half-open circuit with nothing due
  makes its soonest held message due, so the probe has something to send;
* graceful stop: no new claims, in-flight deliveries get ``shutdown_grace_seconds``, the rest
  are cancelled and their messages released without counting an attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from connectors.base import Connector, Delivery
from connectors.http import TransportKind, send_fence
from connectors.registry import open_connectors
from connectors.settings import EndpointSettings
from hub.config import Settings
from hub.db.availability import OutageReporter
from hub.db.base import utcnow
from hub.db.session import Database
from hub.delivery.breaker import BreakerState, BreakerTransition, CircuitBreaker
from hub.delivery.ledger import LeaseLedger, WorkerStats
from hub.delivery.planner import CapacityPlanner
from hub.delivery.retry import RetryPolicy, is_retryable
from hub.delivery.sql_store import SqlOutboxStore
from hub.delivery.store import (
    TOKEN_SEPARATOR,
    ClaimedMessage,
    Completion,
    OutboxStore,
    Rescuer,
    WorkerRegistration,
)
from hub.dlq.runner import BulkJobRunner
from hub.health import WorkerPulse
from hub.outbox.retention import RetentionRunner
from hub.outbox.transitions import AttemptOutcome
from hub.telemetry import correlation
from hub.telemetry.process import Telemetry
from hub.waits import first_of
from schemas.errors import HubError, SendFencedError

log = logging.getLogger("hub.delivery")

__all__ = ["RESCUE_INTERVAL_SECONDS", "Worker", "WorkerStats", "new_worker_id", "run_worker"]

#: Seconds between rescuer passes (at most; half ``dead_worker_seconds`` when that is shorter).
RESCUE_INTERVAL_SECONDS = 2.0
#: Seconds shutdown waits for a running flush before cancelling the flusher.
FLUSH_WAIT_SECONDS = 10.0


def _attempt(
    message: ClaimedMessage, outcome: AttemptOutcome, started: datetime, **result: Any
) -> Completion:
    """The completion of ``message``'s attempt begun at ``started``, finishing now; ``result``:
    the other :class:`Completion` fields."""
    return Completion(
        seq=message.seq,
        lease_token=message.lease_token,
        attempt_no=message.attempt_no,
        outcome=outcome,
        started_at=started,
        finished_at=utcnow(),
        manual=message.manual,
        **result,
    )


def new_worker_id(name: str | None = None) -> str:
    """``<name or host>:<pid>:<random>``: unique per run, never containing ``#`` (lease tokens)."""
    base = (name or socket.gethostname()).replace(TOKEN_SEPARATOR, "_")[:60]
    return f"{base}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """One delivery worker (run several processes for more throughput or availability).

    ``store`` defaults to the SQL store on ``db``; with another store (the in-memory one in
    tests) ``db`` may be ``None``, and DLQ bulk jobs and pruning, which need the database, are
    not run. ``outage`` is the process's shared database reporter and ``pulse`` the sign of life
    readiness reads (:class:`hub.runtime.RunningHub` passes both; defaults: the worker's own).
    ``worker_id`` is the name recorded on attempts; the worker registers under
    :attr:`registration` (that name, or the host, plus pid and a random part: unique per run).
    """

    def __init__(
        self,
        settings: Settings,
        db: Database | None,
        *,
        connectors: Mapping[str, Connector] | None = None,
        worker_id: str | None = None,
        transport: TransportKind = TransportKind.AIOHTTP,
        process_bulk_jobs: bool = True,
        store: OutboxStore | None = None,
        outage: OutageReporter | None = None,
        pulse: WorkerPulse | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.outage = outage or OutageReporter()
        #: Metrics, the attempt log line and spans (:mod:`hub.telemetry`; the runtime's, shared).
        self.telemetry = telemetry or Telemetry()
        self.pulse = pulse or WorkerPulse()
        if store is None:
            if db is None:
                raise TypeError("Worker needs a database or an outbox store")
            store = SqlOutboxStore(db, settings.worker, outage=self.outage)
        self.settings = settings
        self.config = settings.worker
        self.db = db
        self.store: OutboxStore = store
        self.worker_id = worker_id or new_worker_id()
        self.registration = WorkerRegistration(
            id=self.worker_id if worker_id is None else new_worker_id(worker_id),
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        self.stats = WorkerStats()
        self._transport = transport
        self.endpoints: dict[str, EndpointSettings] = {
            name: endpoint for name, endpoint in settings.endpoints.items() if endpoint.enabled
        }
        if connectors is not None:
            self.endpoints = {name: ep for name, ep in self.endpoints.items() if name in connectors}
        self._given_connectors = dict(connectors) if connectors is not None else None
        self._connectors: dict[str, Connector] = {}
        self.policies = {name: RetryPolicy(ep.retry) for name, ep in self.endpoints.items()}
        self.breakers = {name: CircuitBreaker(name, ep.breaker) for name, ep in self.endpoints.items()}
        self.planner = CapacityPlanner(self.config, self.endpoints, self.breakers)
        self.ledger = LeaseLedger(
            store,
            self.config,
            worker_id=self.worker_id,
            registration=self.registration,
            stats=self.stats,
            on_flushed=self.wake,
            outage=self.outage,
            on_lost=self._cancel_lost,
        )
        self._bulk_jobs = (
            BulkJobRunner(db, on_progress=self.wake, outage=self.outage)
            if process_bulk_jobs and db is not None
            else None
        )
        self._retention = RetentionRunner(db, settings.retention) if db is not None else None
        #: Per endpoint: the opening of its circuit for which a probe was already made due.
        self._probe_made_due: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._deliveries: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._claim_counter = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._capacity = asyncio.Event()
        self._stopping = asyncio.Event()

    # --- public ----------------------------------------------------------------------------

    def wake(self) -> None:
        """Ask the worker to look for new messages now (thread-safe)."""
        loop = self._loop
        if loop is None:
            return
        try:
            if asyncio.get_running_loop() is loop:
                self._wake.set()
                return
        except RuntimeError:
            pass
        loop.call_soon_threadsafe(self._wake.set)

    @property
    def in_flight(self) -> int:
        return self.planner.total_in_flight

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then shut down gracefully."""
        self._loop = asyncio.get_running_loop()
        async with self._open_connectors() as connectors, self.store.listen(self.wake):
            self._connectors = connectors
            log.info("worker %s started: endpoints=%s", self.worker_id, sorted(self.endpoints))
            await self.ledger.beat()  # registered before the first claim (retried by its loop)
            background = [
                asyncio.create_task(self.ledger.run_flusher(), name="flush"),
                asyncio.create_task(self.ledger.run_heartbeat(), name="heartbeat"),
                asyncio.create_task(self.ledger.run_worker_heartbeat(), name="worker-heartbeat"),
                asyncio.create_task(self._rescue_loop(), name="rescue"),
            ]
            bulk_jobs = (
                asyncio.create_task(self._bulk_jobs.run(self._stopping), name="bulk-jobs")
                if self._bulk_jobs is not None
                else None
            )
            retention = (
                asyncio.create_task(self._retention.run(self._stopping), name="retention")
                if self._retention is not None
                else None
            )
            claim_task = asyncio.create_task(self._claim_loop(stop), name="claim")
            try:
                await stop.wait()
            finally:
                self._stopping.set()
                self._wake.set()
                self._capacity.set()
                await asyncio.gather(claim_task, return_exceptions=True)
                self._release_waiting()  # claimed ahead, never started: back without an attempt
                await self._drain()
                if bulk_jobs is not None:
                    # It finishes its current chunk and puts the job back for the next worker.
                    await asyncio.gather(bulk_jobs, return_exceptions=True)
                if retention is not None:
                    await asyncio.gather(retention, return_exceptions=True)  # after its current batch
                await self.ledger.wait_idle(FLUSH_WAIT_SECONDS)
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
                await self.ledger.release_leftovers()
                await self.ledger.deregister()
                self.pulse.stop()
                log.info("worker %s stopped: %s", self.worker_id, self.stats)

    def _open_connectors(self) -> contextlib.AbstractAsyncContextManager[dict[str, Connector]]:
        if self._given_connectors is not None:
            return _given(self._given_connectors)  # the caller's: not closed here
        return open_connectors(self.endpoints, transport=self._transport)

    # --- claiming --------------------------------------------------------------------------

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.pulse.beat()
            if not self.ledger.alive():
                # Not heartbeating: whatever it claimed could be rescued before it is sent (§12.2).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.config.poll_interval_seconds)
                continue
            if self.ledger.backlogged():
                # Results are not draining (a row locked elsewhere, a slow database): claiming
                # more would only pile up leases (§12.1). A flush wakes the loop.
                self._wake.clear()
                await first_of((self._wake, stop), seconds=self.config.poll_interval_seconds)
                continue
            wants = self.planner.wants()
            got = 0
            if wants:
                self._claim_counter += 1
                token = self.registration.token(self._claim_counter)
                ticket = self.ledger.ticket()
                self._wake.clear()
                try:
                    claimed = await self.store.claim(wants, token, self.config.lease_seconds)
                except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
                    await self.outage.retry_later("claim", exc, stop)
                    continue
                self.outage.succeeded("claim")
                await self._provide_probes(wants, claimed)
                if stop.is_set() and claimed:
                    await self.store.release([(m.seq, token) for m in claimed])
                    return
                got = len(claimed)
                self.stats.claimed += got
                for message in claimed:
                    self.ledger.hold(message, ticket)  # heartbeated and fenced from now on
                    self.planner.wait(message)
                self._start_waiting()
            if got and got >= sum(wants.values()):
                # Probably more waiting: claim again once there is room for a threshold's worth,
                # while the messages claimed ahead keep the slots busy (§11.4).
                self._capacity.clear()
                if not self.planner.has_room():
                    await first_of((self._capacity, stop), seconds=self.config.poll_interval_seconds)
                continue
            await first_of((self._wake, stop), seconds=self.config.poll_interval_seconds)

    async def _provide_probes(self, wants: Mapping[str, int], claimed: list[ClaimedMessage]) -> None:
        """A half-open circuit probes with a real message: when none of its endpoint's is due
        (the outage pushed them all back), make the soonest held one due, once per opening; a try
        that finds none held (their failures not written yet) is made again at the next claim."""
        got = {message.endpoint for message in claimed}
        for endpoint in wants:
            breaker = self.breakers[endpoint]
            if (
                endpoint in got
                or breaker.state is not BreakerState.HALF_OPEN
                or breaker.failing_since is None
            ):
                continue
            if self._probe_made_due.get(endpoint) == breaker.opened_at:
                continue
            try:
                made = await self.store.make_due(endpoint, since=breaker.failing_since, limit=1)
            except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
                self.outage.failed("make due", exc)
                return
            self.outage.succeeded("make due")
            if made:  # none yet (the failures not written yet): try again at the next claim
                self._probe_made_due[endpoint] = breaker.opened_at
                self._wake.set()

    async def _make_held_due(self, endpoint: str, since: datetime) -> None:
        """The endpoint is back: what its outage pushed back is due now, not at its backoff."""
        try:
            made = await self.store.make_due(endpoint, since=since)
        except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
            self.outage.failed("make due", exc)
            return
        self.outage.succeeded("make due")
        if made:
            log.info("endpoint %s is back: %d held message(s) due now", endpoint, made)
            self.wake()

    def _start_waiting(self) -> None:
        """Start claimed messages while the worker and their endpoints have free slots (§11.4);
        none once stopping: those still waiting are given back."""
        if self._stopping.is_set():
            return
        while (message := self.planner.next_to_start()) is not None:
            self._launch(message)

    def _launch(self, message: ClaimedMessage) -> None:
        key = (message.seq, message.lease_token)
        # Tracked in ``_deliveries`` only (one done callback, not two): ``_drain`` finds them there.
        task = asyncio.create_task(self._deliver(message), name=f"deliver-{message.seq}")
        self._deliveries[key] = task
        task.add_done_callback(lambda _task: self._deliveries.pop(key, None))

    def _release_waiting(self, leases: set[tuple[int, str]] | None = None) -> int:
        """Give back claimed messages not started yet (all, or those of ``leases``) without
        counting an attempt; returns how many."""
        taken = self.planner.take_waiting(leases)
        for message in taken:
            self.ledger.release(message, None)
        if taken:
            self._capacity.set()
        return len(taken)

    def _cancel_lost(self, leases: Sequence[tuple[int, str]]) -> None:
        """A heartbeat found these leases taken back: stop their deliveries, and give up those
        still waiting for a slot (§12.2)."""
        self.stats.lost += self._release_waiting(set(leases))
        for lease in leases:
            task = self._deliveries.get(lease)
            if task is not None and not task.done():
                self.stats.lost += 1
                task.cancel()

    def _finished(self, message: ClaimedMessage) -> None:
        self.planner.finished(message.endpoint)
        self._start_waiting()
        if self.planner.has_room():
            self._capacity.set()

    def _spawn(self, coroutine: Coroutine[Any, Any, None], *, name: str | None = None) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- delivering ------------------------------------------------------------------------

    async def _deliver(self, message: ClaimedMessage) -> None:
        correlation.bind(message.correlation_id)  # this task's log lines carry it
        if not self.ledger.may_send(message):
            self._fenced(message, "its lease can no longer be trusted")
            return
        breaker = self.breakers[message.endpoint]
        allowed, probe = breaker.try_acquire()
        if not allowed:
            not_before = utcnow() + timedelta(seconds=breaker.seconds_until_half_open())
            self.ledger.release(message, not_before)
            self._finished(message)
            return
        started = utcnow()
        transition: BreakerTransition | None = None
        try:
            # Asked again by the HTTP transport once the connection is in hand, right before the
            # first byte is written: a pause in a pool wait, a connect or a token fetch is caught.
            with send_fence(partial(self.ledger.may_send, message)):
                receipt = await self._connectors[message.endpoint].deliver(
                    Delivery(
                        message_id=message.message_id,
                        endpoint=message.endpoint,
                        kind=message.kind,
                        payload=message.payload,
                        dossier_code=message.dossier_code,
                        attempt=message.attempt_no,
                        headers=message.headers,
                    )
                )
        except SendFencedError:
            if probe:
                breaker.release_probe()
            self._fenced(message, "its lease ran out before its request could be written")
            return
        except asyncio.CancelledError:
            self.ledger.release(message, None)
            if probe:
                breaker.record_failure("cancelled", probe=True)
            self._finished(message)
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the attempt
            transition = self._failed(message, exc, started, probe)
        else:
            transition = breaker.record_success(probe=probe)
            self.stats.delivered += 1
            self._complete(
                message,
                _attempt(
                    message,
                    AttemptOutcome.DELIVERED,
                    started,
                    status_code=receipt.status_code,
                    request_summary=receipt.request_summary or None,
                    response_summary=receipt.response_summary or None,
                ),
            )
        self._finished(message)
        if transition is not None:
            self._publish(transition, success=transition.state == "closed")
            if transition.state is BreakerState.CLOSED and transition.failing_since is not None:
                self._spawn(self._make_held_due(transition.endpoint, transition.failing_since))

    def _fenced(self, message: ClaimedMessage, why: str) -> None:
        """The fence (docs/delivery.md §12.2) said no: another worker may have this message by
        now and have delivered later ones of its dossier. Give it back (a no-op if it was taken)."""
        self.stats.fenced += 1
        self.telemetry.metrics.observe_fenced(message.endpoint)
        log.warning("not sending seq=%s: %s", message.seq, why)
        self.ledger.release(message, None)
        self._finished(message)

    def _failed(
        self, message: ClaimedMessage, exc: Exception, started: datetime, probe: bool
    ) -> BreakerTransition | None:
        decision = self.policies[message.endpoint].decide(message.attempt_no, exc)
        exchange = exc if isinstance(exc, HubError) else None
        error_class = exc.error_class if isinstance(exc, HubError) else type(exc).__name__
        text = exc.message if isinstance(exc, HubError) else f"{type(exc).__name__}: {exc}"
        outcome: AttemptOutcome
        if decision.retry:
            self.stats.retried += 1
            outcome, next_at = AttemptOutcome.RETRY, utcnow() + timedelta(seconds=decision.delay)
        else:
            self.stats.dead += 1
            outcome, next_at = AttemptOutcome.DEAD, None
            text = f"{text} [{decision.reason}]"
        if not isinstance(exc, HubError):
            log.warning("unexpected %s delivering seq=%s to %s", error_class, message.seq, message.endpoint)
        self._complete(
            message,
            _attempt(
                message,
                outcome,
                started,
                next_attempt_at=next_at,
                status_code=exchange.status_code if exchange else None,
                error_class=error_class,
                error=text,
                request_summary=exchange.request_summary if exchange else None,
                response_summary=exchange.response_summary if exchange else None,
            ),
        )
        breaker = self.breakers[message.endpoint]
        if is_retryable(exc):
            return breaker.record_failure(text, probe=probe)
        # The endpoint answered (and refused): it is alive.
        return breaker.record_success(probe=probe)

    def _complete(self, message: ClaimedMessage, completion: Completion) -> None:
        self.telemetry.delivery_attempt(message, completion)
        self.ledger.complete(completion)

    def _publish(self, transition: BreakerTransition, *, success: bool) -> None:
        log.warning("endpoint %s circuit %s", transition.endpoint, transition.state)

        async def publish() -> None:
            try:
                await self.store.publish_health(
                    transition.endpoint,
                    transition.state.value,
                    transition.consecutive_failures,
                    success=success,
                    error=transition.error,
                )
            except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
                self.outage.failed("publish health", exc)
            else:
                self.outage.succeeded("publish health")

        self._spawn(publish())

    # --- rescue, shutdown ------------------------------------------------------------------

    async def _rescue_loop(self) -> None:
        """Return messages of dead workers (missed heartbeats) and of expired leases to the queue."""
        max_attempts = {name: policy.max_attempts for name, policy in self.policies.items()}
        rescuer = Rescuer(self.worker_id, max_attempts)
        interval = min(RESCUE_INTERVAL_SECONDS, self.config.dead_worker_seconds / 2)
        while True:
            try:
                dead = await self.store.rescue_dead_workers(
                    rescuer, dead_after_seconds=self.config.dead_worker_seconds
                )
                expired = await self.store.rescue_expired(rescuer)
            except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
                await self.outage.pause(max(interval, self.outage.failed("rescue", exc)))
                continue
            self.outage.succeeded("rescue")
            if dead or expired:
                self.stats.rescued += len(dead) + len(expired)
                self.telemetry.metrics.rescued(len(dead), len(expired))
                log.warning(
                    "rescued %d message(s) of dead workers and %d with expired leases",
                    len(dead),
                    len(expired),
                )
                self._wake.set()
            await asyncio.sleep(interval)

    async def _drain(self) -> None:
        deliveries = list(self._deliveries.values())
        if deliveries:
            _done, pending = await asyncio.wait(deliveries, timeout=self.config.shutdown_grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        others = list(self._tasks)
        if others:
            await asyncio.wait(others, timeout=5)


@asynccontextmanager
async def _given(connectors: dict[str, Connector]) -> AsyncIterator[dict[str, Connector]]:
    yield dict(connectors)


async def run_worker(
    settings: Settings,
    db: Database,
    stop_event: asyncio.Event,
    *,
    worker_id: str | None = None,
    transport: TransportKind = TransportKind.AIOHTTP,
) -> WorkerStats:
    """Run one worker until ``stop_event`` is set (for ``hub serve`` and ``hub worker``)."""
    worker = Worker(settings, db, worker_id=worker_id, transport=transport)
    await worker.run(stop_event)
    return worker.stats
