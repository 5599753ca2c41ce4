"""The usage report (Decision 692/QĐ-SNN Arts. 12.5, 18: report on the use of the system,
periodically and on demand): per period, dossiers by channel, deliveries per portal, signatures
made, lookups answered and downtime (docs/reports.md §8).

SQL aggregates in SQLAlchemy Core, the same statements on SQLite and PostgreSQL; delivery
percentiles by window functions over a portable "seconds between" expression
(:class:`seconds_between`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Float, and_, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from hub.db.models import AuditEntry, LookupCount, MessageState, OutboxMessage
from hub.db.session import Database
from hub.reports.models import ReportDossier
from hub.reports.query import CHANNEL_LABELS, DayRange
from hub.services.outages import OutageKind, outage_report
from schemas.dossier import Channel

#: The signing audit's outcome of a signature made (:mod:`hub.services.signing_authority`).
SIGNED = "signed"
#: Percentiles of the time to deliver, nearest-rank (docs/reports.md §8.2).
PERCENTILES = {"median_seconds": 50, "p95_seconds": 95}


class seconds_between(FunctionElement[float]):  # an SQL function, named like one
    """``end - start`` in seconds (float): ``julianday`` on SQLite, ``EXTRACT(EPOCH …)`` on
    PostgreSQL."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS DOUBLE PRECISION)"


class ChannelUsage(BaseModel):
    """Dossiers received in the period, and ended in it, by channel (``KenhThucHien``)."""

    channel: int
    label: str
    received: int = 0
    ended: int = 0


class EndpointUsage(BaseModel):
    """Messages queued for one endpoint in the period, by what became of them (as of now)."""

    endpoint: str
    queued: int = 0
    delivered: int = 0
    retried: int = 0
    """Needed more than one attempt (whatever became of them)."""
    dead: int = 0
    """In the dead-letter queue now."""
    discarded: int = 0
    waiting: int = 0
    """Pending or in flight now."""
    median_seconds: float | None = None
    p95_seconds: float | None = None


class SignatureUsage(BaseModel):
    """Signatures made, by key purpose (``personal`` / ``seal``) and by where they came from."""

    purpose: str
    path: str
    signed: int


class LookupUsage(BaseModel):
    channel: str
    outcome: str
    count: int


class DowntimeUsage(BaseModel):
    kind: str
    outages: int
    seconds: float


class UsageReport(BaseModel):
    first: date = Field(serialization_alias="from")
    last: date = Field(serialization_alias="to")
    as_of: datetime
    dossiers: list[ChannelUsage]
    deliveries: list[EndpointUsage]
    signatures: list[SignatureUsage]
    lookups: list[LookupUsage]
    downtime: list[DowntimeUsage]


def _channel_label(channel: int) -> str:
    known = {int(c): label for c, label in CHANNEL_LABELS.items()}
    return known.get(channel, str(channel))


def dossiers_by_channel(connection: Connection, start: datetime, end: datetime) -> list[ChannelUsage]:
    """Received in ``[start, end)`` and ended in it (``report_dossiers``), per channel."""
    r = ReportDossier.__table__.c
    received = func.sum(case((and_(r.received_at >= start, r.received_at < end), 1), else_=0))
    ended = func.sum(case((and_(r.end_at >= start, r.end_at < end), 1), else_=0))
    statement = (
        select(r.channel, received, ended)
        .where(
            (and_(r.received_at >= start, r.received_at < end)) | (and_(r.end_at >= start, r.end_at < end))
        )
        .group_by(r.channel)
    )
    found = {int(row[0]): (int(row[1]), int(row[2])) for row in connection.execute(statement)}
    channels = sorted(set(found) | {int(channel) for channel in Channel})
    return [
        ChannelUsage(
            channel=channel,
            label=_channel_label(channel),
            received=found.get(channel, (0, 0))[0],
            ended=found.get(channel, (0, 0))[1],
        )
        for channel in channels
    ]


