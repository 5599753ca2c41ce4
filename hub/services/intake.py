"""Intake: the department's changes to dossiers, stored together with the messages they cause.

Every command runs in one transaction that (1) locks the dossier rows it names, (2) applies the
change after checking the one-stop procedure's rules (:mod:`schemas.status`), and (3) writes
the outbound messages chosen by the routing rules — so a change and its handoffs commit
together or not at all (transactional outbox, docs/delivery.md). A batch
(:meth:`IntakeService.apply_batch`) is the same for many changes in one transaction: all of
them, or none and an error naming the failing one.

Idempotency: a request with an idempotency key its caller already used returns the first
answer and creates nothing; the same key with a different body is a conflict. Keys are the
caller's own (scope ``intake:<key name>``): another caller's request under the same key is a
new request. The key is claimed first, inside the command's transaction, so a concurrent
repeat waits for the first to finish and then gets its answer (PostgreSQL blocks the second
insert of one primary key until the first transaction ends). A dossier upsert whose source
``version`` is not newer than the stored one, or whose content is unchanged, is a no-op too.

Procedure rules (docs/architecture.md, "Intake rules"): a new dossier starts where the
procedure starts (status 1 or 2, docs/portal.md §2.2); the received and due dates move only
through the recorded re-dating path (:meth:`IntakeService.redate`, or a status change with
``new_due_at``), never by an upsert; steps and re-dating records are append-only; a source key
writes only dossiers of its agencies (:class:`AgencyScope`).

The writes are Core statements on the session's connection, not ORM units of work: the
dossiers a command names are read (and on PostgreSQL row-locked) in one ``SELECT`` (a single
upsert of a new code is inserted without reading first), and the messages and audit rows it
causes are inserted once, at the end — the per-change cost that bounds how many changes one
API process takes in (``benchmarks/bench_e2e.py``).
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Annotated, Any, Literal, Required, TypedDict, Unpack

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Executable, bindparam, delete, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.config import Settings
from hub.db.base import utcnow
from hub.db.json_rows import json_rows
from hub.db.models import AuditEntry, DossierRow, DossierSequence, IdempotencyRecord
from hub.db.session import Database
from hub.dlq.models import DlqFilter, MessageSummary
from hub.dlq.service import list_messages
from hub.lookup.owner_hash import OwnerIdHasher
from hub.outbox.enqueue import new_messages, write_messages
from hub.outbox.routing import RouteQuery, Router
from hub.reports.ontime import DossierFacts, facts_of
from hub.reports.projection import fact_row, upsert_rows
from hub.services import late_entry
from schemas.changes import DossierUpsert, DueDateChange, ResultAttach, StatusChange, StepAdd
from schemas.codes import format_dossier_code, validate_agency_code, validate_dossier_code
from schemas.dossier import (
    MAX_RESULTS,
    MAX_STEPS,
    MAX_SUPPLEMENTS,
    Dossier,
    ProcessingStep,
    SupplementRequest,
)
from schemas.errors import (
    ConflictError,
    HubError,
    InvalidInputError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
)
from schemas.messages import MessageKind
from schemas.status import DossierStatus, check_transition

log = logging.getLogger("hub.intake")

#: Most changes one batch request may carry (one transaction holds their row locks).
MAX_BATCH_CHANGES = 500

#: Where the one-stop procedure starts (docs/portal.md §2.2): submitted online (1) or
#: received at the counter (2); every later status is reached through a status change.
OPENING_STATUSES = frozenset({DossierStatus.SUBMITTED, DossierStatus.RECEIVED})

#: The agency codes a caller may write dossiers of; ``None``: any (admin keys, the portal's
#: pushes, the hub's own services). An empty set writes nothing (an unscoped source key).
AgencyScope = frozenset[str] | None


@dataclass(frozen=True, slots=True)
class SingleChange:
    """A change of a single-change route, handed to :meth:`IntakeService.apply_group`: a
    dossier to create or replace (``POST /dossiers``, ``code`` None) or a status change of
    dossier ``code`` (``POST /dossiers/{code}/status``)."""

    command: DossierUpsert | StatusChange
    code: str | None = None
    #: The request's own context: its correlation id goes on the messages the change causes
    #: (docs/deployment.md §6), whichever request's thread writes the group.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


def _code_of(change: SingleChange) -> str:
    """The dossier ``change`` is about (checked: a malformed code is refused)."""
    command = change.command
    return command.dossier.code if isinstance(command, DossierUpsert) else _code(change.code or "")


class IntakeCall(TypedDict, total=False):
    """What every command on an existing dossier takes besides its body: who writes, the
    ``Idempotency-Key`` that makes a retry return the first answer, and the agencies the
    caller may write (:data:`AgencyScope`)."""

    actor: Required[str]
    idempotency_key: str | None
    scope: AgencyScope


class ResultCall(IntakeCall, total=False):
    """:class:`IntakeCall` of :meth:`IntakeService.attach_result`, with what a repeat must match
    and the rows written with the attachment."""

    idempotency_body: dict[str, Any] | None
    also: Callable[[Session], None] | None


#: The re-dating route the errors point to (docs/architecture.md, "Intake rules").
REDATE_ROUTE = "POST /api/v1/dossiers/{code}/due-date"

#: A stored dossier's new revision (executemany: one parameter set per changed dossier).
_UPDATE_DOSSIER = (
    update(DossierRow)
    .where(DossierRow.id == bindparam("b_id"))
    .values(
        {
            name: bindparam(f"b_{name}")
            for name in (
                "revision",
                "status",
                "procedure_code",
                "source_version",
                "owner_id_hash",
                "document",
                "updated_at",
            )
        }
    )
)


# The statements of the intake path are built once (a statement built per request is rebuilt and
# re-keyed for SQLAlchemy's compiled cache each time: a third of the service's CPU per change).
_D = DossierRow
#: The dossiers a transaction names (``codes``: an expanding list), in code order.
_HOLD = (
    select(_D.id, _D.code, _D.revision, _D.source_version, _D.origin, _D.owner_id_hash, _D.document)
    .where(_D.code.in_(bindparam("codes", expanding=True)))
    .order_by(_D.code)
)
#: The same, row-locked until the transaction ends (PostgreSQL; SQLite has one writer).
_HOLD_LOCKED = _HOLD.with_for_update()
#: Intake's audit rows, one multi-row INSERT (RETURNING makes it one, not a driver executemany).
_INSERT_AUDIT = insert(AuditEntry).returning(AuditEntry.id)
_I = IdempotencyRecord
_SELECT_CLAIM = select(_I.request_hash, _I.response).where(
    _I.key == bindparam("b_key"), _I.scope == bindparam("b_scope")
)
_REMEMBER = (
    update(_I)
    .where(_I.key == bindparam("b_key"), _I.scope == bindparam("b_scope"))
    .values(response=bindparam("b_response"))
)
_RELEASE = delete(_I).where(_I.key == bindparam("b_key"), _I.scope == bindparam("b_scope"))


def _dialect_insert(dialect: str) -> Callable[[Any], Any]:
    """The dialect's ``insert`` (the one with ``ON CONFLICT``)."""
    return pg_insert if dialect == "postgresql" else sqlite_insert


