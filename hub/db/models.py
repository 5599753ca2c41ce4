"""Tables of the hub core: dossiers, intake idempotency, outbox, attempts, DLQ operations, auth.

Outbox layout follows docs/delivery.md §4–§6 and §11: one row per (message, endpoint)
with a lease (``lease_owner`` + ``lease_expires_at`` renewed by heartbeat), durable retry state
(``attempts``, ``next_attempt_at``), and a partial index on the active rows so the head-of-key
lookup for per-dossier FIFO stays cheap (pg-boss #849).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Text,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base, utcnow

#: BIGINT on PostgreSQL, INTEGER (rowid alias, autoincrement) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class MessageState(enum.StrEnum):
    PENDING = "pending"
    """Waiting for its first or next attempt (``next_attempt_at``)."""
    IN_FLIGHT = "in_flight"
    """Claimed by a worker holding a lease."""
    DELIVERED = "delivered"
    DEAD = "dead"
    """In the dead-letter queue; holds later messages of its dossier on the same endpoint."""
    DISCARDED = "discarded"
    """Removed from the DLQ by an operator, with a reason; releases the dossier's queue."""


#: States that keep a dossier's later messages waiting (per-dossier FIFO per endpoint).
ACTIVE_STATES = (MessageState.PENDING, MessageState.IN_FLIGHT, MessageState.DEAD)


class DossierRow(Base):
    __tablename__ = "dossiers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    agency_code: Mapped[str] = mapped_column(String(40), index=True)
    procedure_code: Mapped[str] = mapped_column(String(40))
    status: Mapped[int] = mapped_column(Integer)
    #: Hub-side revision, incremented by every accepted change (row lock for ordering).
    revision: Mapped[int] = mapped_column(Integer, default=1)
    #: Source system's version, for idempotent upserts.
    source_version: Mapped[int | None] = mapped_column(Integer)
    #: Hash of the owner's ID number (lookups check it without exposing the number).
    owner_id_hash: Mapped[str | None] = mapped_column(String(64))
    document: Mapped[dict[str, Any]]
    #: Where the dossier came from: "source" (department software) or "dvcqg" (portal push).
    origin: Mapped[str] = mapped_column(String(20), default="source")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @classmethod
    def page(cls, after: int, size: int, *columns: Any) -> Select[Any]:
        """``id`` and ``columns`` of the ``size`` dossiers after id ``after``, in id order: one
        keyset page of a pass over every stored dossier (owner digests, report rows)."""
        return select(cls.id, *columns).where(cls.id > after).order_by(cls.id).limit(size)


class DossierSequence(Base):
    """Per-agency, per-day counter for dossier codes (Circular 01/2018 Art. 19 ``XXXX``)."""

    __tablename__ = "dossier_sequences"

    agency_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer, default=0)


class RegisterState(enum.StrEnum):
    """Where a number of the document register stands (Decree 30/2020 Art. 15–16)."""

    RESERVED = "reserved"
    """Taken for a document being filled and sealed right now."""
    ISSUED = "issued"
    """The sealed document carrying this number was stored and attached."""
    VOID = "void"
    """The seal failed after the number was taken: the number is cancelled, never reused."""


class DocumentRegisterCounter(Base):
    """The last number given per issuing agency and year (Decree 30/2020 Art. 15(1): numbering
    restarts at 01 on 1 January, one sequence per agency)."""

    __tablename__ = "document_register_counters"

    agency_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class DocumentRegisterEntry(Base):
    """One line of the outgoing-document register ("sổ đăng ký văn bản đi", Decree 30/2020
    Art. 16): every number given, with the document it went to or why it was voided."""

    __tablename__ = "document_register"
    __table_args__ = (UniqueConstraint("agency_code", "year", "number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agency_code: Mapped[str] = mapped_column(String(40))
    year: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    symbol: Mapped[str] = mapped_column(String(80))
    issued_on: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    dossier_code: Mapped[str | None] = mapped_column(String(64), index=True)
    source_sha256: Mapped[str] = mapped_column(String(64))
    output_file_id: Mapped[str | None] = mapped_column(String(64))
    output_sha256: Mapped[str | None] = mapped_column(String(64))
    void_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class IdempotencyRecord(Base):
    """Remembers an inbound request by its idempotency key and the answer it got."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: ``intake:<API key name>``: keys are their caller's own.
    scope: Mapped[str] = mapped_column(String(120), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"

    #: Monotonic sequence: FIFO order within (endpoint, ordering_key).
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: Stable id sent to the receiver for de-duplication (HTTP header / WS-Addressing MessageID).
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    endpoint: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(60))
    ordering_key: Mapped[str] = mapped_column(String(100))
    dossier_code: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(20), default=MessageState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()
    dead_at: Mapped[datetime | None] = mapped_column()
    #: Operator-facing note (discard reason, edit reason).
    note: Mapped[str | None] = mapped_column(Text)
    #: Set by an operator retry; the next attempt is recorded as manual, then it is cleared.
    manual_retry: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    #: The request that caused the message (``X-Request-ID``, :mod:`hub.telemetry.correlation`):
    #: on every delivery's log lines and sent to webhook endpoints (docs/deployment.md §6).
    correlation_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(
            "ix_outbox_active_key",
            "endpoint",
            "ordering_key",
            "seq",
            postgresql_where=text("state IN ('pending', 'in_flight', 'dead')"),
            sqlite_where=text("state IN ('pending', 'in_flight', 'dead')"),
        ),
        Index(
            "ix_outbox_pending_endpoint_seq",
            "endpoint",
            "seq",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index(
            "ix_outbox_lease",
            "lease_expires_at",
            postgresql_where=text("state = 'in_flight'"),
            sqlite_where=text("state = 'in_flight'"),
        ),
        Index("ix_outbox_state_endpoint", "state", "endpoint"),
    )


class OutboxMessageChild:
    """Columns of a row that belongs to one outbox message and goes when it goes (cascade):
    its own id and the message's ``seq``, as the first two columns (``sort_order``; a mixin's
    columns would otherwise come last)."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True, sort_order=-2)
    message_seq: Mapped[int] = mapped_column(
        BigId, ForeignKey("outbox_messages.seq", ondelete="CASCADE"), index=True, sort_order=-1
    )


class DeliveryAttempt(OutboxMessageChild, Base):
    __tablename__ = "delivery_attempts"

    attempt_no: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime] = mapped_column()
    #: delivered | retry | dead | lease_lost (worker died; recorded by the rescuer)
    outcome: Mapped[str] = mapped_column(String(20))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error_class: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    request_summary: Mapped[str | None] = mapped_column(Text)
    response_summary: Mapped[str | None] = mapped_column(Text)
    #: True for attempts triggered by an operator retry.
    manual: Mapped[bool] = mapped_column(default=False)


