"""The outbox state machine, written once (docs/delivery.md §4–§8).

Every change of an outbox row is one of the transitions below. Each is a guard (the state
the row must be in; the lease checks are the store's) and a table of column values. The SQL
store renders a table into ``UPDATE … SET``; the in-memory store and the DLQ service (ORM
rows) assign it with :func:`apply_changes`. A column whose new value depends on the old one
(``attempts = attempts + 1``) is written as :class:`Increment`, so the SQL store can keep it
a single atomic statement.

::

    pending ──claim──▶ in_flight ──deliver──▶ delivered
       ▲                 │  │  └──fail (exhausted / permanent)──▶ dead
       ├──release────────┘  └──fail (retry) / rescue──▶ pending
       ├──operator retry◀── dead | discarded | delivered
    dead | pending ──discard──▶ discarded
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.db.models import DeliveryAttempt, MessageState


class AttemptOutcome(enum.StrEnum):
    """How an attempt ended (``delivery_attempts.outcome``)."""

    DELIVERED = "delivered"
    RETRY = "retry"
    """Failed; the message is pending again until ``next_attempt_at``."""
    DEAD = "dead"
    """Failed for good (permanent error or attempts exhausted): dead-lettered."""
    LEASE_LOST = "lease_lost"
    """The worker died or stalled mid-attempt; recorded by the rescuer."""


#: ``error_class`` of a message whose lease expired (recorded by the rescuer).
LEASE_LOST_ERROR_CLASS = "LeaseLost"

#: The state a claim takes a message from (a store also checks it is due and head of queue).
CLAIMABLE_STATE = MessageState.PENDING
#: The state heartbeats, completions, releases and rescues require (plus the lease token).
LEASED_STATE = MessageState.IN_FLIGHT
#: States an operator may retry from (delivered = resend on request).
RETRYABLE_STATES = (MessageState.DEAD, MessageState.DISCARDED, MessageState.DELIVERED)
#: States an operator may discard (pending covers messages blocked behind a dead one).
DISCARDABLE_STATES = (MessageState.DEAD, MessageState.PENDING)
#: States whose payload an operator may edit.
EDITABLE_STATES = (MessageState.DEAD, MessageState.DISCARDED, MessageState.PENDING)


@dataclass(frozen=True, slots=True)
class Increment:
    """A column value relative to the current one: ``column = column + by``."""

    by: int


#: Column name → new value (or :class:`Increment`), as one transition writes it.
Changes = Mapping[str, Any]


def _unleased() -> dict[str, Any]:
    return {"lease_owner": None, "lease_expires_at": None}


def enqueued(
    *,
    endpoint: str,
    kind: str,
    ordering_key: str,
    payload: dict[str, Any],
    dossier_code: str | None = None,
    not_before: datetime | None = None,
    now: datetime,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """The columns of a new pending message, due at ``not_before`` (or at once)."""
    return {
        "correlation_id": correlation_id,
        "message_id": new_message_id(),
        "endpoint": endpoint,
        "kind": kind,
        "ordering_key": ordering_key,
        "dossier_code": dossier_code,
        "payload": payload,
        "state": MessageState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
        "updated_at": now,
    }


def new_message_id() -> str:
    """Stable id sent to the receiver (UUIDv4 text; WS-Addressing wants ``urn:uuid:`` + this)."""
    return str(uuid.uuid4())


def claim(*, lease_owner: str, lease_expires_at: datetime, now: datetime) -> Changes:
    """pending → in_flight under a fresh lease; the attempt is counted now (docs/delivery.md §4)."""
    return {
        "state": LEASED_STATE.value,
        "lease_owner": lease_owner,
        "lease_expires_at": lease_expires_at,
        "attempts": Increment(1),
        "updated_at": now,
    }


def extend_lease(*, lease_expires_at: datetime) -> Changes:
    """Heartbeat: the holder keeps its claim (docs/delivery.md §9)."""
    return {"lease_expires_at": lease_expires_at}


def release(*, not_before: datetime | None, now: datetime) -> Changes:
    """in_flight → pending without counting the attempt (shutdown, open circuit)."""
    return {
        "state": MessageState.PENDING.value,
        **_unleased(),
        "attempts": Increment(-1),
        "next_attempt_at": not_before or now,
        "updated_at": now,
    }


def make_due(*, now: datetime) -> Changes:
    """A pending message pushed back by an endpoint's outage is due at once: the endpoint is
    back (its circuit closed, docs/delivery.md §7)."""
    return {"next_attempt_at": now, "updated_at": now}


def held_back(row: Any, *, endpoint: str, since: datetime, now: datetime) -> bool:
    """Whether ``row`` is one :func:`make_due` applies to: pending for ``endpoint``, not due
    yet, and pushed back (retry scheduled, or released by an open circuit) at ``since`` or later."""
    return bool(
        row.endpoint == endpoint
        and row.state == CLAIMABLE_STATE.value
        and row.next_attempt_at > now
        and row.updated_at >= since
    )


def deliver(*, now: datetime) -> Changes:
    """in_flight → delivered; clears the error and the manual-retry flag."""
    return {
        "state": MessageState.DELIVERED.value,
        **_unleased(),
        "delivered_at": now,
        "updated_at": now,
        "last_error": None,
        "error_class": None,
        "manual_retry": False,
    }


def fail(
    *,
    dead: bool,
    next_attempt_at: datetime | None,
    error: str | None,
    error_class: str | None,
    now: datetime,
) -> Changes:
    """in_flight → pending (retry at ``next_attempt_at``) or → dead (dead-letter queue, §8)."""
    return {
        "state": (MessageState.DEAD if dead else MessageState.PENDING).value,
        **_unleased(),
        "next_attempt_at": next_attempt_at or now,
        "dead_at": now if dead else None,
        "updated_at": now,
        "last_error": error,
        "error_class": error_class,
        "manual_retry": False,
    }


def finish(
    outcome: AttemptOutcome,
    *,
    now: datetime,
    next_attempt_at: datetime | None = None,
    error: str | None = None,
    error_class: str | None = None,
) -> Changes:
    """The transition a worker's finished attempt makes: deliver, retry or dead-letter."""
    if outcome is AttemptOutcome.DELIVERED:
        return deliver(now=now)
    if outcome is AttemptOutcome.LEASE_LOST:
        raise ValueError("a lease_lost attempt is recorded by the rescuer, not finished by a worker")
    return fail(
        dead=outcome is AttemptOutcome.DEAD,
        next_attempt_at=next_attempt_at,
        error=error,
        error_class=error_class,
        now=now,
    )


