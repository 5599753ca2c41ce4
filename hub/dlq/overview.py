"""The technicians' overview (issue 11, "Technician console"): per endpoint, how many
messages wait, are in flight, are retrying, dead-lettered or blocked, how many were delivered
in the last hour and day, the circuit breaker state and the oldest waiting message; and the
deliveries and failures of the last 24 hours, hour by hour.

Everything is a SQL aggregate: the queue depth is the one the metrics report
(:func:`hub.outbox.queue.depth_by_endpoint`), the circuit the one the workers publish
(``endpoint_health``, :func:`hub.dlq.service.endpoint_health`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select

from hub.db.models import DeliveryAttempt, MessageState, OutboxMessage
from hub.db.session import Database
from hub.dlq.service import endpoint_health, paused_endpoints
from hub.outbox import queue
from hub.outbox.transitions import AttemptOutcome

#: Hours in the overview's chart.
CHART_HOURS = 24


@dataclass
class EndpointOverview:
    endpoint: str
    pending: int = 0
    """Waiting for their first attempt (not retrying, not blocked)."""
    in_flight: int = 0
    retrying: int = 0
    """Pending again after a failed attempt."""
    dead: int = 0
    blocked: int = 0
    """Pending behind a dead message of their dossier (docs/delivery.md §6)."""
    delivered_hour: int = 0
    delivered_day: int = 0
    circuit: str = "closed"
    consecutive_failures: int = 0
    oldest_waiting: datetime | None = None
    """``created_at`` of the oldest pending message."""
    paused_by: str | None = None
    """Who paused delivery to this endpoint (``None``: not paused)."""


@dataclass(frozen=True)
class HourCount:
    start: datetime
    delivered: int
    failed: int
    """Attempts that ended in ``retry`` or ``dead``."""


@dataclass
class Overview:
    endpoints: list[EndpointOverview]
    hours: list[HourCount] = field(default_factory=list)


def _endpoints(db: Database, now: datetime, configured: Iterable[str]) -> list[EndpointOverview]:
    found: dict[str, EndpointOverview] = {name: EndpointOverview(name) for name in configured}

    def of(name: str) -> EndpointOverview:
        return found.setdefault(name, EndpointOverview(name))

    o = OutboxMessage
    pending = o.state == MessageState.PENDING.value
    blocked = queue.blocked_by(o).is_not(None)
    with db.sessions() as session:
        depth = session.execute(
            queue.depth_by_endpoint((MessageState.PENDING, MessageState.IN_FLIGHT, MessageState.DEAD))
        ).all()
        split = session.execute(
            select(
                o.endpoint,
                func.sum(case((blocked, 1), else_=0)),
                func.sum(case((and_(o.attempts > 0, ~blocked), 1), else_=0)),
            )
            .where(pending)
            .group_by(o.endpoint)
        ).all()
        delivered = session.execute(
            select(
                o.endpoint,
                func.sum(case((o.delivered_at >= now - timedelta(hours=1), 1), else_=0)),
                func.count(),
            )
            .where(o.state == MessageState.DELIVERED.value, o.delivered_at >= now - timedelta(days=1))
            .group_by(o.endpoint)
        ).all()
    for endpoint, state, count, oldest in depth:
        row = of(endpoint)
        if state == MessageState.PENDING.value:
            row.pending, row.oldest_waiting = count, oldest
        elif state == MessageState.IN_FLIGHT.value:
            row.in_flight = count
        else:
            row.dead = count
    for endpoint, blocked_count, retrying in split:
        row = of(endpoint)
        row.blocked, row.retrying = int(blocked_count or 0), int(retrying or 0)
        row.pending -= row.blocked + row.retrying
    for endpoint, hour, day in delivered:
        of(endpoint).delivered_hour, of(endpoint).delivered_day = int(hour or 0), int(day)
    for health in endpoint_health(db):
        row = of(health.endpoint)
        row.circuit, row.consecutive_failures = health.state, health.consecutive_failures
    for name, pause in paused_endpoints(db).items():
        of(name).paused_by = pause.paused_by
    return [found[name] for name in sorted(found)]


def _hours(db: Database, now: datetime) -> list[HourCount]:
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=CHART_HOURS - 1)
    starts = [first + timedelta(hours=i) for i in range(CHART_HOURS)]
    a = DeliveryAttempt
    bucket = case(*[(a.finished_at < start + timedelta(hours=1), i) for i, start in enumerate(starts)])
    ok = a.outcome == AttemptOutcome.DELIVERED.value
    failed = a.outcome.in_([AttemptOutcome.RETRY.value, AttemptOutcome.DEAD.value])
    with db.sessions() as session:
        rows = session.execute(
            select(bucket, func.sum(case((ok, 1), else_=0)), func.sum(case((failed, 1), else_=0)))
            .where(a.finished_at >= first)
            .group_by(bucket)
        ).all()
    counts = {int(index): (int(d or 0), int(f or 0)) for index, d, f in rows if index is not None}
    return [HourCount(start, *counts.get(i, (0, 0))) for i, start in enumerate(starts)]


def overview(db: Database, now: datetime, endpoints: Iterable[str] = ()) -> Overview:
    """The overview at ``now`` (timezone-aware); ``endpoints`` (the configured ones) are listed
    even with nothing queued."""
    return Overview(_endpoints(db, now, endpoints), _hours(db, now))