class DeliveryWorker(Base):
    """A delivery worker process, registered while it runs (docs/delivery.md §12.3).

    Like procrastinate's ``procrastinate_workers`` and River's leader/rescuer: a worker upserts
    its row every ``worker_heartbeat_seconds``; a row silent for ``dead_worker_seconds`` marks
    a dead (or frozen) worker whose leases the rescuer releases at once. A worker stopping
    gracefully sets ``stopped_at``. Lease tokens are ``<id>#<claim number>``.
    """

    __tablename__ = "workers"

    #: ``<name or host>:<pid>:<random>``, unique per run (never contains ``#``).
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column()
    last_heartbeat_at: Mapped[datetime] = mapped_column()
    #: Set by a graceful stop, or by the rescuer once it released a dead worker's leases.
    stopped_at: Mapped[datetime | None] = mapped_column()


class PayloadRevision(OutboxMessageChild, Base):
    """The payload a message had before an operator edited it (kept for the audit trail)."""

    __tablename__ = "payload_revisions"

    revision: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]]
    replaced_by: Mapped[str] = mapped_column(String(100))
    replaced_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")


class EndpointHealth(Base):
    """Circuit-breaker state per endpoint, published by workers for operators."""

    __tablename__ = "endpoint_health"

    endpoint: Mapped[str] = mapped_column(String(100), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default="closed")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None] = mapped_column()
    last_success_at: Mapped[datetime | None] = mapped_column()
    last_failure_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class EndpointPause(Base):
    """Delivery to an endpoint paused by an operator (console endpoint page, audited): workers
    claim none of its messages until it is resumed (the row deleted). Messages keep queueing."""

    __tablename__ = "endpoint_pauses"

    endpoint: Mapped[str] = mapped_column(String(100), primary_key=True)
    paused_by: Mapped[str] = mapped_column(String(100))
    paused_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")


class BulkJob(Base):
    """A background DLQ retry/discard over every message matching a filter."""

    __tablename__ = "bulk_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(20))
    filter: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(Text, default="")
    #: queued | running | done | failed | cancelled
    state: Mapped[str] = mapped_column(String(20), default="queued")
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)


class AuditEntry(Base):
    """Who did what, when, from where: every operator action and every security-relevant event.

    Append-only (database triggers refuse UPDATE and DELETE) and hash-chained: written only
    through :func:`hub.audit.log.record` (docs/security.md, "Audit log"). Intake's per-dossier
    events (``dossier.*``) are stored here unchained (``hash`` NULL): see :mod:`hub.audit.log`.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, Any]]
    #: From where: client address and user agent (API), ``cli:<user>@<host>`` (CLI).
    client: Mapped[str | None] = mapped_column(String(300))
    #: The state a change replaced, and the state it left (``None``: not a change of state).
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    #: Hash chain: ``hash = SHA-256(prev_hash || canonical JSON of the row)`` (hub.audit.chain).
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class AuditChainHead(Base):
    """The end of the audit hash chain: one row, locked by every append (chain order = commit
    order, no forks) and compared by ``hub audit verify`` (a cut-off tail shows)."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int | None] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    length: Mapped[int] = mapped_column(BigInteger, default=0)


