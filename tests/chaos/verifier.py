"""One verifier for every chaos scenario: did the outbox keep its promises at the receiver?

Given the hub's database (the outbox and its attempts) and the receiver's arrival log (what
:class:`hub.simulators.sink.WebhookSink` recorded, ``GET /_control/records``), it checks the
guarantees of docs/delivery.md §5, §6 and §11:

* **at least once** (§11.8): every enqueued message arrived at least once (``lost`` if not) and
  the hub finished it (``dead``, ``stuck_in_flight``, ``stuck_pending``, ``unfinished``);
* **duplicates only where a lease was lost** (§4): a message that arrived *n* times needs
  *n − 1* ``lease_lost`` attempts; explained duplicates are reported, the others are
  ``unexplained_duplicate`` violations; an arrival the outbox never sent is a ``phantom``;
* **per-dossier order at the receiver** (§6, §11.5): per (endpoint, ordering key), the first
  arrivals come in enqueue (``seq``) order (``reordered`` otherwise), and no message arrives
  again after a later one of its dossier was acknowledged (``stale_redelivery``).

:func:`check` is the pure rule over plain rows (unit-tested on synthetic logs,
``tests/chaos/test_verifier.py``); :func:`verify` reads the rows from a database first. The rows
are the hub's own :class:`OutboxMessage` and :class:`DeliveryAttempt`, in a session or never in
one (as in :class:`hub.delivery.memory_store.MemoryOutboxStore`): the columns, declared once.
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from hub.db.models import DeliveryAttempt, MessageState, OutboxMessage
from hub.db.session import Database
from hub.outbox.transitions import AttemptOutcome


class ViolationKind(enum.StrEnum):
    LOST = "lost"
    """Enqueued, never arrived at the receiver."""
    DEAD = "dead"
    """Dead-lettered (the scenarios give the hub retries enough for every fault they inject)."""
    STUCK_IN_FLIGHT = "stuck_in_flight"
    """Still in flight with a lease that has expired (the rescuer never returned it)."""
    STUCK_PENDING = "stuck_pending"
    """Still pending although it was due before the deadline."""
    UNFINISHED = "unfinished"
    """Not delivered yet for another reason (a live lease, a retry due after the deadline)."""
    PHANTOM = "phantom"
    """An arrival whose message id the outbox does not hold."""
    UNEXPLAINED_DUPLICATE = "unexplained_duplicate"
    """More arrivals than one plus the leases lost for the message."""
    REORDERED = "reordered"
    """A message's first arrival came after a later message of its dossier arrived."""
    STALE_REDELIVERY = "stale_redelivery"
    """A message arrived again after a later message of its dossier was acknowledged."""


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One arrival at the receiver, in arrival order."""

    message_id: str
    dossier_code: str = ""
    at: float = 0.0
    attempt: int = 0
    """The hub's attempt number (``X-Attempt``): which claim sent it."""
    acknowledged: bool = True
    """The receiver answered 2xx (the sink records only those; a ``drop_after`` may not be)."""

    @classmethod
    def from_record(cls, record: Any) -> ReceivedMessage:
        """From a sink :class:`~hub.simulators.sink.Arrival` or a ``/_control/records`` item."""
        if isinstance(record, Mapping):
            return cls(
                message_id=str(record["message_id"]),
                dossier_code=str(record.get("dossier_code", "")),
                at=float(record.get("at", 0.0)),
                attempt=int(record.get("attempt", 0)),
                acknowledged=bool(record.get("acknowledged", True)),
            )
        return cls(
            message_id=record.message_id,
            dossier_code=getattr(record, "dossier_code", ""),
            at=float(getattr(record, "at", 0.0)),
            attempt=int(getattr(record, "attempt", 0)),
            acknowledged=bool(getattr(record, "acknowledged", True)),
        )