def deliveries_by_endpoint(connection: Connection, start: datetime, end: datetime) -> list[EndpointUsage]:
    """Messages queued in ``[start, end)`` per endpoint; the time to deliver is
    ``delivered_at - created_at`` of those delivered, median and 95th percentile nearest-rank."""
    o = OutboxMessage.__table__.c
    queued = and_(o.created_at >= start, o.created_at < end)

    def state_is(*states: MessageState) -> Any:
        return func.sum(case((o.state.in_([s.value for s in states]), 1), else_=0))

    counts = (
        select(
            o.endpoint,
            func.count(),
            state_is(MessageState.DELIVERED),
            func.sum(case((o.attempts > 1, 1), else_=0)),
            state_is(MessageState.DEAD),
            state_is(MessageState.DISCARDED),
            state_is(MessageState.PENDING, MessageState.IN_FLIGHT),
        )
        .where(queued)
        .group_by(o.endpoint)
    )
    by_endpoint = {
        row[0]: EndpointUsage(
            endpoint=row[0],
            queued=row[1],
            delivered=row[2],
            retried=row[3],
            dead=row[4],
            discarded=row[5],
            waiting=row[6],
        )
        for row in connection.execute(counts)
    }
    took = seconds_between(o.created_at, o.delivered_at)
    ranked = (
        select(
            o.endpoint,
            took.label("took"),
            func.row_number().over(partition_by=o.endpoint, order_by=took).label("rank"),
            func.count().over(partition_by=o.endpoint).label("n"),
        )
        .where(queued, o.state == MessageState.DELIVERED.value, o.delivered_at.is_not(None))
        .subquery()
    )
    k = ranked.c
    # nearest rank: the ceil(p * n / 100)-th smallest, in integer arithmetic
    percentiles = select(
        k.endpoint,
        *(
            func.max(case((k.rank == (k.n * p + 99) // 100, k.took))).label(name)
            for name, p in PERCENTILES.items()
        ),
    ).group_by(k.endpoint)
    for row in connection.execute(percentiles):
        usage = by_endpoint[row.endpoint]
        for name in PERCENTILES:
            value = getattr(row, name)
            setattr(usage, name, None if value is None else round(float(value), 3))
    return [by_endpoint[name] for name in sorted(by_endpoint)]


def signatures_made(connection: Connection, start: datetime, end: datetime) -> list[SignatureUsage]:
    """Signing audit rows (``signing.<path>``) with outcome ``signed`` in ``[start, end)``."""
    a = AuditEntry.__table__.c
    purpose = func.coalesce(a.details["purpose"].as_string(), "")
    statement = (
        select(purpose.label("purpose"), a.action, func.count())
        .where(
            a.at >= start,
            a.at < end,
            a.action.like("signing.%"),
            a.details["outcome"].as_string() == SIGNED,
        )
        .group_by(purpose, a.action)
        .order_by(purpose, a.action)
    )
    return [
        SignatureUsage(purpose=row[0], path=row[1].removeprefix("signing."), signed=row[2])
        for row in connection.execute(statement)
    ]


def lookups_answered(connection: Connection, first: date, last: date) -> list[LookupUsage]:
    """``lookup_counts`` summed over the days ``first``–``last`` (Vietnam time)."""
    c = LookupCount.__table__.c
    statement = (
        select(c.channel, c.outcome, func.sum(c.count))
        .where(c.day >= first, c.day <= last)
        .group_by(c.channel, c.outcome)
        .order_by(c.channel, c.outcome)
    )
    return [
        LookupUsage(channel=row[0], outcome=row[1], count=int(row[2]))
        for row in connection.execute(statement)
    ]


def usage_report(db: Database, window: DayRange, now: datetime) -> UsageReport:
    """The usage report of the days of ``window`` (docs/reports.md §8)."""
    period = window.period()
    start, end = period.start, period.end
    with db.sessions() as session:
        connection = session.connection()
        dossiers = dossiers_by_channel(connection, start, end)
        deliveries = deliveries_by_endpoint(connection, start, end)
        signatures = signatures_made(connection, start, end)
        lookups = lookups_answered(connection, window.first, window.last)
    outages = outage_report(db, start, end)
    downtime = [
        DowntimeUsage(
            kind=kind.value,
            outages=sum(1 for view in outages.outages if view.kind is kind),
            seconds=outages.seconds_by_kind[kind.value],
        )
        for kind in OutageKind
    ]
    return UsageReport(
        first=window.first,
        last=window.last,
        as_of=min(end, now),
        dossiers=dossiers,
        deliveries=deliveries,
        signatures=signatures,
        lookups=lookups,
        downtime=downtime,
    )
