"""What the delivery worker needs of the outbox: the :class:`OutboxStore` protocol.

The worker plans, delivers and keeps time; a store owns the outbox rows (the split of
procrastinate's ``Worker`` / ``JobManager`` / connector). Two implementations pass the same
contract tests (``tests/delivery/test_store_contract.py``):

* :class:`hub.delivery.sql_store.SqlOutboxStore`: SQLite or PostgreSQL, with wake-ups from
  ``LISTEN``/``NOTIFY`` and from in-process commits;
* :class:`hub.delivery.memory_store.MemoryOutboxStore`: in process, for fast worker tests.

Both apply the state changes of :mod:`hub.outbox.transitions` and the head-of-queue rule of
:mod:`hub.outbox.queue` (docs/delivery.md §4–§6). Each claim batch has its own lease token;
completions, heartbeats and releases match on (seq, token, state = in_flight), so a worker that
lost its lease can never overwrite what the rescuer or another worker did ("finalised exactly
once", Solid Queue #761; River PR #1373). They also never wait for a row another transaction
has locked: such a row is skipped (neither changed nor reported), and :meth:`OutboxStore.held`
tells it from a lost lease (docs/delivery.md §12.1).

Workers register and heartbeat in a ``workers`` table; the rescuer takes back at once the
leases of a worker that missed its heartbeats (§12.3). A lease token is
:meth:`WorkerRegistration.token`: the worker's id, ``#``, the claim number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, Protocol

from hub.db.models import DeliveryAttempt, OutboxMessage
from hub.outbox.identity import MessageIdentity
from hub.outbox.transitions import AttemptOutcome, out_of_attempts
from hub.telemetry.correlation import HEADER as REQUEST_ID_HEADER

#: The outbox columns a claim reads, in the order of :class:`ClaimedMessage`'s fields: a claimed
#: row becomes a claim positionally (``RETURNING`` these, or :data:`_CLAIMED_ATTRIBUTES` of a row
#: in memory), with no field-by-field copy on the worker's hot path.
CLAIM_COLUMNS = (
    OutboxMessage.seq,
    OutboxMessage.message_id,
    OutboxMessage.endpoint,
    OutboxMessage.kind,
    OutboxMessage.ordering_key,
    OutboxMessage.dossier_code,
    OutboxMessage.payload,
    OutboxMessage.attempts,
    OutboxMessage.manual_retry,
    OutboxMessage.correlation_id,
    OutboxMessage.created_at,
)
_CLAIMED_ATTRIBUTES = attrgetter(*(column.key for column in CLAIM_COLUMNS))


@dataclass(frozen=True, slots=True)
class ClaimedMessage(MessageIdentity):
    """An outbox row just moved to in_flight under a lease; its fields after those of
    :class:`~hub.outbox.identity.MessageIdentity` follow :data:`CLAIM_COLUMNS`."""

    payload: dict[str, Any]
    attempt_no: int
    """1-based number of the attempt this claim is for (already counted): ``attempts``."""
    manual: bool
    """An operator asked for this attempt: ``manual_retry``."""
    correlation_id: str | None
    """The request that caused it (:mod:`hub.telemetry.correlation`), sent as ``X-Request-ID``."""
    created_at: datetime | None
    _: KW_ONLY
    lease_token: str

    @property
    def headers(self) -> dict[str, str]:
        """Headers for the connector: the correlation id, when there is one."""
        return {} if self.correlation_id is None else {REQUEST_ID_HEADER: self.correlation_id}

    @classmethod
    def from_row(cls, row: Any, lease_token: str) -> ClaimedMessage:
        """The claim of an outbox row object just moved to in_flight (the in-memory store; the
        SQL store reads :data:`CLAIM_COLUMNS` and passes them as they come)."""
        return cls(*_CLAIMED_ATTRIBUTES(row), lease_token=lease_token)


#: The ``delivery_attempts`` columns of :meth:`Completion.attempt_row`, in its order (the table's).
ATTEMPT_COLUMNS = (
    "message_seq",
    "attempt_no",
    "worker_id",
    "started_at",
    "finished_at",
    "outcome",
    "status_code",
    "error_class",
    "error",
    "request_summary",
    "response_summary",
    "manual",
)


@dataclass(frozen=True, slots=True)
class Completion:
    """The result of one attempt, to be written in a batch."""

    seq: int
    lease_token: str
    attempt_no: int
    outcome: AttemptOutcome
    started_at: datetime
    finished_at: datetime
    manual: bool = False
    next_attempt_at: datetime | None = None
    status_code: int | None = None
    error_class: str | None = None
    error: str | None = None
    request_summary: str | None = None
    response_summary: str | None = None

    def attempt_row(self, worker_id: str) -> tuple[Any, ...]:
        """The attempt row this completion records once it finalises its message, as values in
        :data:`ATTEMPT_COLUMNS` order (the outcome as its text, as stored): the SQL store's flush
        inserts a batch of them in one ``executemany``, no ORM object or dict per row."""
        return (
            self.seq,
            self.attempt_no,
            worker_id,
            self.started_at,
            self.finished_at,
            str(self.outcome),
            self.status_code,
            self.error_class,
            self.error,
            self.request_summary,
            self.response_summary,
            self.manual,
        )

    def attempt(self, worker_id: str) -> DeliveryAttempt:
        """:meth:`attempt_row` as a (transient) row object, for the in-memory store."""
        values = dict(zip(ATTEMPT_COLUMNS, self.attempt_row(worker_id), strict=True))
        return DeliveryAttempt(**values | {"outcome": self.outcome})


@dataclass(frozen=True, slots=True)
class WorkerRegistration:
    """A running worker as the ``workers`` table records it (docs/delivery.md §12.3)."""

    id: str
    """Unique per run and free of ``#`` (the lease tokens start with it)."""
    host: str
    pid: int

    def token(self, claim_no: int) -> str:
        """The lease token of this worker's ``claim_no``-th claim."""
        return f"{self.id}{TOKEN_SEPARATOR}{claim_no}"


