"""Per-dossier FIFO per endpoint: the head of each queue, and what blocks it (docs/delivery.md §6).

A *queue* is the messages of one (endpoint, ordering_key), in ``seq`` order. A message in a
holding state (pending, in flight or dead: :data:`~hub.db.models.ACTIVE_STATES`) holds every
later message of its queue, so only the earliest active message, the *head*, may be claimed
(when pending and due). A pending message behind a dead one is *blocked*: operators see it as
such until the dead one is retried or discarded.

The rule is one function, :func:`first_in_queue`: "the smallest seq of this message's queue
in these states (optionally: before this message)". It is rendered twice, as a correlated SQL
scalar (the SQL store's claim, the DLQ's blocked view, the demo's snapshot) and over in-memory
rows (:func:`first_in_queue_of`, the in-memory store); the store contract tests
(``tests/delivery/test_store_contract.py``) hold both renderings to the same behaviour.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Select, and_, func, literal_column, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnClause

from hub.db.models import ACTIVE_STATES, MessageState, OutboxMessage

#: States that hold the later messages of their queue.
HOLDING_STATES: tuple[MessageState, ...] = ACTIVE_STATES
#: States that block their queue until an operator acts.
BLOCKING_STATES: tuple[MessageState, ...] = (MessageState.DEAD,)


def _literals(states: Iterable[MessageState]) -> list[ColumnClause[str]]:
    """State tests as SQL literals, not bound parameters, so that the planners can match the
    partial indexes (``ix_outbox_active_key``, ``ix_outbox_pending_endpoint_seq``) even with
    generic/prepared plans."""
    return [literal_column(f"'{state.value}'") for state in states]


def first_in_queue(message: Any, states: Collection[MessageState], *, before: bool) -> Any:
    """Correlated SQL scalar: the smallest seq in ``states`` of ``message``'s (endpoint,
    ordering_key), counting only earlier seqs when ``before``; NULL when there is none.

    Written as ``min()`` (an index probe on ``ix_outbox_active_key``) rather than NOT EXISTS:
    the planner evaluates it per candidate row instead of turning it into an anti-join whose
    cost depends on fresh statistics (a bulk insert made the anti-join plan quadratic).
    """
    earlier = aliased(OutboxMessage)
    conditions = [
        earlier.endpoint == message.endpoint,
        earlier.ordering_key == message.ordering_key,
        earlier.state.in_(_literals(states)),
    ]
    if before:
        conditions.append(earlier.seq < message.seq)
    return select(func.min(earlier.seq)).where(*conditions).correlate(message).scalar_subquery()


def depth_by_endpoint(states: Iterable[MessageState]) -> Select[str, str, int, datetime]:
    """``(endpoint, state, count, oldest created_at)`` of the outbox rows in ``states``: the
    queue depth that the metrics (:mod:`hub.telemetry.metrics`) and the console's overview show."""
    o = OutboxMessage
    return (
        select(o.endpoint, o.state, func.count(), func.min(o.created_at))
        .where(o.state.in_([state.value for state in states]))
        .group_by(o.endpoint, o.state)
    )


def head_seq(message: Any) -> Any:
    """SQL: the seq of the head of ``message``'s queue (its earliest active message)."""
    return first_in_queue(message, HOLDING_STATES, before=False)


def blocked_by(message: Any) -> Any:
    """SQL: the seq of the earliest dead message ahead of ``message`` in its queue, or NULL."""
    return first_in_queue(message, BLOCKING_STATES, before=True)


def claimable_condition(message: Any, now: datetime) -> Any:
    """SQL condition: pending, due, and head of its queue.

    The head test is written ``head_seq >= seq``, not ``=``: for a pending message the two are
    the same (its own seq is among those ``head_seq`` takes the smallest of, so it is never
    greater), but PostgreSQL guesses that an unknown ``=`` keeps 0.5 % of the rows and a
    ``>=`` a third. With the ``=`` and fresh statistics it read every due pending row of the
    endpoint, tested each for being a head and sorted them, instead of walking
    ``ix_outbox_pending_endpoint_seq`` in seq order until the claim's limit: a claim's cost grew
    with the queue (about 190 ms for 64 of 20,000 rows, against 3 ms; docs/delivery.md §9.3).
    """
    [pending] = _literals([MessageState.PENDING])
    return and_(message.state == pending, message.next_attempt_at <= now, head_seq(message) >= message.seq)


# --- the same rule over in-memory rows ------------------------------------------------------


class QueuedRow(Protocol):
    """What the rule reads of a message (an in-memory row)."""

    @property
    def seq(self) -> int: ...

    @property
    def state(self) -> str: ...


def first_in_queue_of(
    queue: Iterable[QueuedRow], states: Collection[MessageState], *, before: int | None = None
) -> int | None:
    """:func:`first_in_queue` over the rows of one queue: the smallest seq in ``states``
    (only seqs below ``before`` when given), or ``None``."""
    wanted = {state.value for state in states}
    seqs = [row.seq for row in queue if row.state in wanted and (before is None or row.seq < before)]
    return min(seqs, default=None)


def head_seq_of(queue: Iterable[QueuedRow]) -> int | None:
    return first_in_queue_of(queue, HOLDING_STATES)


def blocked_by_of(row: QueuedRow, queue: Iterable[QueuedRow]) -> int | None:
    return first_in_queue_of(queue, BLOCKING_STATES, before=row.seq)
