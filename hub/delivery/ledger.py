"""What a worker holds and owes the outbox: its leases and its unwritten results (docs/delivery.md §9).

* results are written in batches (every ``completion_flush_seconds`` or ``batch_size``
  results); a message is finalised only while this worker still holds its lease;
* a heartbeat renews every lease held; a lease lost meanwhile (rescued after a stall) is
  logged, and its result will be dropped by the store;
* at shutdown, pending results are written and every message still held is given back
  without counting an attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from hub.config import WorkerSettings
from hub.db.availability import OutageReporter
from hub.delivery.store import ClaimedMessage, Completion, OutboxStore

log = logging.getLogger("hub.delivery")

#: Pause between the shutdown's tries to write results and give leases back.
RELEASE_RETRY_SECONDS = 0.5


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


class LeaseLedger:
    """Leases held by one worker, and the completions and releases it has yet to write."""

    def __init__(
        self,
        store: OutboxStore,
        config: WorkerSettings,
        *,
        worker_id: str,
        stats: WorkerStats,
        on_flushed: Callable[[], None],
        outage: OutageReporter | None = None,
    ) -> None:
        self._store = store
        #: Reports failed writes once per change of state and paces their retries.
        self._outage = outage or OutageReporter()
        self._config = config
        self._worker_id = worker_id
        self._stats = stats
        self._on_flushed = on_flushed
        self._leases: dict[int, str] = {}
        self._flushing: set[int] = set()
        #: Set while no flush is writing (shutdown waits for it before cancelling the flusher).
        self._idle = asyncio.Event()
        self._idle.set()
        self._completions: list[Completion] = []
        self._releases: list[tuple[int, str, datetime | None]] = []
        self._has_items = asyncio.Event()
        self._full = asyncio.Event()

    # --- recording -------------------------------------------------------------------------

    def hold(self, message: ClaimedMessage) -> None:
        self._leases[message.seq] = message.lease_token

    def complete(self, completion: Completion) -> None:
        self._completions.append(completion)
        self._has_items.set()
        if len(self._completions) >= self._config.batch_size:
            self._full.set()

    def release(self, message: ClaimedMessage, not_before: datetime | None) -> None:
        self._releases.append((message.seq, message.lease_token, not_before))
        self._has_items.set()

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
        try:
            if completions:
                done = await self._store.complete(completions, self._worker_id)
                self._stats.stale_completions += len(completions) - len(done)
            for not_before in {r[2] for r in releases}:
                pairs = [(seq, token) for seq, token, when in releases if when == not_before]
                self._stats.released += await self._store.release(pairs, not_before=not_before)
        except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
            # Keep them for the next flush; the lease (heartbeat) still protects the messages.
            self._completions[:0] = completions
            self._releases[:0] = releases
            self._has_items.set()
            return self._outage.failed("flush", exc)
        finally:
            self._flushing = set()
            self._idle.set()
        for completion in completions:
            self._leases.pop(completion.seq, None)
        for seq, _token, _when in releases:
            self._leases.pop(seq, None)
        self._outage.succeeded("flush")
        # Completed heads unblock their dossiers' next messages.
        self._on_flushed()
        return 0.0

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
            by_token: dict[str, list[int]] = {}
            for seq, token in list(self._leases.items()):
                by_token.setdefault(token, []).append(seq)
            if not by_token:
                continue
            try:
                held = await self._store.heartbeat(by_token, self._config.lease_seconds)
            except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
                self._outage.failed("heartbeat", exc)
                continue
            self._outage.succeeded("heartbeat")
            # Seqs finalised meanwhile by a flush are gone from ``_leases``: not lost.
            lost = sum(
                1
                for seqs in by_token.values()
                for seq in seqs
                if seq not in held and seq in self._leases and seq not in self._flushing
            )
            if lost:
                log.warning(
                    "worker %s lost %d lease(s); their results will be dropped", self._worker_id, lost
                )

    async def release_leftovers(self, attempts: int = 3) -> None:
        """Shutdown: write pending results, then give back every message still held.

        A message is left ``in_flight`` only if the database stays unreachable through every
        attempt; its lease then expires and the rescuer returns it (at-least-once either way).
        """
        for _attempt in range(attempts):
            if await self.flush():
                await asyncio.sleep(RELEASE_RETRY_SECONDS)
                continue  # the flush failed and kept its batch: try again
            held = list(self._leases.items())
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