class ApiRole(enum.StrEnum):
    SOURCE = "source"
    """The department's one-stop software pushing dossiers."""
    PORTAL = "portal"
    """A national/provincial portal pushing to the hub."""
    OFFICER = "officer"
    """A competent person: signs with their own personal key (Decree 30/2020 Art. 13(7))."""
    CLERK = "clerk"
    """The clerk (*văn thư*) who holds the agency seal key and applies it after the competent
    person's signature (Decree 30/2020 Art. 32(2), 33(2)); reads like an officer otherwise."""
    TECHNICIAN = "technician"
    ADMIN = "admin"


class ApiKey(Base):
    """API credential; only a SHA-256 of the (high-entropy, random) secret is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("key_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    key_prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
    #: Agency codes a ``source`` key may write dossiers of, space-separated; empty or ``NULL``:
    #: none (docs/architecture.md, "Intake rules").
    agency_codes: Mapped[str | None] = mapped_column(Text)
    #: Username of the console account the key belongs to (``users.username``), if any: a
    #: machine key tied to a person (docs/security.md §10).
    account: Mapped[str | None] = mapped_column(String(64), index=True)


class StoredFile(Base):
    """A file the hub serves by download URL (submitted papers, signed results)."""

    __tablename__ = "stored_files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dossier_code: Mapped[str | None] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigId)
    #: Path relative to the configured storage directory.
    path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PaperState(enum.StrEnum):
    """Where a result paper stands on its way to the applicant (docs/signing.md §14)."""

    DRAFT = "draft"
    """Uploaded unsigned: waits for the competent person's signature."""
    SIGNING = "signing"
    """An officer's signature is being made right now (claimed; a stale claim may be retaken)."""
    APPROVED = "approved"
    """Signed by the officer (``approved_file_id``): waits for the clerk's number, date and seal."""
    ISSUING = "issuing"
    """The clerk's issuance is running (claimed; a failure puts the paper back to approved)."""
    ISSUED = "issued"
    """Numbered, dated and sealed (``issued_file_id``), attached to the dossier."""


class ResultPaperRow(Base):
    """The workflow state of one result paper: its draft, the officer-signed version and the
    issued version (each a stored file), who it is assigned to, who signed and issued it.

    The desk's and the clerk's queues read this table through its indexes; each service that
    changes a paper's state does it in the transaction of the audit row recording the change
    (:mod:`hub.services.result_papers`)."""

    __tablename__ = "result_papers"
    __table_args__ = (
        Index("ix_result_papers_state_assigned", "state", "assigned_to", "created_at"),
        Index("ix_result_papers_state_signed", "state", "signed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    file_id: Mapped[str] = mapped_column(String(64), ForeignKey("stored_files.id"), unique=True)
    dossier_code: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(20))
    #: Account username of the officer the draft is assigned to; ``NULL``: any officer.
    assigned_to: Mapped[str | None] = mapped_column(String(64))
    #: Who holds a running claim (``signing``/``issuing``) and since when.
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column()
    approved_file_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("stored_files.id"), unique=True
    )
    signed_by: Mapped[str | None] = mapped_column(String(100))
    signed_at: Mapped[datetime | None] = mapped_column()
    issued_file_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("stored_files.id"))
    issued_by: Mapped[str | None] = mapped_column(String(100))
    issued_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class HubRun(Base):
    """A hub process while it runs (``hub serve``, ``hub worker``): started, last seen alive
    every ``outages.heartbeat_seconds``, stopped. A gap between the last sign of life of every
    run and the next start is an outage of the hub itself (:mod:`hub.services.outages`)."""

    __tablename__ = "hub_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: ``api``, ``worker`` or ``api+worker``.
    kind: Mapped[str] = mapped_column(String(20))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(index=True)
    last_seen_at: Mapped[datetime] = mapped_column(index=True)
    stopped_at: Mapped[datetime | None] = mapped_column()


class OutageRow(Base):
    """A period the hub or the department's software was down (Decision 692/QĐ-SNN Art. 13.2):
    recorded by the hub (database unreachable, hub not running) or added by an operator
    (``hub outage add``). Shown by ``GET /api/v1/reports/outages`` and ``hub report outages``."""

    __tablename__ = "outages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: ``database`` (unreachable), ``hub`` (not running) or ``department`` (its software).
    kind: Mapped[str] = mapped_column(String(20), index=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    #: ``hub`` (recorded by a hub process) or the operator who added it.
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class LookupCount(Base):
    """Citizens' lookups answered per Vietnam-time day, channel and outcome, for the usage
    report (Decision 692/QĐ-SNN Art. 18; docs/reports.md §8): one upsert per lookup by
    :meth:`hub.lookup.service.LookupService.record`, the same statement whatever the outcome."""

    __tablename__ = "lookup_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    #: ``api``, ``web``, ``qr`` (the page opened from a dossier's QR code) or ``sms``.
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    #: ``found``, ``not_found``, ``limited`` (refused by a limit), ``invalid`` (an SMS not in
    #: the ``<KEYWORD> <code>`` form), ``opened`` (QR).
    outcome: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
