"""What a worker holds and owes the outbox: its leases and its unwritten results (docs/delivery.md §9, §12).

* results are written in batches (every ``completion_flush_seconds`` or ``batch_size``
  results); a message is finalised only while this worker still holds its lease; a result
  whose row another transaction has locked is kept and written again shortly (§12.1);
* a heartbeat renews every lease held; a lease found taken back (rescued after a stall) is
  reported to the worker, which cancels its delivery, and its result will be dropped;
* the worker's own heartbeat (``workers`` table, §12.3) keeps it alive in the other workers'
  eyes, and tells how long that lasts;
* the fence (§12.2): a message is sent only while its lease can still be trusted: before the
  lease, renewed or claimed, runs out, before the worker could be counted dead, and if no such
  moment passed since the claim (the *liveness epoch*);
* at shutdown, pending results are written and every message still held is given back
  without counting an attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from hub.config import WorkerSettings
from hub.db.availability import OutageReporter
from hub.delivery.store import ClaimedMessage, Completion, OutboxStore, WorkerRegistration

log = logging.getLogger("hub.delivery")

#: Pause between the shutdown's tries to write results and give leases back.
RELEASE_RETRY_SECONDS = 0.5
#: Seconds before a result whose row was locked by another transaction is written again.
BUSY_RETRY_SECONDS = 0.25
#: Claiming pauses while this many batches of results wait to be written (§12.1).
MAX_UNWRITTEN_BATCHES = 2

_Release = tuple[int, str, datetime | None]


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
    fenced: int = 0
    """Messages not sent because their lease could no longer be trusted (§12.2)."""
    lost: int = 0
    """Deliveries cancelled because a heartbeat found their lease taken back."""


@dataclass(frozen=True, slots=True)
class ClaimTicket:
    """When a claim started and in which liveness epoch: what its leases may be trusted for."""

    started: float
    epoch: int


@dataclass(slots=True)
class _Lease:
    epoch: int
    """The liveness epoch of the claim; the lease is not trusted in a later one."""
    trusted_until: float
    """Monotonic time, the fence margin before the lease can expire in the database."""
    lost: bool = False


class LeaseLedger:
    """Leases held by one worker, and the completions and releases it has yet to write.

    ``worker_id`` is the name recorded on attempts; ``registration`` the worker's row in the
    ``workers`` table. ``on_lost`` receives the ``(seq, token)`` a heartbeat found taken back.
    """

    def __init__(
        self,
        store: OutboxStore,
        config: WorkerSettings,
        *,
        worker_id: str,
        registration: WorkerRegistration,
        stats: WorkerStats,
        on_flushed: Callable[[], None],
        outage: OutageReporter | None = None,
        on_lost: Callable[[Sequence[tuple[int, str]]], None] = lambda _lost: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        #: Reports failed writes once per change of state and paces their retries.
        self._outage = outage or OutageReporter()
        self._config = config
        self._worker_id = worker_id
        self._registration = registration
        self._stats = stats
        self._on_flushed = on_flushed
        self._on_lost = on_lost
        self._clock = clock
        #: By ``(seq, token)``: a message rescued and claimed again is held twice for a while.
        self._leases: dict[tuple[int, str], _Lease] = {}
        self._flushing: set[int] = set()
        #: Set while no flush is writing (shutdown waits for it before cancelling the flusher).
        self._idle = asyncio.Event()
        self._idle.set()
        self._completions: list[Completion] = []
        self._releases: list[_Release] = []
        self._busy_completions: list[Completion] = []
        self._busy_releases: list[_Release] = []
        self._busy_timer: asyncio.TimerHandle | None = None
        self._busy_since: float | None = None
        self._has_items = asyncio.Event()
        self._full = asyncio.Event()
        #: Liveness: incremented whenever other workers may have counted this one dead.
        self._epoch = 0
        self._alive_until = float("-inf")

    # --- recording -------------------------------------------------------------------------

    def ticket(self) -> ClaimTicket:
        """Taken just before a claim: the leases it returns are trusted from then on."""
        return ClaimTicket(started=self._clock(), epoch=self._epoch)

    def hold(self, message: ClaimedMessage, ticket: ClaimTicket) -> None:
        self._leases[(message.seq, message.lease_token)] = _Lease(
            epoch=ticket.epoch,
            trusted_until=ticket.started + self._config.lease_seconds - self._config.fence_margin_seconds,
        )

    def complete(self, completion: Completion) -> None:
        self._completions.append(completion)
        self._has_items.set()
        if len(self._completions) >= self._config.batch_size:
            self._full.set()

    def release(self, message: ClaimedMessage, not_before: datetime | None) -> None:
        self._releases.append((message.seq, message.lease_token, not_before))
        self._has_items.set()

    # --- the fence and back-pressure -------------------------------------------------------

    def alive(self) -> bool:
        """No other worker can count this one dead yet (its heartbeat is recent enough)."""
        return self._clock() < self._alive_until

    def may_send(self, message: ClaimedMessage) -> bool:
        """The fence, checked just before sending: the lease is still held, in the epoch it was
        claimed in, and neither it nor the worker's liveness is within the margin of running out.

        A ``False`` means another worker may already have the message: sending it could put it
        after a later message of its dossier (§12.2).
        """
        lease = self._leases.get((message.seq, message.lease_token))
        now = self._clock()
        return (
            lease is not None
            and not lease.lost
            and lease.epoch == self._epoch
            and now < lease.trusted_until
            and now < self._alive_until
        )

    @property
    def unwritten(self) -> int:
        """Results not yet written (queued, being written, or waiting for a locked row)."""
        return (
            len(self._completions)
            + len(self._releases)
            + len(self._busy_completions)
            + len(self._busy_releases)
            + len(self._flushing)
        )

    def backlogged(self) -> bool:
        """Results are not draining: claim nothing more until they are (§12.1)."""
        return self.unwritten >= MAX_UNWRITTEN_BATCHES * self._config.batch_size

    # --- writing ---------------------------------------------------------------------------

    async def run_flusher(self) -> None:
        """Write batches until cancelled (cancel only while :meth:`wait_idle` says idle)."""
        while True:
            await self._has_items.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), timeout=self._config.completion_flush_seconds)
            pause = await self.flush()
            if pause:
                await self._outage.pause(pause)

    async def flush(self) -> float:
        """Write what is pending; returns 0, or after a failure the pause before the next try."""
        self._has_items.clear()
        self._full.clear()
        completions, self._completions = self._completions, []
        releases, self._releases = self._releases, []
        if not completions and not releases:
            return 0.0
        self._flushing = {c.seq for c in completions} | {r[0] for r in releases}
        self._idle.clear()
        written: list[Completion] = []
        busy_completions: list[Completion] = []
        busy_releases: list[_Release] = []
        try:
            if completions:
                busy_completions = await self._complete(completions)
                written = completions
            for not_before in {r[2] for r in releases}:
                group = [r for r in releases if r[2] == not_before]
                busy_releases += await self._release(group, not_before)
        except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
            # Keep what was not written for the next flush; the lease (heartbeat) still protects it.
            self._completions[:0] = busy_completions if written else completions
            self._releases[:0] = releases
            self._has_items.set()
            return self._outage.failed("flush", exc)
        finally:
            self._flushing = set()
            self._idle.set()
        busy = {id(c) for c in busy_completions} | {id(r) for r in busy_releases}
        for completion in completions:
            if id(completion) not in busy:
                self._forget(completion.seq, completion.lease_token)
        for release in releases:
            if id(release) not in busy:
                self._forget(release[0], release[1])
        if busy:
            self._defer(busy_completions, busy_releases)
        elif self._busy_since is not None and not self._busy_completions and not self._busy_releases:
            log.warning("locked outbox rows released after %.1f s", self._clock() - self._busy_since)
            self._busy_since = None
        self._outage.succeeded("flush")
        # Completed heads unblock their dossiers' next messages.
        self._on_flushed()
        return 0.0

    async def _complete(self, completions: list[Completion]) -> list[Completion]:
        """Write ``completions``; returns those whose row is locked elsewhere (still ours)."""
        done = await self._store.complete(completions, self._worker_id)
        missing = [c for c in completions if c.seq not in done]
        busy: list[Completion] = []
        if missing:
            still = await self._store.held([(c.seq, c.lease_token) for c in missing])
            busy = [c for c in missing if (c.seq, c.lease_token) in still]
        self._stats.stale_completions += len(completions) - len(done) - len(busy)
        return busy

    async def _release(self, group: list[_Release], not_before: datetime | None) -> list[_Release]:
        """Write one group of releases; returns those whose row is locked elsewhere."""
        pairs = [(seq, token) for seq, token, _when in group]
        released = await self._store.release(pairs, not_before=not_before)
        self._stats.released += released
        if released == len(pairs):
            return []
        still = await self._store.held(pairs)
        return [r for r in group if (r[0], r[1]) in still]

    def _forget(self, seq: int, token: str) -> None:
        self._leases.pop((seq, token), None)

    def _defer(self, completions: list[Completion], releases: list[_Release]) -> None:
        """Write these again shortly: their rows are locked by another transaction (§12.1)."""
        if self._busy_since is None:
            self._busy_since = self._clock()
            log.warning(
                "%d result(s) wait for outbox rows locked by another transaction; retrying every %.2f s",
                len(completions) + len(releases),
                BUSY_RETRY_SECONDS,
            )
        self._busy_completions += completions
        self._busy_releases += releases
        if self._busy_timer is None:
            self._busy_timer = asyncio.get_running_loop().call_later(BUSY_RETRY_SECONDS, self._retry_busy)

    def _retry_busy(self) -> None:
        if self._busy_timer is not None:
            self._busy_timer.cancel()
            self._busy_timer = None
        if not self._busy_completions and not self._busy_releases:
            return
        self._completions += self._busy_completions
        self._releases += self._busy_releases
        self._busy_completions, self._busy_releases = [], []
        self._has_items.set()

    async def wait_idle(self, seconds: float) -> None:
        """Wait (at most ``seconds``) until no flush is writing.

        Never cancel a flush half-way: its batch would leave memory while its write runs on.
        Returns without yielding once idle, so a flush cannot start before the caller cancels.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._idle.is_set() and loop.time() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout=1)

    # --- leases ----------------------------------------------------------------------------

    async def run_heartbeat(self) -> None:
        """Renew every lease held, every ``heartbeat_seconds``, until cancelled."""
        while True:
            await asyncio.sleep(self._config.heartbeat_seconds)
            await self.renew_leases()

    async def renew_leases(self) -> None:
        """One lease heartbeat; leases found taken back are marked lost and reported."""
        pairs = list(self._leases)
        if not pairs:
            return
        by_token: dict[str, list[int]] = {}
        for seq, token in pairs:
            by_token.setdefault(token, []).append(seq)
        # A seq held under two tokens (rescued, then claimed again) is renewed for one at most.
        twice = {seq for seq, count in Counter(seq for seq, _token in pairs).items() if count > 1}
        started = self._clock()
        try:
            renewed = await self._store.heartbeat(by_token, self._config.lease_seconds)
            unsure = [p for p in pairs if (p[0] not in renewed or p[0] in twice) and self._settling(p)]
            # Skipped because another transaction locks the row is not lost (§12.1).
            still = await self._store.held(unsure) if unsure else set()
        except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
            self._outage.failed("heartbeat", exc)
            return
        self._outage.succeeded("heartbeat")
        trusted_until = started + self._config.lease_seconds - self._config.fence_margin_seconds
        for pair in pairs:
            lease = self._leases.get(pair)
            if lease is not None and pair[0] in renewed and (pair[0] not in twice or pair in still):
                lease.trusted_until = max(lease.trusted_until, trusted_until)
        # Seqs finalised meanwhile by a flush are gone from ``_leases``: not lost.
        lost = [p for p in unsure if p not in still and self._settling(p)]
        if lost:
            for pair in lost:
                self._leases[pair].lost = True
            log.warning(
                "worker %s lost %d lease(s); their deliveries are cancelled and results dropped",
                self._worker_id,
                len(lost),
            )
            self._on_lost(lost)

    def _settling(self, lease: tuple[int, str]) -> bool:
        """Still held here and not being written by a flush right now."""
        return lease in self._leases and lease[0] not in self._flushing

    async def run_worker_heartbeat(self) -> None:
        """The worker's own heartbeat, every ``worker_heartbeat_seconds``, until cancelled."""
        while True:
            await asyncio.sleep(self._config.worker_heartbeat_seconds)
            await self.beat()

    async def beat(self) -> bool:
        """Register or renew the worker; ``False`` when the database could not be reached.

        A beat that lands after the previous one's liveness ran out starts a new epoch: other
        workers may have counted this one dead meanwhile and taken its leases, so no lease
        claimed before is trusted for sending again (§12.2).
        """
        started = self._clock()
        try:
            await self._store.heartbeat_worker(self._registration)
        except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
            self._outage.failed("worker heartbeat", exc)
            return False
        self._outage.succeeded("worker heartbeat")
        if self._clock() >= self._alive_until:
            if self._leases:
                log.warning(
                    "worker %s was silent for over %.1f s: none of its %d lease(s) will be sent on",
                    self._worker_id,
                    self._config.dead_worker_seconds - self._config.fence_margin_seconds,
                    len(self._leases),
                )
            self._epoch += 1
        self._alive_until = started + self._config.dead_worker_seconds - self._config.fence_margin_seconds
        return True

    async def deregister(self) -> None:
        try:
            await self._store.deregister_worker(self._registration.id)
        except Exception:
            log.exception("could not deregister worker %s", self._registration.id)

    async def release_leftovers(self, attempts: int = 3) -> None:
        """Shutdown: write pending results, then give back every message still held.

        A message is left ``in_flight`` only if the database stays unreachable (or its row
        locked) through every attempt; its lease then expires and the rescuer returns it
        (at-least-once either way).
        """
        for _attempt in range(attempts):
            self._retry_busy()
            if await self.flush():
                await asyncio.sleep(RELEASE_RETRY_SECONDS)
                continue  # the flush failed and kept its batch: try again
            if self._completions or self._releases or self._busy_completions or self._busy_releases:
                await asyncio.sleep(BUSY_RETRY_SECONDS)
                continue  # rows locked by another transaction: try again
            held = list(self._leases)
            if not held:
                return
            try:
                self._stats.released += await self._store.release(held)
            except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
                self._outage.failed("release", exc)
                await asyncio.sleep(RELEASE_RETRY_SECONDS)
                continue
            self._leases.clear()
            return
        if self._busy_timer is not None:
            self._busy_timer.cancel()
            self._busy_timer = None