#: New dossiers on SQLite: ``INSERT … ON CONFLICT (code) DO NOTHING RETURNING code, id``.
_INSERT_DOSSIERS = (
    sqlite_insert(_D).on_conflict_do_nothing(index_elements=[_D.code]).returning(_D.code, _D.id)
)
#: The same on PostgreSQL, the rows as one JSON parameter (:mod:`hub.db.json_rows`: a batch
#: creates up to 500 dossiers of 11 parameters each).
_INSERT_DOSSIERS_JSON_ROWS = text(
    """
    INSERT INTO dossiers (code, agency_code, procedure_code, status, revision, source_version,
                          owner_id_hash, document, origin, created_at, updated_at)
    SELECT code, agency_code, procedure_code, status, revision, source_version,
           owner_id_hash, document, origin, created_at, updated_at
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS dossier(
        code text, agency_code text, procedure_code text, status integer, revision integer,
        source_version integer, owner_id_hash text, document jsonb, origin text,
        created_at timestamptz, updated_at timestamptz
    )
    ON CONFLICT (code) DO NOTHING
    RETURNING code, id
    """
)
_DOSSIER_TIMES = ("created_at", "updated_at")


@functools.cache
def _claim_statement(dialect: str) -> Executable:
    """Claim an idempotency key: ``INSERT … ON CONFLICT DO NOTHING RETURNING key``."""
    statement: Executable = (
        _dialect_insert(dialect)(_I)
        .on_conflict_do_nothing(index_elements=[_I.key, _I.scope])
        .returning(_I.key)
    )
    return statement


class IntakeResult(BaseModel):
    dossier_code: str
    revision: int
    status: DossierStatus
    created: bool = False
    duplicate: bool = False
    """True when nothing new was stored (repeated key, old version, unchanged content)."""
    message_ids: list[str] = Field(default_factory=list)


# --- batch commands -------------------------------------------------------------------------
# The single routes' commands with an ``op`` naming which one, and the dossier code where the
# single route takes it from the path.


class UpsertItem(DossierUpsert):
    """Create or replace a dossier, as ``POST /dossiers``."""

    op: Literal["upsert"]


class StatusItem(StatusChange):
    """Change a dossier's status, as ``POST /dossiers/{code}/status``."""

    op: Literal["status"]
    code: Annotated[str, Field(min_length=1, max_length=64)]


class StepItem(StepAdd):
    """Record a processing step, as ``POST /dossiers/{code}/steps``."""

    op: Literal["step"]
    code: Annotated[str, Field(min_length=1, max_length=64)]


class ResultItem(ResultAttach):
    """Attach a result paper by URL, as ``POST /dossiers/{code}/results``."""

    op: Literal["result"]
    code: Annotated[str, Field(min_length=1, max_length=64)]


class RedateItem(DueDateChange):
    """Move the due date with its record, as ``POST /dossiers/{code}/due-date``."""

    op: Literal["redate"]
    code: Annotated[str, Field(min_length=1, max_length=64)]


IntakeChange = Annotated[
    UpsertItem | StatusItem | StepItem | ResultItem | RedateItem, Field(discriminator="op")
]


class IntakeBatch(BaseModel):
    """Changes applied in order in one transaction: all of them, or none."""

    changes: Annotated[list[IntakeChange], Field(min_length=1, max_length=MAX_BATCH_CHANGES)]


class BatchResult(BaseModel):
    """One result per change, in the order sent."""

    results: list[IntakeResult]
    duplicate: bool = False
    """True when the whole batch was a replay of an idempotency key already seen."""


def sync_payload(document: dict[str, Any], revision: int) -> dict[str, Any]:
    """:class:`~schemas.messages.DossierSyncPayload` as JSON, around the dossier's JSON
    ``document`` dumped once for all the messages and the row of a change."""
    return {"dossier": document, "revision": revision}


def progress_payload(
    code: str, steps: Sequence[ProcessingStep], document: dict[str, Any], revision: int
) -> dict[str, Any]:
    """:class:`~schemas.messages.DossierProgressPayload` as JSON (see :func:`sync_payload`)."""
    return {
        "dossier_code": code,
        "steps": [step.model_dump(mode="json") for step in steps],
        "dossier": document,
        "revision": revision,
    }


def _request_hash(payload: Any) -> str:
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()


def _at_item(error: HubError, index: int) -> HubError:
    """``error`` as a batch reports it: naming the change (0-based ``index``) that failed."""
    error.message = f"change {index}: {error.message}"
    error.message_vi = f"thay đổi thứ {index}: {error.message_vi}"
    error.args = (error.message,)
    error.details = {**error.details, "item": index}
    return error


def _not_found(code: str) -> NotFoundError:
    return NotFoundError(f"dossier {code} not found", message_vi=f"không tìm thấy hồ sơ {code}")