@dataclass(frozen=True, slots=True)
class Violation:
    kind: ViolationKind
    message_id: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message_id}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A message that arrived more than once, and the leases lost that explain it."""

    message_id: str
    arrivals: int
    lease_lost: int

    @property
    def explained(self) -> bool:
        return self.arrivals - 1 <= self.lease_lost


@dataclass
class Report:
    enqueued: int
    arrivals: int
    delivered: int
    """Distinct enqueued messages that arrived."""
    lease_lost: int
    """``lease_lost`` attempts recorded (the rescuer's trace of killed or stalled workers)."""
    duplicates: list[Duplicate] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def kinds(self) -> Counter[str]:
        return Counter(v.kind.value for v in self.violations)

    def summary(self) -> dict[str, Any]:
        """Counts only (JSON-ready), for logs and the chaos benchmark."""
        return {
            "enqueued": self.enqueued,
            "arrivals": self.arrivals,
            "delivered": self.delivered,
            "duplicates": len(self.duplicates),
            "duplicate_arrivals": sum(d.arrivals - 1 for d in self.duplicates),
            "lease_lost": self.lease_lost,
            "violations": dict(self.kinds()),
        }

    def __str__(self) -> str:
        lines = [json.dumps(self.summary(), sort_keys=True)]
        lines += [f"  {v}" for v in self.violations[:40]]
        if len(self.violations) > 40:
            lines.append(f"  … and {len(self.violations) - 40} more")
        return "\n".join(lines)

    def assert_ok(self) -> None:
        assert self.ok, f"delivery guarantees violated:\n{self}"


def check(
    messages: Iterable[OutboxMessage],
    arrivals: Iterable[Any],
    *,
    now: datetime,
    deadline: datetime | None = None,
    attempts: Iterable[DeliveryAttempt] = (),
) -> Report:
    """The rule over plain rows: ``messages`` from the outbox, ``arrivals`` in arrival order,
    ``attempts`` the recorded attempts (those that ended ``lease_lost`` explain duplicates).

    ``now`` is when the rows were read (a lease expired before it is stuck); ``deadline`` (default
    ``now``) is when everything should have been delivered (a message pending and due before it
    is stuck).
    """
    deadline = deadline or now
    sent = {m.message_id: m for m in messages}
    lease_lost = Counter(a.message_seq for a in attempts if a.outcome == AttemptOutcome.LEASE_LOST)
    received = [ReceivedMessage.from_record(a) for a in arrivals]
    violations: list[Violation] = []
    counts = Counter(a.message_id for a in received)

    for message in sorted(sent.values(), key=lambda m: m.seq):
        violations.extend(_unfinished(message, counts[message.message_id], now=now, deadline=deadline))

    duplicates: list[Duplicate] = []
    for message_id, n in counts.items():
        if message_id not in sent:
            violations.append(
                Violation(ViolationKind.PHANTOM, message_id, f"arrived {n}× but never enqueued")
            )
        elif n > 1:
            duplicate = Duplicate(message_id, n, lease_lost[sent[message_id].seq])
            duplicates.append(duplicate)
            if not duplicate.explained:
                violations.append(
                    Violation(
                        ViolationKind.UNEXPLAINED_DUPLICATE,
                        message_id,
                        f"arrived {n}× with {duplicate.lease_lost} lease(s) lost",
                    )
                )
    violations.extend(_order(sent, received))
    return Report(
        enqueued=len(sent),
        arrivals=len(received),
        delivered=sum(1 for message_id in sent if counts[message_id]),
        lease_lost=sum(lease_lost[m.seq] for m in sent.values()),
        duplicates=sorted(duplicates, key=lambda d: sent[d.message_id].seq),
        violations=violations,
    )


def _unfinished(
    message: OutboxMessage, arrived: int, *, now: datetime, deadline: datetime
) -> list[Violation]:
    found: list[Violation] = []
    where = f"seq {message.seq}, dossier {message.ordering_key}"
    if not arrived:
        found.append(Violation(ViolationKind.LOST, message.message_id, f"{where}: state {message.state}"))
    if message.state == MessageState.DELIVERED:
        return found
    if message.state == MessageState.DEAD:
        kind, detail = ViolationKind.DEAD, "dead-lettered"
    elif message.state == MessageState.IN_FLIGHT and (
        message.lease_expires_at is None or message.lease_expires_at < now
    ):
        kind, detail = ViolationKind.STUCK_IN_FLIGHT, f"lease expired at {message.lease_expires_at}"
    elif message.state == MessageState.PENDING and (
        message.next_attempt_at is None or message.next_attempt_at <= deadline
    ):
        kind, detail = ViolationKind.STUCK_PENDING, f"pending, due at {message.next_attempt_at}"
    else:
        kind, detail = ViolationKind.UNFINISHED, f"state {message.state}"
    found.append(Violation(kind, message.message_id, f"{where}: {detail}"))
    return found


def _order(sent: Mapping[str, OutboxMessage], received: Sequence[ReceivedMessage]) -> list[Violation]:
    """Per (endpoint, ordering key): nothing older arrives after something newer was acknowledged."""
    found: list[Violation] = []
    newest_acknowledged: dict[tuple[str, str], OutboxMessage] = {}
    seen: set[str] = set()
    for arrival in received:
        message = sent.get(arrival.message_id)
        if message is None:
            continue
        queue = (message.endpoint, message.ordering_key)
        newest = newest_acknowledged.get(queue)
        first = message.message_id not in seen
        seen.add(message.message_id)
        if newest is not None and newest.seq > message.seq:
            kind = ViolationKind.REORDERED if first else ViolationKind.STALE_REDELIVERY
            found.append(
                Violation(
                    kind,
                    message.message_id,
                    f"dossier {message.ordering_key}: seq {message.seq} arrived "
                    f"{'first' if first else 'again'} (attempt {arrival.attempt}) "
                    f"after seq {newest.seq} was acknowledged",
                )
            )
        if arrival.acknowledged and (newest is None or message.seq > newest.seq):
            newest_acknowledged[queue] = message
    return found


def read_outbox(db: Database) -> tuple[list[OutboxMessage], list[DeliveryAttempt]]:
    """Every outbox row, and the attempts that ended ``lease_lost``."""
    lost = select(DeliveryAttempt).where(DeliveryAttempt.outcome == AttemptOutcome.LEASE_LOST.value)
    with db.sessions() as session:
        messages = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.seq)))
        return messages, list(session.scalars(lost))


