"""Outbox persistence for the worker: claim, heartbeat, complete, release, rescue.

Every method is one short transaction and never spans a network call (docs/delivery.md
§9.2, §11.7). Synchronous SQLAlchemy Core; the async worker calls it through a thread.

Claiming (§4, §6): only the head of each (endpoint, ordering_key) is claimable: a pending,
due message with no earlier-seq message of the same key in an active state (pending,
in_flight, dead). PostgreSQL locks candidates with ``FOR UPDATE SKIP LOCKED``; SQLite runs one
atomic ``UPDATE … WHERE seq IN (SELECT … LIMIT n) RETURNING`` under ``BEGIN IMMEDIATE``.

Each claim batch gets a fresh lease token (``lease_owner``). Completions, heartbeats and
releases match on (seq, token, state = in_flight), so a worker that lost its lease can never
overwrite what the rescuer or another worker did ("finalised exactly once", Solid Queue #761;
River PR #1373).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, func, insert, literal_column, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnClause

from hub.db.base import utcnow
from hub.db.models import ACTIVE_STATES, DeliveryAttempt, EndpointHealth, MessageState, OutboxMessage
from hub.db.session import SQLITE_BEGIN_OPTION, Database

_ACTIVE = [state.value for state in ACTIVE_STATES]
_T = TypeVar("_T")

#: Outcome names recorded on ``delivery_attempts.outcome``.
OUTCOME_DELIVERED = "delivered"
OUTCOME_RETRY = "retry"
OUTCOME_DEAD = "dead"
OUTCOME_LEASE_LOST = "lease_lost"
LEASE_LOST_ERROR_CLASS = "LeaseLost"


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    seq: int
    message_id: str
    endpoint: str
    kind: str
    ordering_key: str
    dossier_code: str | None
    payload: dict[str, Any]
    attempt_no: int
    """1-based number of the attempt this claim is for (already counted)."""
    lease_token: str
    manual: bool


@dataclass(frozen=True, slots=True)
class Completion:
    """The result of one attempt, to be written in a batch."""

    seq: int
    lease_token: str
    attempt_no: int
    outcome: str
    started_at: datetime
    finished_at: datetime
    manual: bool = False
    next_attempt_at: datetime | None = None
    status_code: int | None = None
    error_class: str | None = None
    error: str | None = None
    request_summary: str | None = None
    response_summary: str | None = None


#: State tests rendered as SQL literals, not bound parameters, so that the planners can match
#: the partial indexes (``ix_outbox_active_key``, ``ix_outbox_pending_endpoint_seq``) even
#: with generic/prepared plans.
_IS_PENDING: ColumnClause[str] = literal_column("'pending'")
_ACTIVE_LITERALS: list[ColumnClause[str]] = [literal_column(f"'{state}'") for state in _ACTIVE]


def head_seq(message: type[OutboxMessage] | Any) -> Any:
    """Correlated scalar: the smallest active seq of ``message``'s (endpoint, ordering_key).

    Written as ``min()`` (an index probe on ``ix_outbox_active_key``) rather than NOT EXISTS:
    the planner evaluates it per candidate row instead of turning it into an anti-join whose
    cost depends on fresh statistics (a bulk insert made the anti-join plan quadratic).
    """
    earlier = aliased(OutboxMessage)
    return (
        select(func.min(earlier.seq))
        .where(
            earlier.endpoint == message.endpoint,
            earlier.ordering_key == message.ordering_key,
            earlier.state.in_(_ACTIVE_LITERALS),
        )
        .correlate(message)
        .scalar_subquery()
    )


def claimable_condition(message: type[OutboxMessage] | Any, now: datetime) -> Any:
    """SQL condition: pending, due, and head of its (endpoint, ordering_key)."""
    return and_(
        message.state == _IS_PENDING,
        message.next_attempt_at <= now,
        head_seq(message) == message.seq,
    )


class OutboxStore:
    """The worker's view of the outbox table."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._sqlite = db.engine.dialect.name == "sqlite"
        self._reader = db.engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})

    def _any(self, condition: Any) -> bool:
        """SQLite: a read (no write lock) telling whether a write transaction is worth taking.

        An idle worker then polls without queueing on SQLite's single writer lock.
        """
        with self._reader.connect() as conn:
            found = conn.execute(select(OutboxMessage.seq).where(condition).limit(1)).first()
            conn.rollback()
        return found is not None

    # --- claiming -------------------------------------------------------------------------

    def claim(self, wants: Mapping[str, int], lease_token: str, lease_seconds: float) -> list[ClaimedMessage]:
        """Claim up to ``wants[endpoint]`` head messages per endpoint, in one transaction."""
        wants = {endpoint: n for endpoint, n in wants.items() if n > 0}
        if not wants:
            return []
        now = utcnow()
        expires = now + timedelta(seconds=lease_seconds)
        claimed: list[ClaimedMessage] = []
        if self._sqlite and not self._any(
            and_(OutboxMessage.endpoint.in_(sorted(wants)), claimable_condition(OutboxMessage, now))
        ):
            return claimed
        with self.db.engine.begin() as conn:
            for endpoint, limit in sorted(wants.items()):
                claimed.extend(self._claim_endpoint(conn, endpoint, limit, lease_token, now, expires))
        claimed.sort(key=lambda message: message.seq)
        return claimed

    def _claim_endpoint(
        self, conn: Connection, endpoint: str, limit: int, token: str, now: datetime, expires: datetime
    ) -> list[ClaimedMessage]:
        candidates = (
            select(OutboxMessage.seq)
            .where(OutboxMessage.endpoint == endpoint, claimable_condition(OutboxMessage, now))
            .order_by(OutboxMessage.seq)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        statement = (
            update(OutboxMessage)
            .where(OutboxMessage.seq.in_(candidates.scalar_subquery()))
            .values(
                state=MessageState.IN_FLIGHT.value,
                lease_owner=token,
                lease_expires_at=expires,
                attempts=OutboxMessage.attempts + 1,
                updated_at=now,
            )
            .returning(
                OutboxMessage.seq,
                OutboxMessage.message_id,
                OutboxMessage.endpoint,
                OutboxMessage.kind,
                OutboxMessage.ordering_key,
                OutboxMessage.dossier_code,
                OutboxMessage.payload,
                OutboxMessage.attempts,
                OutboxMessage.manual_retry,
            )
        )
        return [
            ClaimedMessage(
                seq=row.seq,
                message_id=row.message_id,
                endpoint=row.endpoint,
                kind=row.kind,
                ordering_key=row.ordering_key,
                dossier_code=row.dossier_code,
                payload=row.payload,
                attempt_no=row.attempts,
                lease_token=token,
                manual=bool(row.manual_retry),
            )
            for row in conn.execute(statement)
        ]

    # --- leases ----------------------------------------------------------------------------

    def heartbeat(self, leases: Mapping[str, Sequence[int]], lease_seconds: float) -> set[int]:
        """Extend our leases; returns the seqs still held (a foreign claim is never renewed)."""
        pairs = [(seq, token) for token, seqs in leases.items() for seq in seqs]
        if not pairs:
            return set()
        now = utcnow()
        held: set[int] = set()
        with self.db.engine.begin() as conn:
            for chunk in _chunks(pairs, 500):
                result = conn.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.state == MessageState.IN_FLIGHT.value,
                        tuple_(OutboxMessage.seq, OutboxMessage.lease_owner).in_(chunk),
                    )
                    .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
                    .returning(OutboxMessage.seq)
                )
                held.update(result.scalars())
        return held

    def release(self, leases: Iterable[tuple[int, str]], *, not_before: datetime | None = None) -> int:
        """Give claimed messages back without counting an attempt (shutdown, open circuit)."""
        pairs = list(leases)
        if not pairs:
            return 0
        now = utcnow()
        released = 0
        with self.db.engine.begin() as conn:
            for chunk in _chunks(pairs, 500):
                result = conn.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.state == MessageState.IN_FLIGHT.value,
                        tuple_(OutboxMessage.seq, OutboxMessage.lease_owner).in_(chunk),
                    )
                    .values(
                        state=MessageState.PENDING.value,
                        lease_owner=None,
                        lease_expires_at=None,
                        attempts=OutboxMessage.attempts - 1,
                        next_attempt_at=not_before or now,
                        updated_at=now,
                    )
                    .returning(OutboxMessage.seq)
                )
                released += len(result.all())
        return released

    # --- completion ------------------------------------------------------------------------

    def complete(self, completions: Sequence[Completion], worker_id: str) -> set[int]:
        """Write a batch of attempt results; returns the seqs actually finalised.

        A completion whose lease was lost (rescued, re-claimed) matches no row and is dropped:
        its attempt is not recorded twice and the newer state is never overwritten.
        """
        if not completions:
            return set()
        now = utcnow()
        done: set[int] = set()
        with self.db.engine.begin() as conn:
            delivered = [c for c in completions if c.outcome == OUTCOME_DELIVERED]
            for chunk in _chunks(delivered, 500):
                result = conn.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.state == MessageState.IN_FLIGHT.value,
                        tuple_(OutboxMessage.seq, OutboxMessage.lease_owner).in_(
                            [(c.seq, c.lease_token) for c in chunk]
                        ),
                    )
                    .values(
                        state=MessageState.DELIVERED.value,
                        lease_owner=None,
                        lease_expires_at=None,
                        delivered_at=now,
                        updated_at=now,
                        last_error=None,
                        error_class=None,
                        manual_retry=False,
                    )
                    .returning(OutboxMessage.seq)
                )
                done.update(result.scalars())
            for completion in completions:
                if completion.outcome == OUTCOME_DELIVERED:
                    continue
                dead = completion.outcome == OUTCOME_DEAD
                result = conn.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.seq == completion.seq,
                        OutboxMessage.lease_owner == completion.lease_token,
                        OutboxMessage.state == MessageState.IN_FLIGHT.value,
                    )
                    .values(
                        state=(MessageState.DEAD if dead else MessageState.PENDING).value,
                        lease_owner=None,
                        lease_expires_at=None,
                        next_attempt_at=completion.next_attempt_at or now,
                        dead_at=now if dead else None,
                        updated_at=now,
                        last_error=completion.error,
                        error_class=completion.error_class,
                        manual_retry=False,
                    )
                )
                if result.rowcount:
                    done.add(completion.seq)
            rows = [_attempt_row(c, worker_id) for c in completions if c.seq in done]
            if rows:
                conn.execute(insert(DeliveryAttempt), rows)
        return done

    # --- rescue ----------------------------------------------------------------------------

    def rescue_expired(
        self, max_attempts: Mapping[str, int], rescuer_id: str, *, limit: int = 500
    ) -> list[int]:
        """Return messages whose lease expired (worker killed or stalled) to the queue.

        Each rescue records a ``lease_lost`` attempt. The update is guarded by the same
        (token, state, expiry) it read, so it cannot race a completion that landed meanwhile.
        A message out of attempts goes to the dead-letter queue instead.
        """
        now = utcnow()
        rescued: list[int] = []
        expired = and_(
            OutboxMessage.state == literal_column("'in_flight'"), OutboxMessage.lease_expires_at < now
        )
        if self._sqlite and not self._any(expired):
            return rescued
        with self.db.engine.begin() as conn:
            query = (
                select(
                    OutboxMessage.seq,
                    OutboxMessage.endpoint,
                    OutboxMessage.lease_owner,
                    OutboxMessage.attempts,
                    OutboxMessage.updated_at,
                    OutboxMessage.manual_retry,
                )
                .where(expired)
                .order_by(OutboxMessage.seq)
                .limit(limit)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            attempts: list[dict[str, Any]] = []
            for row in conn.execute(query).all():
                dead = row.attempts >= max_attempts.get(row.endpoint, 1 << 30)
                error = (
                    f"lease expired: worker {row.lease_owner} stopped or lost the database "
                    f"before finishing attempt {row.attempts}"
                )
                result = conn.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.seq == row.seq,
                        OutboxMessage.lease_owner == row.lease_owner,
                        OutboxMessage.state == MessageState.IN_FLIGHT.value,
                        OutboxMessage.lease_expires_at < now,
                    )
                    .values(
                        state=(MessageState.DEAD if dead else MessageState.PENDING).value,
                        lease_owner=None,
                        lease_expires_at=None,
                        next_attempt_at=now,
                        dead_at=now if dead else None,
                        updated_at=now,
                        last_error=error,
                        error_class=LEASE_LOST_ERROR_CLASS,
                        manual_retry=False,
                    )
                )
                if not result.rowcount:
                    continue
                rescued.append(row.seq)
                attempts.append(
                    {
                        "message_seq": row.seq,
                        "attempt_no": row.attempts,
                        "worker_id": row.lease_owner or rescuer_id,
                        "started_at": row.updated_at,
                        "finished_at": now,
                        "outcome": OUTCOME_LEASE_LOST,
                        "status_code": None,
                        "error_class": LEASE_LOST_ERROR_CLASS,
                        "error": f"{error} (rescued by {rescuer_id})",
                        "request_summary": None,
                        "response_summary": None,
                        "manual": bool(row.manual_retry),
                    }
                )
            if attempts:
                conn.execute(insert(DeliveryAttempt), attempts)
        return rescued

    # --- endpoint health -------------------------------------------------------------------

    def publish_health(
        self, endpoint: str, state: str, consecutive_failures: int, *, success: bool, error: str | None
    ) -> None:
        """Upsert the breaker state of ``endpoint`` for operators (``endpoint_health``)."""
        now = utcnow()
        values: dict[str, Any] = {
            "endpoint": endpoint,
            "state": state,
            "consecutive_failures": consecutive_failures,
            "updated_at": now,
        }
        if state == "open":
            values["opened_at"] = now
        if success:
            values["last_success_at"] = now
        elif error is not None:
            values["last_failure_at"] = now
            values["last_error"] = error
        with self.db.engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(EndpointHealth).values(**values)
            update_values = {key: value for key, value in values.items() if key != "endpoint"}
            conn.execute(statement.on_conflict_do_update(index_elements=["endpoint"], set_=update_values))


def _attempt_row(completion: Completion, worker_id: str) -> dict[str, Any]:
    return {
        "message_seq": completion.seq,
        "attempt_no": completion.attempt_no,
        "worker_id": worker_id,
        "started_at": completion.started_at,
        "finished_at": completion.finished_at,
        "outcome": completion.outcome,
        "status_code": completion.status_code,
        "error_class": completion.error_class,
        "error": completion.error,
        "request_summary": completion.request_summary,
        "response_summary": completion.response_summary,
        "manual": completion.manual,
    }


def _chunks(items: Sequence[_T], size: int) -> Iterable[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