def check_agency(scope: AgencyScope, agency_code: str) -> None:
    """Refuse (403) a write for an agency outside the caller's scope."""
    if scope is None or agency_code in scope:
        return
    if not scope:
        raise PermissionDeniedError(
            "this API key is not scoped to any agency; an admin sets its agency codes "
            "(hub keys create --agency …) before it may write dossiers",
            message_vi="khóa API chưa được gán mã cơ quan nên chưa được ghi hồ sơ",
        )
    raise PermissionDeniedError(
        f"this API key may not write dossiers of agency {agency_code}",
        message_vi=f"khóa API không được ghi hồ sơ của cơ quan {agency_code}",
        details={"agency_code": agency_code},
    )


def _check_opening(dossier: Dossier) -> None:
    """A new dossier starts where the procedure starts (docs/portal.md §2.2)."""
    if dossier.status not in OPENING_STATUSES:
        raise InvalidTransitionError(
            f"a new dossier starts in status 1 (submitted online) or 2 (received), not "
            f"{dossier.status.value}; create it, then move it with POST /api/v1/dossiers/{{code}}/status",
            message_vi=(
                f"hồ sơ mới phải bắt đầu ở trạng thái 1 hoặc 2, không phải {dossier.status.value}; "
                "hãy tạo hồ sơ rồi chuyển trạng thái theo quy trình"
            ),
            details={"status": dossier.status.value},
        )
    late_entry.refuse_sent_marks(dossier.steps)
    ended = [name for name in ("refused_at", "finished_at", "returned_at") if getattr(dossier, name)]
    if ended:
        raise InvalidTransitionError(
            f"a new dossier cannot carry {', '.join(ended)}: they are set by status changes",
            message_vi="hồ sơ mới không được có ngày từ chối, kết thúc hay trả kết quả",
            details={"fields": ended},
        )


def _may_open(dossier: Dossier, scope: AgencyScope) -> bool:
    """Whether ``dossier`` may be created as it is (:func:`check_agency`, :func:`_check_opening`)."""
    try:
        check_agency(scope, dossier.agency_code)
        _check_opening(dossier)
    except HubError:
        return False
    return True


def _check_room(count: int, limit: int, what: str) -> None:
    """A dossier holds at most ``limit`` ``what`` (docs/portal.md §3.10): refuse ``count``."""
    if count > limit:
        raise InvalidInputError(
            f"a dossier holds at most {limit} {what}",
            message_vi=f"hồ sơ đã đạt số lượng tối đa ({limit})",
            details={"limit": limit},
        )


def _redating_error(code: str, field_name: str) -> InvalidTransitionError:
    route = REDATE_ROUTE.format(code=code)
    return InvalidTransitionError(
        f"an upsert cannot change {field_name}: a due date moves only through {route} "
        "(recorded as NgayHenTraTruoc/NgayHenTraMoi) and the receipt date never moves",
        message_vi=(f"không được sửa {field_name} khi cập nhật hồ sơ; điều chỉnh ngày hẹn trả qua {route}"),
        details={"field": field_name, "use": route},
    )


@dataclass(slots=True)
class _Held:
    """A dossier inside the running transaction: as stored (and locked), or created by it."""

    dossier: Dossier
    revision: int
    source_version: int | None
    origin: str
    owner_id_hash: str | None
    row_id: int | None
    """``None``: created in this transaction, inserted at the end."""
    changed: bool = False
    facts: DossierFacts | None = None
    """What its report row holds (the facts of the dossier as stored); ``None``: created here."""
    document: dict[str, Any] | None = None
    """The dossier as JSON, dumped once by the last :meth:`_Unit.store_and_route` for its
    messages and its row (every change goes through it after changing the dossier)."""
    hashed_id_number: str | None = None
    """The ID number :attr:`owner_id_hash` was computed from in this transaction."""


@dataclass(frozen=True, slots=True)
class _Change:
    """What applying a command did: messages to route, new steps, and the audit record."""

    kinds: list[MessageKind]
    steps: list[ProcessingStep]
    action: str
    details: dict[str, Any]
    #: Audit details of a late entry (:mod:`hub.services.late_entry`).
    late: dict[str, Any] | None = None