def verify(db: Database, arrivals: Iterable[Any], *, deadline: datetime | None = None) -> Report:
    """:func:`check` on the outbox of ``db`` as it is now."""
    messages, attempts = read_outbox(db)
    return check(messages, arrivals, now=datetime.now(UTC), deadline=deadline, attempts=attempts)


def fetch_records(sink_base_url: str) -> list[dict[str, Any]]:
    """The arrival log of a sink in another process (``GET /_control/records``)."""
    answer = httpx.get(f"{sink_base_url}/_control/records", timeout=30)
    answer.raise_for_status()
    records: list[dict[str, Any]] = answer.json()
    return records


def history(db: Database, violations: Iterable[Violation], *, limit: int = 5) -> str:
    """The recorded attempts of the first ``limit`` messages named in ``violations`` (diagnosis)."""
    message_ids = list(dict.fromkeys(v.message_id for v in violations))[:limit]
    if not message_ids:
        return ""
    query = (
        select(
            OutboxMessage.message_id,
            OutboxMessage.seq,
            DeliveryAttempt.attempt_no,
            DeliveryAttempt.worker_id,
            DeliveryAttempt.outcome,
            DeliveryAttempt.started_at,
            DeliveryAttempt.finished_at,
        )
        .join(DeliveryAttempt, DeliveryAttempt.message_seq == OutboxMessage.seq)
        .where(OutboxMessage.message_id.in_(message_ids))
        .order_by(OutboxMessage.seq, DeliveryAttempt.id)
    )
    with db.sessions() as session:
        rows = session.execute(query).all()
    return "\n".join(
        f"  seq {row.seq} attempt {row.attempt_no} by {row.worker_id}: {row.outcome} "
        f"({row.started_at:%H:%M:%S.%f} → {row.finished_at:%H:%M:%S.%f})"
        for row in rows
    )