#: Separates the worker id from the claim number in a lease token.
TOKEN_SEPARATOR = "#"


@dataclass(frozen=True, slots=True)
class Rescuer:
    """Who takes lost leases back, and the attempt budgets it judges them by (docs/delivery.md §12.3)."""

    id: str
    """Recorded as the attempt's worker when the lease names none."""
    max_attempts: Mapping[str, int]
    """Attempts allowed per endpoint (an endpoint not named has no limit)."""
    limit: int = 500
    """Messages taken back per call at the most."""

    def out_of_attempts(self, row: Any) -> bool:
        """Whether the in-flight ``row`` taken back is dead-lettered rather than queued again."""
        return out_of_attempts(row.attempts, self.max_attempts.get(row.endpoint, 1 << 30))


class OutboxStore(Protocol):
    """The outbox as the worker sees it. Every call is short and never spans a network call."""

    async def claim(
        self, wants: Mapping[str, int], lease_token: str, lease_seconds: float
    ) -> list[ClaimedMessage]:
        """Claim up to ``wants[endpoint]`` due heads of queue per endpoint, oldest first, under
        ``lease_token``; each claim counts an attempt. Concurrent claims never overlap."""
        ...

    async def heartbeat(self, leases: Mapping[str, Sequence[int]], lease_seconds: float) -> set[int]:
        """Extend the leases ``token → seqs``; returns the seqs renewed (a foreign or lost
        lease is never renewed; a row locked elsewhere is skipped)."""
        ...

    async def release(self, leases: Iterable[tuple[int, str]], *, not_before: datetime | None = None) -> int:
        """Give claimed ``(seq, token)`` back without counting the attempt; returns how many
        were released (a lost lease, or a row locked elsewhere, is not)."""
        ...

    async def complete(self, completions: Sequence[Completion], worker_id: str) -> set[int]:
        """Finalise attempts (deliver, retry later, dead-letter) and record them; returns the
        seqs finalised. A completion whose lease was lost, or whose row another transaction
        has locked, changes and records nothing."""
        ...

    async def held(self, leases: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
        """The ``(seq, token)`` still in flight under that token. A plain read that never waits
        for a lock: a lease skipped by the calls above and still held is busy, not lost."""
        ...

    async def rescue_expired(self, rescuer: Rescuer) -> list[int]:
        """Return messages whose lease expired to the queue (dead-letter those out of
        attempts), each with a ``lease_lost`` attempt; returns their seqs."""
        ...

    async def make_due(self, endpoint: str, *, since: datetime, limit: int | None = None) -> int:
        """Make due now the pending messages of ``endpoint`` pushed back since ``since`` (retries
        scheduled or releases by an open circuit during its outage, :func:`hub.outbox.transitions.held_back`):
        one update setting ``next_attempt_at`` to now. ``limit``: only that many, the soonest due
        first (a probe for a half-open circuit). Returns how many were made due."""
        ...

    async def rescue_dead_workers(self, rescuer: Rescuer, *, dead_after_seconds: float) -> list[int]:
        """Like :meth:`rescue_expired`, for the leases of workers whose heartbeat is older than
        ``dead_after_seconds`` or that stopped still holding them, whatever their expiry; marks
        the silent workers stopped. Returns the seqs taken back."""
        ...

    async def heartbeat_worker(self, worker: WorkerRegistration) -> None:
        """Register ``worker``, or record that it is alive (a worker marked stopped is alive again)."""
        ...

    async def deregister_worker(self, worker_id: str) -> None:
        """Record that the worker stopped (its remaining leases become rescuable at once)."""
        ...

    async def publish_health(
        self, endpoint: str, state: str, consecutive_failures: int, *, success: bool, error: str | None
    ) -> None:
        """Record the circuit-breaker state of ``endpoint`` for operators."""
        ...

    def listen(self, wake: Callable[[], None]) -> AbstractAsyncContextManager[None]:
        """While entered, call ``wake`` (from any thread) whenever new work may be claimable."""
        ...