@dataclass
class _Unit:
    """One intake transaction: the dossiers it holds, and the rows it writes when it ends."""

    session: Session
    router: Router
    is_postgres: bool
    #: The keyed digest stored for the owner's ID number (docs/security.md §6).
    owner_ids: OwnerIdHasher
    #: A batch names the failing change in its errors (:func:`_at_item`).
    batch: bool = False
    #: Agencies the caller may write (:data:`AgencyScope`).
    scope: AgencyScope = None
    held: dict[str, _Held | None] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    #: Code of each dossier created here → index of the change that created it.
    created_by: dict[str, int] = field(default_factory=dict)
    #: The transaction's connection: statements run as Core, no ORM unit of work.
    connection: Connection = field(init=False)

    def __post_init__(self) -> None:
        self.connection = self.session.connection()

    def hold(self, codes: Iterable[str]) -> None:
        """Read (on PostgreSQL: row-lock, in code order so batches cannot deadlock) the dossiers."""
        wanted = sorted({code for code in codes if code not in self.held})
        if not wanted:
            return
        for code in wanted:
            self.held[code] = None
        statement = _HOLD_LOCKED if self.is_postgres else _HOLD
        for row in self.connection.execute(statement, {"codes": wanted}):
            self.held[row.code] = held = _Held(
                dossier=Dossier.model_validate(row.document),
                revision=row.revision,
                source_version=row.source_version,
                origin=row.origin,
                owner_id_hash=row.owner_id_hash,
                row_id=row.id,
            )
            held.facts = facts_of(held.dossier)

    def get(self, code: str) -> _Held | None:
        self.hold([code])
        return self.held[code]

    def require(self, code: str) -> _Held:
        held = self.get(code)
        if held is None:
            raise _not_found(code)
        check_agency(self.scope, held.dossier.agency_code)
        return held

    def create(self, dossier: Dossier, version: int | None, origin: str, index: int) -> _Held:
        check_agency(self.scope, dossier.agency_code)
        _check_opening(dossier)
        held = _Held(
            dossier=dossier,
            revision=0,
            source_version=version,
            origin=origin,
            owner_id_hash=None,
            row_id=None,
        )
        self._hash_owner(held)
        self.held[dossier.code] = held
        self.created_by[dossier.code] = index
        return held

    def store_and_route(
        self,
        held: _Held,
        kinds: Sequence[MessageKind],
        new_steps: Sequence[ProcessingStep],
        *,
        origin: str | None = None,
    ) -> list[str]:
        """A new revision of ``held`` and the messages it causes (written by :meth:`finish`)."""
        dossier = held.dossier
        held.revision += 1
        held.changed = True
        self._hash_owner(held)
        held.document = document = dossier.model_dump(mode="json")
        origin = origin or held.origin
        ids: list[str] = []
        for kind in kinds:
            ids += self._route(kind, origin, dossier, sync_payload(document, held.revision))
        if new_steps:
            payload = progress_payload(dossier.code, new_steps, document, held.revision)
            ids += self._route(MessageKind.DOSSIER_PROGRESS, origin, dossier, payload)
        return ids

    def _hash_owner(self, held: _Held) -> None:
        """The keyed digest of the owner's ID number (kept when the dossier has none), computed
        once per number and transaction."""
        number = held.dossier.owner.id_number
        if number and number != held.hashed_id_number:
            held.owner_id_hash = self.owner_ids.digest(number)
            held.hashed_id_number = number

    def _route(self, kind: MessageKind, origin: str, dossier: Dossier, payload: dict[str, Any]) -> list[str]:
        endpoints = self.router.endpoints_for(
            RouteQuery(kind=kind.value, origin=origin, status=dossier.status.value)
        )
        rows = new_messages(
            endpoints=endpoints,
            kind=kind.value,
            ordering_key=dossier.code,
            payload=payload,
            dossier_code=dossier.code,
        )
        self.messages += rows
        return [row["message_id"] for row in rows]

    def record(self, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
        self.audit.append(
            {"at": utcnow(), "actor": actor, "action": action, "target": target, "details": details}
        )

    def create_at_once(self, dossier: Dossier, version: int | None, origin: str) -> list[str] | None:
        """A single upsert of a code not held yet: insert it as new right away, without reading
        first (one statement less for the common case); ``None``, having changed nothing, when
        the dossier exists — then it is read, locked and replaced as usual — or may not be
        created as it is (that path then words the refusal)."""
        if not _may_open(dossier, self.scope):
            return None
        held = self.create(dossier, version, origin, 0)
        ids = self.store_and_route(held, [MessageKind.DOSSIER_SYNC], [], origin=origin)
        inserted = self._insert_dossiers([(dossier.code, held)], utcnow())
        if dossier.code in inserted:
            held.row_id, held.changed = inserted[dossier.code], False
            return ids
        del self.held[dossier.code], self.created_by[dossier.code]
        self.messages.clear()
        return None

    def finish(self) -> None:
        """Write what the transaction changed: dossiers, then messages, then audit rows, then
        the report rows of the dossiers held (docs/reports.md §3)."""
        now = utcnow()
        created = [(code, held) for code, held in self.held.items() if held and held.row_id is None]
        if created:
            inserted = self._insert_dossiers(created, now)
            for code, _held in created:
                if code not in inserted:
                    error = ConflictError(
                        f"dossier {code} was created concurrently; repeat the request",
                        message_vi=f"hồ sơ {code} vừa được tạo đồng thời; hãy gửi lại",
                    )
                    raise _at_item(error, self.created_by[code]) if self.batch else error
        updates = [
            {
                "b_id": held.row_id,
                "b_revision": held.revision,
                "b_status": held.dossier.status.value,
                "b_procedure_code": held.dossier.procedure_code,
                "b_source_version": held.source_version,
                "b_owner_id_hash": held.owner_id_hash,
                "b_document": held.document or held.dossier.model_dump(mode="json"),
                "b_updated_at": now,
            }
            for held in self.held.values()
            if held is not None and held.row_id is not None and held.changed
        ]
        if updates:
            self.connection.execute(_UPDATE_DOSSIER, updates)
        if self.messages:
            write_messages(self.session, self.messages)
        if self.audit:
            # RETURNING makes it one multi-row INSERT, not a driver executemany (see write_messages)
            self.connection.execute(_INSERT_AUDIT, self.audit)
        self._project()

    def _project(self) -> None:
        """The report rows of the dossiers held whose facts changed (docs/reports.md §3): what
        :func:`hub.reports.projection.project_dossiers` writes, through a statement built once.

        A row whose facts are those of the stored dossier is left as it is: it was written with
        them (in the transaction that stored the dossier, or by migration 0009's backfill and
        ``rebuild`` after a rule change), so most status changes write no report row."""
        rows = []
        for held in self.held.values():
            if held is not None:
                facts = facts_of(held.dossier)
                if facts != held.facts:
                    rows.append(fact_row(facts))
        upsert_rows(self.connection, rows)

    def log_stored(self) -> None:
        """One line per committed transaction that changed dossiers (with the request's
        correlation id, which its outbox messages carry too: docs/deployment.md §6)."""
        codes = [code for code, held in self.held.items() if held is not None]
        if codes and log.isEnabledFor(logging.INFO):
            log.info(
                "stored changes of %d dossier(s) %s: %d outbox message(s)",
                len(codes),
                ", ".join(codes[:5]) + (" …" if len(codes) > 5 else ""),
                len(self.messages),
                extra={"outbox_messages": len(self.messages)},
            )

    def _insert_dossiers(self, created: list[tuple[str, _Held]], now: Any) -> dict[str, int]:
        """One ``INSERT … ON CONFLICT DO NOTHING``; the ids of the rows inserted, by code (a code
        another transaction created meanwhile is missing)."""
        values = [
            {
                "code": code,
                "agency_code": held.dossier.agency_code,
                "procedure_code": held.dossier.procedure_code,
                "status": held.dossier.status.value,
                "revision": held.revision,
                "source_version": held.source_version,
                "owner_id_hash": held.owner_id_hash,
                "document": held.document or held.dossier.model_dump(mode="json"),
                "origin": held.origin,
                "created_at": now,
                "updated_at": now,
            }
            for code, held in created
        ]
        if self.is_postgres:
            rows = self.connection.execute(
                _INSERT_DOSSIERS_JSON_ROWS, {"rows": json_rows(values, _DOSSIER_TIMES)}
            )
        else:
            rows = self.connection.execute(_INSERT_DOSSIERS, values)
        return {row.code: row.id for row in rows}


class IntakeService:
    """Business logic behind the intake API; route handlers only translate HTTP."""

    IDEMPOTENCY_SCOPE = "intake"

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._router = Router(
            settings.routing, [name for name, ep in settings.endpoints.items() if ep.enabled]
        )
        self._owner_ids = OwnerIdHasher.from_settings(settings)
        self._late = late_entry.LateEntryPolicy.from_days(settings.intake.late_entry_window_days)

    # --- commands ---------------------------------------------------------------------------

    def upsert_dossier(
        self,
        command: DossierUpsert,
        *,
        actor: str,
        idempotency_key: str | None = None,
        origin: str = "source",
        scope: AgencyScope = None,
    ) -> IntakeResult:
        """Create or replace a dossier (``DongBoHoSoMC`` semantics)."""
        return self._single(
            lambda: command.model_dump(mode="json"),
            lambda unit: (self._upsert(unit, command, actor, origin, 0), True),
            idempotency_key,
            actor,
            scope,
        )

    def change_status(self, code: str, change: StatusChange, **call: Unpack[IntakeCall]) -> IntakeResult:
        """Move a dossier along the procedure, recording the step (and re-dating if late)."""
        return self._modify(code, change, self._status, **call)

    def redate(self, code: str, change: DueDateChange, **call: Unpack[IntakeCall]) -> IntakeResult:
        """Move the due date (Mẫu 04 apology, extension), recorded as a ``DanhSachHoSoBoSung``
        entry with ``NgayHenTraTruoc``/``NgayHenTraMoi`` and a step (docs/portal.md §2.2, §3.3)."""
        return self._modify(code, change, self._redate, **call)

    def add_step(self, code: str, command: StepAdd, **call: Unpack[IntakeCall]) -> IntakeResult:
        """Record a processing step (``CapNhatTienDoHoSoMC``); a step already held is a no-op."""
        return self._modify(code, command, self._step, **call)

    def attach_result(self, code: str, command: ResultAttach, **call: Unpack[ResultCall]) -> IntakeResult:
        """Attach (or replace, by id) a result document (``DanhSachGiayToKetQua``).

        ``idempotency_body``: what a repeat must match instead of the command (an upload
        names its content, not the id of the file each attempt stores). ``also``: more rows to
        write in the same transaction when the attachment changed the dossier (a result
        paper's draft row, :mod:`hub.services.result_papers`)."""
        return self._modify(code, command, self._result, **call)

    def apply_group(
        self, changes: Sequence[SingleChange], *, actor: str, scope: AgencyScope = None
    ) -> list[IntakeResult | Exception]:
        """Single changes of one caller that arrived together, written in one transaction
        (group commit, docs/architecture.md "Intake throughput"), each answered as if it had
        been applied alone, in its own request's context.

        If one of them is refused, or the shared transaction fails, nothing of it is kept: each
        change is then applied alone, in the order given, and answered with its own result or
        error. One change goes alone at once (the single path, unchanged)."""
        if len(changes) > 1:
            try:
                return list(self._apply_together(changes, actor, scope))
            except Exception as error:  # noqa: BLE001 - each change is applied alone below
                log.debug("a group of %d changes goes one by one: %s", len(changes), error)
        outcomes: list[IntakeResult | Exception] = []
        for change in changes:
            try:
                outcomes.append(change.context.run(self.apply_alone, change, actor=actor, scope=scope))
            except Exception as error:  # noqa: BLE001 - the change's own answer
                outcomes.append(error)
        return outcomes

    def _apply_together(
        self, changes: Sequence[SingleChange], actor: str, scope: AgencyScope
    ) -> list[IntakeResult]:
        with self._db.transaction() as session:
            unit = _Unit(
                session, self._router, self._db.is_postgres, self._owner_ids, batch=True, scope=scope
            )
            codes = [_code_of(change) for change in changes]
            unit.hold(codes)
            results: dict[int, IntakeResult] = {}
            for index in late_entry.application_order([change.command for change in changes], codes):
                change = changes[index]
                results[index] = change.context.run(
                    self._apply_in_group, unit, change, codes[index], actor, index
                )
            unit.finish()
        unit.log_stored()
        return [results[index] for index in range(len(changes))]

    def _apply_in_group(
        self, unit: _Unit, change: SingleChange, valid_code: str, actor: str, index: int
    ) -> IntakeResult:
        command = change.command
        if isinstance(command, DossierUpsert):
            return self._upsert(unit, command, actor, "source", index)
        return self._changed(unit, change.code or "", valid_code, command, actor, self._status)

    def apply_alone(self, change: SingleChange, **call: Unpack[IntakeCall]) -> IntakeResult:
        """``change`` in a transaction of its own (:meth:`upsert_dossier`,
        :meth:`change_status`): the way of a change that carries an ``Idempotency-Key``."""
        command = change.command
        if isinstance(command, DossierUpsert):
            return self.upsert_dossier(command, **call)
        return self.change_status(change.code or "", command, **call)

    def apply_batch(
        self,
        batch: IntakeBatch,
        *,
        actor: str,
        idempotency_key: str | None = None,
        scope: AgencyScope = None,
    ) -> BatchResult:
        """Apply ``batch.changes`` in order in one transaction; the first failing change rolls
        back all of them and its error names it (``details.item``, 0-based)."""
        with self._db.transaction() as session:
            connection = session.connection()
            body = batch.model_dump(mode="json") if idempotency_key else None
            replay = self._claim(connection, idempotency_key, actor, body)
            if replay is not None:
                replayed = BatchResult.model_validate(replay)
                for result in replayed.results:
                    result.duplicate, result.created = True, False
                replayed.duplicate = True
                return replayed
            unit = _Unit(
                session, self._router, self._db.is_postgres, self._owner_ids, batch=True, scope=scope
            )
            codes: list[str] = []
            for index, item in enumerate(batch.changes):
                try:
                    codes.append(item.dossier.code if isinstance(item, UpsertItem) else _code(item.code))
                except HubError as error:
                    raise _at_item(error, index) from None
            unit.hold(codes)
            results: dict[int, IntakeResult] = {}
            for index in late_entry.application_order(batch.changes, codes):
                try:
                    results[index] = self._apply_item(unit, batch.changes[index], codes[index], actor, index)
                except HubError as error:
                    raise _at_item(error, index) from None
            unit.finish()
            answer = BatchResult(results=[results[index] for index in range(len(batch.changes))])
            self._remember(connection, idempotency_key, actor, answer.model_dump(mode="json"))
        unit.log_stored()
        return answer

    def next_dossier_code(
        self,
        agency_code: str,
        day: date,
        *,
        platform_owner: str | None = None,
        scope: AgencyScope = None,
    ) -> str:
        """Allocate the next code for ``agency_code`` on ``day`` (safe under concurrency).

        One atomic ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` per allocation: PostgreSQL
        row-locks the counter, SQLite serialises writers, so no two callers get one number.
        """
        agency = validate_agency_code(agency_code)
        check_agency(scope, agency)
        seq = DossierSequence
        with self._db.transaction() as session:
            insert = pg_insert if self._db.is_postgres else sqlite_insert
            statement = (
                insert(seq)
                .values(agency_code=agency, day=day, last_value=1)
                .on_conflict_do_update(
                    index_elements=[seq.agency_code, seq.day],
                    set_={"last_value": seq.last_value + 1},
                )
                .returning(seq.last_value)
            )
            value = session.execute(statement).scalar_one()
        return format_dossier_code(agency, day, value, platform_owner=platform_owner)

    # --- queries ------------------------------------------------------------------------------

    def get_dossier(self, code: str) -> Dossier:
        code = validate_dossier_code(code)
        with self._db.sessions() as session:
            row = session.scalar(select(DossierRow).where(DossierRow.code == code))
            if row is None:
                raise _not_found(code)
            return Dossier.model_validate(row.document)

    def delivery_state(self, code: str) -> list[MessageSummary]:
        """Every outbound message of a dossier, oldest first, with those held behind a dead
        letter shown as ``blocked`` (the same view technicians get from the DLQ)."""
        code = validate_dossier_code(code)
        return list_messages(self._db, DlqFilter(dossier_code=code, state=None), limit=1000)

    # --- one change -----------------------------------------------------------------------------

    def _single(
        self,
        body: Callable[[], dict[str, Any]],
        apply: Callable[[_Unit], tuple[IntakeResult, bool]],
        idempotency_key: str | None,
        actor: str,
        scope: AgencyScope,
    ) -> IntakeResult:
        """One change in one transaction: claim the key (or replay), hold, apply, write, remember."""
        with self._db.transaction() as session:
            connection = session.connection()
            request = body() if idempotency_key else None
            replay = self._claim(connection, idempotency_key, actor, request)
            if replay is not None:
                result = IntakeResult.model_validate(replay)
                result.duplicate, result.created = True, False
                return result
            unit = _Unit(session, self._router, self._db.is_postgres, self._owner_ids, scope=scope)
            result, remember = apply(unit)
            unit.finish()
            if remember:
                self._remember(connection, idempotency_key, actor, result.model_dump(mode="json"))
            else:
                self._release(connection, idempotency_key, actor)
        unit.log_stored()
        return result

    def _modify(
        self,
        code: str,
        command: BaseModel,
        apply: Callable[[Dossier, Any], _Change | None],
        *,
        actor: str,
        idempotency_key: str | None = None,
        scope: AgencyScope = None,
        idempotency_body: dict[str, Any] | None = None,
        also: Callable[[Session], None] | None = None,
    ) -> IntakeResult:
        """One change to an existing dossier (a no-op change is answered and not remembered)."""

        apply = self._entered(apply, command, actor)

        def run(unit: _Unit) -> tuple[IntakeResult, bool]:
            result = self._change(unit, code, _code(code), command, actor, apply)
            if also is not None and not result.duplicate:
                also(unit.session)
            return result, not result.duplicate

        def body() -> dict[str, Any]:
            return idempotency_body or {"code": code, **command.model_dump(mode="json")}

        return self._single(body, run, idempotency_key, actor, scope)

    def _apply_item(
        self, unit: _Unit, item: IntakeChange, valid_code: str, actor: str, index: int
    ) -> IntakeResult:
        if isinstance(item, UpsertItem):
            return self._upsert(unit, item, actor, "source", index)
        apply: Callable[[Dossier, Any], _Change | None]
        if isinstance(item, StatusItem):
            apply = self._status
        elif isinstance(item, StepItem):
            apply = self._step
        elif isinstance(item, RedateItem):
            apply = self._redate
        else:
            apply = self._result
        return self._changed(unit, item.code, valid_code, item, actor, apply)

    def _changed(
        self,
        unit: _Unit,
        code: str,
        valid_code: str,
        command: Any,
        actor: str,
        apply: Callable[[Dossier, Any], _Change | None],
    ) -> IntakeResult:
        """``command`` applied to the held dossier ``valid_code`` (``code`` as sent, checked by
        the caller) by ``apply``, checked and marked first when it is a late entry."""
        return self._change(unit, code, valid_code, command, actor, self._entered(apply, command, actor))

    def _entered(
        self, apply: Callable[[Dossier, Any], _Change | None], command: object, actor: str
    ) -> Callable[[Dossier, Any], _Change | None]:
        """``apply`` as is, or for a late entry (a ``late_entry`` object on the command) checked
        and marked by :mod:`hub.services.late_entry`."""
        entry = getattr(command, "late_entry", None)
        if entry is None:
            return apply
        policy = self._late

        def late(dossier: Dossier, change: late_entry.LateCommand) -> _Change | None:
            admitted = policy.admit(dossier, change, entry, actor)
            if admitted is None:
                return None
            mark, details = admitted
            applied = apply(dossier, change)
            if applied is None:
                return None
            late_entry.mark_steps(applied.steps, mark)
            return replace(applied, late=details)

        return late

    def _upsert(
        self, unit: _Unit, command: DossierUpsert, actor: str, origin: str, index: int
    ) -> IntakeResult:
        dossier = command.dossier
        if not unit.batch and dossier.code not in unit.held:
            ids = unit.create_at_once(dossier, command.version, origin)
            if ids is not None:
                unit.record(actor, "dossier.upsert", dossier.code, {"created": True})
                return IntakeResult(
                    dossier_code=dossier.code,
                    revision=1,
                    status=dossier.status,
                    created=True,
                    message_ids=ids,
                )
        held = unit.get(dossier.code)
        if held is None:
            held = unit.create(dossier, command.version, origin, index)
            ids = unit.store_and_route(held, [MessageKind.DOSSIER_SYNC], [], origin=origin)
            result = IntakeResult(
                dossier_code=dossier.code,
                revision=held.revision,
                status=dossier.status,
                created=True,
                message_ids=ids,
            )
        else:
            check_agency(unit.scope, held.dossier.agency_code)
            result = self._replace(unit, held, dossier, command.version)
        unit.record(actor, "dossier.upsert", dossier.code, {"created": result.created})
        return result

    @staticmethod
    def _replace(unit: _Unit, held: _Held, dossier: Dossier, version: int | None) -> IntakeResult:
        current = held.dossier
        stale = version is not None and held.source_version is not None and version <= held.source_version
        if stale:
            return IntakeResult(
                dossier_code=current.code, revision=held.revision, status=current.status, duplicate=True
            )
        new_steps = _keep_history(current, dossier)
        if current == dossier:
            return IntakeResult(
                dossier_code=current.code, revision=held.revision, status=current.status, duplicate=True
            )
        if dossier.status is not current.status:
            check_transition(current.status, dossier.status)
        if dossier.agency_code != current.agency_code:
            raise InvalidInputError(
                "a dossier cannot move to another receiving agency",
                message_vi="không thể đổi cơ quan tiếp nhận của hồ sơ",
            )
        held.source_version = version if version is not None else held.source_version
        held.dossier = dossier
        ids = unit.store_and_route(held, [MessageKind.DOSSIER_SYNC], new_steps)
        return IntakeResult(
            dossier_code=dossier.code, revision=held.revision, status=dossier.status, message_ids=ids
        )

    @staticmethod
    def _change(
        unit: _Unit,
        code: str,
        valid_code: str,
        command: Any,
        actor: str,
        apply: Callable[[Dossier, Any], _Change | None],
    ) -> IntakeResult:
        """Apply ``command`` to the held dossier ``valid_code``; the answer names ``code`` as sent."""
        held = unit.require(valid_code)
        dossier = held.dossier  # changed in place: a failure rolls the whole transaction back
        change = apply(dossier, command)
        if change is None:
            return IntakeResult(
                dossier_code=code, revision=held.revision, status=dossier.status, duplicate=True
            )
        ids = unit.store_and_route(held, change.kinds, change.steps)
        unit.record(actor, change.action, code, change.details)
        if change.late is not None:
            unit.record(actor, late_entry.AUDIT_ACTION, code, change.late)
        return IntakeResult(dossier_code=code, revision=held.revision, status=dossier.status, message_ids=ids)

    @staticmethod
    def _status(dossier: Dossier, change: StatusChange) -> _Change:
        check_transition(dossier.status, change.status)
        _check_room(len(dossier.steps) + 1, MAX_STEPS, "processing steps")
        _apply_status(dossier, change)
        step = _step_of(change, change.reason or change.status.label_vi, change.status)
        dossier.steps.append(step)
        details = {"to": change.status.value, "reason": change.reason}
        return _Change([MessageKind.DOSSIER_SYNC], [step], "dossier.status", details)

    @staticmethod
    def _redate(dossier: Dossier, change: DueDateChange) -> _Change | None:
        if change.new_due_at == dossier.due_at:
            return None
        if dossier.status.is_final or dossier.status is DossierStatus.FINISHED:
            raise InvalidTransitionError(
                f"dossier {dossier.code} is in status {dossier.status.value} "
                f"({dossier.status.label_en}); its due date no longer moves",
                message_vi=f"hồ sơ ở trạng thái {dossier.status.value}, không thể điều chỉnh ngày hẹn trả",
                details={"status": dossier.status.value},
            )
        _check_room(len(dossier.steps) + 1, MAX_STEPS, "processing steps")
        old_due = dossier.due_at
        _record_redating(dossier, change.handler, change.reason, change.at, change.new_due_at)
        step = _step_of(change, change.reason, dossier.status)
        dossier.steps.append(step)
        details = {
            "old_due_at": old_due.isoformat() if old_due else None,
            "new_due_at": change.new_due_at.isoformat(),
            "reason": change.reason,
        }
        return _Change([MessageKind.DOSSIER_SYNC], [step], "dossier.redate", details)

    @staticmethod
    def _step(dossier: Dossier, command: StepAdd) -> _Change | None:
        if command.step in dossier.steps:
            return None
        late_entry.refuse_sent_marks([command.step])
        _check_room(len(dossier.steps) + 1, MAX_STEPS, "processing steps")
        dossier.steps.append(command.step)
        return _Change([], [command.step], "dossier.step", {"status": command.step.status.value})

    @staticmethod
    def _result(dossier: Dossier, command: ResultAttach) -> _Change:
        dossier.results = [r for r in dossier.results if r.id != command.result.id]
        _check_room(len(dossier.results) + 1, MAX_RESULTS, "result papers")
        dossier.results.append(command.result)
        return _Change([MessageKind.DOSSIER_SYNC], [], "dossier.result", {"result_id": command.result.id})

    # --- idempotency ----------------------------------------------------------------------------

    def _scope(self, actor: str) -> str:
        """Keys are the caller's own: one caller never sees another's (docs/architecture.md)."""
        return f"{self.IDEMPOTENCY_SCOPE}:{actor}"

    def _claim(
        self, connection: Connection, key: str | None, actor: str, body: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """Claim ``key`` for this request (``None``: go on) or return the first request's answer.

        The claim is inserted before anything else in the transaction: a concurrent request
        with the same key blocks on it (PostgreSQL; SQLite serialises writers) until the first
        commits, then reads its answer. A different body under the key is a conflict.
        """
        if not key:
            return None
        scope = self._scope(actor)
        request_hash = _request_hash(body)
        claimed = connection.execute(
            _claim_statement(connection.dialect.name),
            {
                "key": key,
                "scope": scope,
                "request_hash": request_hash,
                "response": {},
                "created_at": utcnow(),
            },
        ).first()
        if claimed is not None:
            return None
        record = connection.execute(_SELECT_CLAIM, {"b_key": key, "b_scope": scope}).first()
        if record is None or not record.response:
            # the first request is still running (only if the database did not make us wait)
            raise ConflictError(
                f"a request with idempotency key {key!r} is in progress; repeat it later",
                message_vi=f"yêu cầu với khóa idempotency {key!r} đang được xử lý; hãy gửi lại sau",
                details={"in_progress": True},
            )
        if record.request_hash != request_hash:
            raise ConflictError(
                f"idempotency key {key!r} was already used with a different request",
                message_vi=f"khóa idempotency {key!r} đã được dùng cho một yêu cầu khác",
            )
        response: dict[str, Any] = record.response
        return response

    def _remember(
        self, connection: Connection, key: str | None, actor: str, response: dict[str, Any]
    ) -> None:
        """Store the answer under the key claimed by :meth:`_claim`."""
        if key:
            connection.execute(
                _REMEMBER, {"b_key": key, "b_scope": self._scope(actor), "b_response": response}
            )

    def _release(self, connection: Connection, key: str | None, actor: str) -> None:
        """Drop the claim of a request answered as a no-op (nothing to replay)."""
        if key:
            connection.execute(_RELEASE, {"b_key": key, "b_scope": self._scope(actor)})


def _keep_history(current: Dossier, dossier: Dossier) -> list[ProcessingStep]:
    """History is append-only: the upsert's ``dossier`` keeps every stored step (new ones are
    appended) and re-dating record, and its receipt and due dates stay; returns the new steps."""
    if dossier.received_at != current.received_at:
        raise _redating_error(current.code, "received_at")
    if dossier.due_at != current.due_at:
        raise _redating_error(current.code, "due_at")
    new_steps = [step for step in dossier.steps if step not in current.steps]
    late_entry.refuse_sent_marks(new_steps)
    _check_room(len(current.steps) + len(new_steps), MAX_STEPS, "processing steps")
    dossier.steps = [*current.steps, *new_steps]
    sent = {supplement.id: supplement for supplement in dossier.supplements}
    kept: list[SupplementRequest] = []
    for old in current.supplements:
        new = sent.pop(old.id, old)
        if (new.old_due_at, new.new_due_at, new.requested_at) != (
            old.old_due_at,
            old.new_due_at,
            old.requested_at,
        ):
            raise _redating_error(current.code, f"supplements[{old.id}]")
        kept.append(new)
    for new in sent.values():
        if new.old_due_at is not None or new.new_due_at is not None:
            raise _redating_error(current.code, f"supplements[{new.id}]")
        kept.append(new)
    _check_room(len(kept), MAX_SUPPLEMENTS, "supplement records")
    dossier.supplements = kept
    return new_steps


def _code(code: str) -> str:
    return validate_dossier_code(code)


def _apply_status(dossier: Dossier, change: StatusChange) -> None:
    dossier.status = change.status
    if change.status is DossierStatus.REFUSED:
        dossier.refused_at = change.at
    if change.status.ends_processing and change.status is not DossierStatus.RETURNED:
        dossier.finished_at = dossier.finished_at or change.at
    if change.status is DossierStatus.RETURNED:
        dossier.returned_at = change.at
    if change.new_due_at is not None and change.new_due_at != dossier.due_at:
        content = change.reason or change.status.label_vi
        _record_redating(dossier, change.handler, content, change.at, change.new_due_at)


def _record_redating(dossier: Dossier, handler: str, content: str, at: datetime, new_due: datetime) -> None:
    """The one way a due date moves: a ``DanhSachHoSoBoSung`` record with the old and new dates
    (``NgayHenTraTruoc``/``NgayHenTraMoi``: Mẫu 02 supplement or Mẫu 04 apology, §2.2)."""
    if new_due < dossier.received_at:
        raise InvalidInputError(
            "new_due_at is before the dossier's received_at",
            message_vi="ngày hẹn trả mới trước ngày tiếp nhận",
        )
    _check_room(len(dossier.supplements) + 1, MAX_SUPPLEMENTS, "supplement records")
    dossier.supplements.append(
        SupplementRequest(
            id=f"{dossier.code}-BS{len(dossier.supplements) + 1}",
            requested_by=handler,
            content=content,
            requested_at=at,
            old_due_at=dossier.due_at,
            new_due_at=new_due,
        )
    )
    dossier.due_at = new_due


def _step_of(change: StatusChange | DueDateChange, content: str, status: DossierStatus) -> ProcessingStep:
    """The processing step a status or due-date change records: who handled it, where and when,
    what was done, and the due date it set (a ``CapNhatTienDoHoSoMC`` step, docs/portal.md §3.4)."""
    return ProcessingStep(
        handler=change.handler,
        position=change.position,
        department=change.department,
        at=change.at,
        content=content,
        status=status,
        step_due_at=change.new_due_at,
    )