def out_of_attempts(attempts: int, max_attempts: int) -> bool:
    """A rescued message that already used its last attempt goes to the dead-letter queue."""
    return attempts >= max_attempts


class LeaseLoss(enum.StrEnum):
    """Why the rescuer took a lease back (docs/delivery.md §12.3)."""

    EXPIRED = "expired"
    """``lease_expires_at`` passed without a heartbeat."""
    WORKER_DEAD = "worker_dead"
    """The holder's worker missed its heartbeats (killed or frozen), or stopped still holding it."""


def lease_lost_error(lease_owner: str | None, attempt_no: int, cause: LeaseLoss = LeaseLoss.EXPIRED) -> str:
    if cause is LeaseLoss.WORKER_DEAD:
        return (
            f"worker of lease {lease_owner} missed its heartbeats (killed, frozen or stopped) "
            f"before finishing attempt {attempt_no}"
        )
    return (
        f"lease expired: worker {lease_owner} stopped or lost the database "
        f"before finishing attempt {attempt_no}"
    )


def rescue(*, dead: bool, error: str, now: datetime) -> Changes:
    """in_flight with an expired lease, or held by a dead worker → pending now (or dead when out
    of attempts, §10, §12.3)."""
    return fail(dead=dead, next_attempt_at=now, error=error, error_class=LEASE_LOST_ERROR_CLASS, now=now)


def operator_retry(*, now: datetime) -> Changes:
    """dead | discarded | delivered → pending with a fresh attempt budget, flagged manual (§8)."""
    return {
        "state": MessageState.PENDING.value,
        "attempts": 0,
        "manual_retry": True,
        "next_attempt_at": now,
        "dead_at": None,
        **_unleased(),
        "updated_at": now,
    }


def discard(*, reason: str, now: datetime) -> Changes:
    """dead | pending → discarded with the operator's reason; releases the dossier's queue (§6)."""
    return {"state": MessageState.DISCARDED.value, "note": reason, "updated_at": now}


def apply_changes(row: Any, changes: Changes) -> None:
    """Assign ``changes`` to an object with the outbox columns as attributes (ORM or in-memory row)."""
    for column, value in changes.items():
        if isinstance(value, Increment):
            value = getattr(row, column) + value.by
        setattr(row, column, value)


def lease_lost_attempt(
    row: Any, *, rescuer_id: str, now: datetime, cause: LeaseLoss = LeaseLoss.EXPIRED
) -> DeliveryAttempt:
    """The ``lease_lost`` attempt the rescuer records for an in-flight ``row`` it takes back
    (a transient row: the SQL store inserts its columns, the memory store keeps it)."""
    return DeliveryAttempt(
        message_seq=row.seq,
        attempt_no=row.attempts,
        worker_id=row.lease_owner or rescuer_id,
        started_at=row.updated_at,
        finished_at=now,
        outcome=AttemptOutcome.LEASE_LOST,
        manual=bool(row.manual_retry),
        error_class=LEASE_LOST_ERROR_CLASS,
        error=f"{lease_lost_error(row.lease_owner, row.attempts, cause)} (rescued by {rescuer_id})",
    )
