"""The delivery worker: claims outbox messages, calls connectors, records every attempt.

Design (docs/delivery.md §4–§7, §9, §11):

* batched claims with a lease per claim batch, renewed by a heartbeat; a rescuer returns
  messages of dead workers (expired leases) to the queue and records a ``lease_lost`` attempt;
* batched, guarded completions (flushed every ``completion_flush_seconds`` or ``batch_size``
  results): a message is finalised only while this worker still holds its lease;
* wake-up by PostgreSQL ``LISTEN hub_outbox`` on a dedicated connection, a cheap poll
  otherwise (and as a safety net), and, in-process, by commits of outbox rows through the
  same :class:`~hub.db.session.Database` (or an explicit :meth:`Worker.wake`);
* per-endpoint isolation: ``max_in_flight`` per endpoint and a circuit breaker, so a dead
  portal never holds more than its own slots;
* database calls run in threads (sync SQLAlchemy); no transaction spans a network call;
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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.orm import Session

from connectors.base import Connector, Delivery
from connectors.http import TransportKind, build_http_client
from connectors.settings import EndpointSettings
from hub.config import Settings
from hub.db.base import utcnow
from hub.db.models import OutboxMessage
from hub.db.session import Database
from hub.delivery.breaker import BreakerTransition, CircuitBreaker
from hub.delivery.retry import RetryPolicy, is_retryable
from hub.delivery.store import (
    OUTCOME_DEAD,
    OUTCOME_DELIVERED,
    OUTCOME_RETRY,
    ClaimedMessage,
    Completion,
    OutboxStore,
)
from hub.outbox.enqueue import NOTIFY_CHANNEL
from schemas.errors import HubError

log = logging.getLogger("hub.delivery")

#: Seconds between rescuer passes (expired leases) and bulk-job polls.
MAINTENANCE_INTERVAL = 2.0
#: Seconds to wait before reconnecting the LISTEN connection after an error.
LISTEN_RECONNECT_SECONDS = 2.0


@dataclass
class WorkerStats:
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0
    rescued: int = 0
    stale_completions: int = 0
    """Results dropped because the lease had been lost meanwhile."""


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """One delivery worker (run several processes for more throughput or availability)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        connectors: Mapping[str, Connector] | None = None,
        worker_id: str | None = None,
        transport: TransportKind = TransportKind.AIOHTTP,
        process_bulk_jobs: bool = True,
    ) -> None:
        self.settings = settings
        self.config = settings.worker
        self.db = db
        self.store = OutboxStore(db)
        self.worker_id = worker_id or new_worker_id()
        self.stats = WorkerStats()
        self._transport = transport
        self._process_bulk_jobs = process_bulk_jobs
        self.endpoints: dict[str, EndpointSettings] = {
            name: endpoint for name, endpoint in settings.endpoints.items() if endpoint.enabled
        }
        if connectors is not None:
            self.endpoints = {name: ep for name, ep in self.endpoints.items() if name in connectors}
        self._given_connectors = dict(connectors) if connectors is not None else None
        self._connectors: dict[str, Connector] = {}
        self._clients: list[httpx.AsyncClient] = []
        self.policies = {name: RetryPolicy(ep.retry) for name, ep in self.endpoints.items()}
        self.breakers = {name: CircuitBreaker(name, ep.breaker) for name, ep in self.endpoints.items()}
        self._in_flight: dict[str, int] = dict.fromkeys(self.endpoints, 0)
        self._total_in_flight = 0
        self._leases: dict[int, str] = {}
        self._flushing: set[int] = set()
        #: Set while no flush is writing (shutdown waits for it before cancelling the flusher).
        self._flush_idle = asyncio.Event()
        self._flush_idle.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._completions: list[Completion] = []
        self._releases: list[tuple[int, str, datetime | None]] = []
        self._claim_counter = 0
        self._rotation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._capacity = asyncio.Event()
        self._flush_has_items = asyncio.Event()
        self._flush_full = asyncio.Event()
        self._stopping = False

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
        return self._total_in_flight

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then shut down gracefully."""
        self._loop = asyncio.get_running_loop()
        self._open_connectors()
        local_wake = _LocalWake(self)
        local_wake.install()
        log.info("worker %s started: endpoints=%s", self.worker_id, sorted(self.endpoints))
        background = [
            asyncio.create_task(self._flush_loop(), name="flush"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._maintenance_loop(), name="maintenance"),
        ]
        if self.db.is_postgres:
            background.append(asyncio.create_task(self._listen_loop(), name="listen"))
        claim_task = asyncio.create_task(self._claim_loop(stop), name="claim")
        try:
            await stop.wait()
        finally:
            self._stopping = True
            self._wake.set()
            self._capacity.set()
            await asyncio.gather(claim_task, return_exceptions=True)
            await self._drain()
            # Never cancel a flush half-way: its batch would leave memory while its write runs on.
            # Re-checked without yielding before the cancel, so a flush cannot start in between.
            deadline = asyncio.get_running_loop().time() + 10
            while not self._flush_idle.is_set() and asyncio.get_running_loop().time() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush_idle.wait(), timeout=1)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self._release_leftovers()
            local_wake.remove()
            await self._close_connectors()
            log.info("worker %s stopped: %s", self.worker_id, self.stats)

    # --- connectors ------------------------------------------------------------------------

    def _open_connectors(self) -> None:
        if self._given_connectors is not None:
            self._connectors = dict(self._given_connectors)
            return
        from connectors.registry import build_connector

        for name, endpoint in self.endpoints.items():
            client = build_http_client(endpoint, transport=self._transport)
            self._clients.append(client)
            self._connectors[name] = build_connector(name, endpoint, client)

    async def _close_connectors(self) -> None:
        if self._given_connectors is None:
            for connector in self._connectors.values():
                with contextlib.suppress(Exception):
                    await connector.aclose()
        for client in self._clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        self._clients.clear()

    # --- claiming --------------------------------------------------------------------------

    def _wants(self) -> dict[str, int]:
        free = self.config.concurrency - self._total_in_flight
        wants: dict[str, int] = {}
        names = sorted(self.endpoints)
        if not names or free <= 0:
            return wants
        self._rotation = (self._rotation + 1) % len(names)
        for name in names[self._rotation :] + names[: self._rotation]:
            endpoint_free = self.endpoints[name].max_in_flight - self._in_flight[name]
            breaker_cap = self.breakers[name].capacity()
            if breaker_cap is not None:
                endpoint_free = min(endpoint_free, breaker_cap)
            n = min(endpoint_free, free, self.config.batch_size)
            if n > 0:
                wants[name] = n
                free -= n
        return wants

    def _claim_threshold(self) -> int:
        return max(1, min(self.config.batch_size, self.config.concurrency // 4))

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wants = self._wants()
            got = 0
            if wants:
                self._claim_counter += 1
                token = f"{self.worker_id}#{self._claim_counter}"
                self._wake.clear()
                try:
                    claimed = await asyncio.to_thread(
                        self.store.claim, wants, token, self.config.lease_seconds
                    )
                except Exception:
                    log.exception("claim failed; retrying after the poll interval")
                    claimed = []
                if stop.is_set() and claimed:
                    await asyncio.to_thread(self.store.release, [(m.seq, token) for m in claimed])
                    return
                got = len(claimed)
                self.stats.claimed += got
                for message in claimed:
                    self._start(message)
            if got and got >= sum(wants.values()):
                # Probably more waiting: claim again once enough slots are free.
                self._capacity.clear()
                if self.config.concurrency - self._total_in_flight < self._claim_threshold():
                    await _wait_any(self._capacity, stop, seconds=self.config.poll_interval_seconds)
                continue
            await _wait_any(self._wake, stop, seconds=self.config.poll_interval_seconds)

    def _start(self, message: ClaimedMessage) -> None:
        self._in_flight[message.endpoint] += 1
        self._total_in_flight += 1
        self._leases[message.seq] = message.lease_token
        task = asyncio.create_task(self._deliver(message), name=f"deliver-{message.seq}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _finished(self, message: ClaimedMessage) -> None:
        self._in_flight[message.endpoint] -= 1
        self._total_in_flight -= 1
        if self.config.concurrency - self._total_in_flight >= self._claim_threshold():
            self._capacity.set()

    # --- delivering ------------------------------------------------------------------------

    async def _deliver(self, message: ClaimedMessage) -> None:
        breaker = self.breakers[message.endpoint]
        allowed, probe = breaker.try_acquire()
        if not allowed:
            not_before = utcnow() + timedelta(seconds=breaker.seconds_until_half_open())
            self._release(message, not_before)
            self._finished(message)
            return
        started = utcnow()
        transition: BreakerTransition | None = None
        try:
            receipt = await self._connectors[message.endpoint].deliver(
                Delivery(
                    message_id=message.message_id,
                    endpoint=message.endpoint,
                    kind=message.kind,
                    payload=message.payload,
                    dossier_code=message.dossier_code,
                    attempt=message.attempt_no,
                )
            )
        except asyncio.CancelledError:
            self._release(message, None)
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
                Completion(
                    seq=message.seq,
                    lease_token=message.lease_token,
                    attempt_no=message.attempt_no,
                    outcome=OUTCOME_DELIVERED,
                    started_at=started,
                    finished_at=utcnow(),
                    manual=message.manual,
                    status_code=receipt.status_code,
                    request_summary=receipt.request_summary or None,
                    response_summary=receipt.response_summary or None,
                )
            )
        self._finished(message)
        if transition is not None:
            self._publish(transition, success=transition.state == "closed")

    def _failed(
        self, message: ClaimedMessage, exc: Exception, started: datetime, probe: bool
    ) -> BreakerTransition | None:
        decision = self.policies[message.endpoint].decide(message.attempt_no, exc)
        exchange = exc if isinstance(exc, HubError) else None
        error_class = exc.error_class if isinstance(exc, HubError) else type(exc).__name__
        text = exc.message if isinstance(exc, HubError) else f"{type(exc).__name__}: {exc}"
        if decision.retry:
            self.stats.retried += 1
            outcome, next_at = OUTCOME_RETRY, utcnow() + timedelta(seconds=decision.delay)
        else:
            self.stats.dead += 1
            outcome, next_at = OUTCOME_DEAD, None
            text = f"{text} [{decision.reason}]"
        if not isinstance(exc, HubError):
            log.warning("unexpected %s delivering seq=%s to %s", error_class, message.seq, message.endpoint)
        self._complete(
            Completion(
                seq=message.seq,
                lease_token=message.lease_token,
                attempt_no=message.attempt_no,
                outcome=outcome,
                started_at=started,
                finished_at=utcnow(),
                manual=message.manual,
                next_attempt_at=next_at,
                status_code=exchange.status_code if exchange else None,
                error_class=error_class,
                error=text,
                request_summary=exchange.request_summary if exchange else None,
                response_summary=exchange.response_summary if exchange else None,
            )
        )
        breaker = self.breakers[message.endpoint]
        if is_retryable(exc):
            return breaker.record_failure(text, probe=probe)
        # The endpoint answered (and refused): it is alive.
        return breaker.record_success(probe=probe)

    def _complete(self, completion: Completion) -> None:
        self._completions.append(completion)
        self._flush_has_items.set()
        if len(self._completions) >= self.config.batch_size:
            self._flush_full.set()

    def _release(self, message: ClaimedMessage, not_before: datetime | None) -> None:
        self._releases.append((message.seq, message.lease_token, not_before))
        self._flush_has_items.set()

    def _publish(self, transition: BreakerTransition, *, success: bool) -> None:
        log.warning("endpoint %s circuit %s", transition.endpoint, transition.state)

        async def publish() -> None:
            try:
                await asyncio.to_thread(
                    self.store.publish_health,
                    transition.endpoint,
                    transition.state.value,
                    transition.consecutive_failures,
                    success=success,
                    error=transition.error,
                )
            except Exception:
                log.exception("could not publish endpoint health for %s", transition.endpoint)

        task = asyncio.create_task(publish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- completion batches ----------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_has_items.wait()
            await _wait_any(self._flush_full, None, seconds=self.config.completion_flush_seconds)
            await self._flush()

    async def _flush(self) -> None:
        self._flush_has_items.clear()
        self._flush_full.clear()
        completions, self._completions = self._completions, []
        releases, self._releases = self._releases, []
        if not completions and not releases:
            return
        self._flushing = {c.seq for c in completions} | {r[0] for r in releases}
        self._flush_idle.clear()
        try:
            if completions:
                done = await asyncio.to_thread(self.store.complete, completions, self.worker_id)
                self.stats.stale_completions += len(completions) - len(done)
            for not_before in {r[2] for r in releases}:
                pairs = [(seq, token) for seq, token, when in releases if when == not_before]
                self.stats.released += await asyncio.to_thread(
                    self.store.release, pairs, not_before=not_before
                )
        except Exception:
            # Keep them for the next flush; the lease (heartbeat) still protects the messages.
            log.exception("completion flush failed; will retry")
            self._completions[:0] = completions
            self._releases[:0] = releases
            self._flush_has_items.set()
            await asyncio.sleep(self.config.completion_flush_seconds * 10)
            return
        finally:
            self._flushing = set()
            self._flush_idle.set()
        for completion in completions:
            self._leases.pop(completion.seq, None)
        for seq, _token, _when in releases:
            self._leases.pop(seq, None)
        # Completed heads unblock their dossiers' next messages.
        self._wake.set()

    # --- leases, rescue, notifications -----------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            by_token: dict[str, list[int]] = {}
            for seq, token in list(self._leases.items()):
                by_token.setdefault(token, []).append(seq)
            if not by_token:
                continue
            try:
                held = await asyncio.to_thread(self.store.heartbeat, by_token, self.config.lease_seconds)
            except Exception:
                log.exception("heartbeat failed")
                continue
            # Seqs finalised meanwhile by a flush are gone from ``_leases``: not lost.
            lost = sum(
                1
                for seqs in by_token.values()
                for seq in seqs
                if seq not in held and seq in self._leases and seq not in self._flushing
            )
            if lost:
                log.warning("worker %s lost %d lease(s); their results will be dropped", self.worker_id, lost)

    async def _maintenance_loop(self) -> None:
        """Rescue expired leases; start queued DLQ bulk jobs (one at a time, in a thread)."""
        max_attempts = {name: policy.max_attempts for name, policy in self.policies.items()}
        bulk: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    rescued = await asyncio.to_thread(self.store.rescue_expired, max_attempts, self.worker_id)
                    if rescued:
                        self.stats.rescued += len(rescued)
                        log.warning("rescued %d message(s) with expired leases", len(rescued))
                        self._wake.set()
                except Exception:
                    log.exception("rescue pass failed")
                if self._process_bulk_jobs and (bulk is None or bulk.done()):
                    bulk = asyncio.create_task(self._run_bulk_job(), name="bulk-job")
                await asyncio.sleep(MAINTENANCE_INTERVAL)
        finally:
            if bulk is not None and not bulk.done():
                # The thread finishes its current chunk, sees ``_stopping`` and puts the job
                # back in the queue for the next worker.
                bulk.cancel()

    async def _run_bulk_job(self) -> None:
        from hub.dlq.service import run_next_bulk_job

        try:
            if await asyncio.to_thread(run_next_bulk_job, self.db, should_stop=lambda: self._stopping):
                self._wake.set()
        except Exception:
            log.exception("DLQ bulk job failed")

    async def _listen_loop(self) -> None:
        import psycopg

        conninfo = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._wake.set()
                    async for _notify in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("LISTEN connection failed; polling until it is back")
                await asyncio.sleep(LISTEN_RECONNECT_SECONDS)

    # --- shutdown --------------------------------------------------------------------------

    async def _release_leftovers(self, attempts: int = 3) -> None:
        """Shutdown: write pending results, then give back every message this worker still holds.

        A message is left ``in_flight`` only if the database stays unreachable through every
        attempt; its lease then expires and the rescuer returns it (at-least-once either way).
        """
        for attempt in range(1, attempts + 1):
            await self._flush()
            if self._completions or self._releases:
                continue  # the flush failed and kept its batch: try again
            held = [(seq, token) for seq, token in self._leases.items()]
            if not held:
                return
            try:
                self.stats.released += await asyncio.to_thread(self.store.release, held)
            except Exception:
                log.exception("releasing %d leases at shutdown failed (attempt %d)", len(held), attempt)
                await asyncio.sleep(0.5)
                continue
            self._leases.clear()
            return

    async def _drain(self) -> None:
        deliveries = [task for task in self._tasks if task.get_name().startswith("deliver-")]
        if deliveries:
            _done, pending = await asyncio.wait(deliveries, timeout=self.config.shutdown_grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        others = list(self._tasks)
        if others:
            await asyncio.wait(others, timeout=5)


class _LocalWake:
    """Wake the worker when a session of the same :class:`Database` commits outbox rows.

    In ``hub serve`` the API and the worker share one process: on SQLite (no NOTIFY) this
    avoids waiting for the poll. Only ORM sessions are watched (``enqueue``, DLQ actions);
    the worker itself writes through Core, so it never wakes itself.
    """

    _FLAG = "hub_outbox_touched"

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._targets = (worker.db.sessions, worker.db.write_sessions)

    def _after_flush(self, session: Session, _context: Any) -> None:
        if any(isinstance(obj, OutboxMessage) for obj in (*session.new, *session.dirty)):
            session.info[self._FLAG] = True

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(self._FLAG, False):
            self._worker.wake()

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(self._FLAG, None)

    def _hooks(self) -> tuple[tuple[str, Any], ...]:
        return (
            ("after_flush", self._after_flush),
            ("after_commit", self._after_commit),
            ("after_rollback", self._after_rollback),
        )

    def install(self) -> None:
        for target in self._targets:
            for name, hook in self._hooks():
                event.listen(target, name, hook)

    def remove(self) -> None:
        for target in self._targets:
            for name, hook in self._hooks():
                event.remove(target, name, hook)


async def _wait_any(event: asyncio.Event, stop: asyncio.Event | None, *, seconds: float) -> None:
    """Wait until ``event`` or ``stop`` is set, or ``timeout`` seconds pass."""
    waiters = [asyncio.ensure_future(event.wait())]
    if stop is not None:
        waiters.append(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


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
