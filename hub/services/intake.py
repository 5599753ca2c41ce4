"""Intake: the department's changes to dossiers, stored together with the messages they cause.

Every public method runs one transaction that (1) locks the dossier row, (2) applies the
change after checking the one-stop procedure's rules (:mod:`schemas.status`), and (3) writes
the outbound messages chosen by the routing rules — so a change and its handoffs commit
together or not at all (transactional outbox).

Idempotency: a request with an idempotency key already seen returns the first answer and
creates nothing; the same key with a different body is a conflict. A dossier upsert whose
source ``version`` is not newer than the stored one, or whose content is unchanged, is a
no-op as well.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.config import Settings
from hub.db.base import utcnow
from hub.db.models import (
    AuditEntry,
    DossierRow,
    DossierSequence,
    IdempotencyRecord,
)
from hub.db.session import Database
from hub.dlq.models import DlqFilter, MessageSummary
from hub.dlq.service import list_messages
from hub.outbox.enqueue import enqueue
from hub.outbox.routing import RouteQuery, Router
from schemas.changes import DossierUpsert, ResultAttach, StatusChange, StepAdd
from schemas.codes import format_dossier_code, validate_agency_code, validate_dossier_code
from schemas.dossier import Dossier, ProcessingStep, SupplementRequest
from schemas.errors import ConflictError, InvalidInputError, NotFoundError
from schemas.messages import DossierProgressPayload, DossierSyncPayload, MessageKind
from schemas.status import DossierStatus, check_transition


class IntakeResult(BaseModel):
    dossier_code: str
    revision: int
    status: DossierStatus
    created: bool = False
    duplicate: bool = False
    """True when nothing new was stored (repeated key, old version, unchanged content)."""
    message_ids: list[str] = Field(default_factory=list)


def owner_id_digest(id_number: str) -> str:
    return hashlib.sha256(id_number.strip().encode()).hexdigest()


def _request_hash(payload: Any) -> str:
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class _Change:
    """What applying a command did: messages to route, new steps, and the audit record."""

    kinds: list[MessageKind]
    steps: list[ProcessingStep]
    action: str
    details: dict[str, Any]


class IntakeService:
    """Business logic behind the intake API; route handlers only translate HTTP."""

    IDEMPOTENCY_SCOPE = "intake"

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._router = Router(
            settings.routing, [name for name, ep in settings.endpoints.items() if ep.enabled]
        )

    # --- commands ---------------------------------------------------------------------------

    def upsert_dossier(
        self,
        command: DossierUpsert,
        *,
        actor: str,
        idempotency_key: str | None = None,
        origin: str = "source",
    ) -> IntakeResult:
        """Create or replace a dossier (``DongBoHoSoMC`` semantics)."""
        body = command.model_dump(mode="json")
        with self._db.transaction() as session:
            replay = self._replayed(session, idempotency_key, body)
            if replay is not None:
                return replay
            dossier = command.dossier
            row = self._lock(session, dossier.code)
            if row is None:
                result = self._create(session, dossier, command.version, origin)
            else:
                result = self._replace(session, row, dossier, command.version, origin)
            self._audit(session, actor, "dossier.upsert", dossier.code, {"created": result.created})
            self._remember(session, idempotency_key, body, result)
        return result

    def change_status(
        self, code: str, change: StatusChange, *, actor: str, idempotency_key: str | None = None
    ) -> IntakeResult:
        """Move a dossier along the procedure, recording the step (and re-dating if late)."""

        def apply(dossier: Dossier) -> _Change:
            check_transition(dossier.status, change.status)
            self._apply_status(dossier, change)
            step = ProcessingStep(
                handler=change.handler,
                position=change.position,
                department=change.department,
                at=change.at,
                content=change.reason or change.status.label_vi,
                status=change.status,
                step_due_at=change.new_due_at,
            )
            dossier.steps.append(step)
            details = {"to": change.status.value, "reason": change.reason}
            return _Change([MessageKind.DOSSIER_SYNC], [step], "dossier.status", details)

        return self._modify(code, change, actor, idempotency_key, apply)

    def add_step(
        self, code: str, command: StepAdd, *, actor: str, idempotency_key: str | None = None
    ) -> IntakeResult:
        """Record a processing step (``CapNhatTienDoHoSoMC``); a step already held is a no-op."""

        def apply(dossier: Dossier) -> _Change | None:
            if command.step in dossier.steps:
                return None
            dossier.steps.append(command.step)
            return _Change([], [command.step], "dossier.step", {"status": command.step.status.value})

        return self._modify(code, command, actor, idempotency_key, apply)

    def attach_result(
        self, code: str, command: ResultAttach, *, actor: str, idempotency_key: str | None = None
    ) -> IntakeResult:
        """Attach (or replace, by id) a result document (``DanhSachGiayToKetQua``)."""

        def apply(dossier: Dossier) -> _Change:
            dossier.results = [r for r in dossier.results if r.id != command.result.id]
            dossier.results.append(command.result)
            details = {"result_id": command.result.id}
            return _Change([MessageKind.DOSSIER_SYNC], [], "dossier.result", details)

        return self._modify(code, command, actor, idempotency_key, apply)

    def _modify(
        self,
        code: str,
        command: BaseModel,
        actor: str,
        idempotency_key: str | None,
        apply: Callable[[Dossier], _Change | None],
    ) -> IntakeResult:
        """Run one change to an existing dossier: lock, apply, store, route, audit, remember."""
        body = {"code": code, **command.model_dump(mode="json")}
        with self._db.transaction() as session:
            replay = self._replayed(session, idempotency_key, body)
            if replay is not None:
                return replay
            row = self._require(session, code)
            dossier = Dossier.model_validate(row.document)
            change = apply(dossier)
            if change is None:
                return IntakeResult(
                    dossier_code=code, revision=row.revision, status=dossier.status, duplicate=True
                )
            ids = self._store_and_route(session, row, dossier, change.kinds, change.steps)
            self._audit(session, actor, change.action, code, change.details)
            result = IntakeResult(
                dossier_code=code, revision=row.revision, status=dossier.status, message_ids=ids
            )
            self._remember(session, idempotency_key, body, result)
        return result

    def next_dossier_code(self, agency_code: str, day: date, *, platform_owner: str | None = None) -> str:
        """Allocate the next code for ``agency_code`` on ``day`` (safe under concurrency).

        One atomic ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` per allocation: PostgreSQL
        row-locks the counter, SQLite serialises writers, so no two callers get one number.
        """
        agency = validate_agency_code(agency_code)
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
                raise NotFoundError(f"dossier {code} not found", message_vi=f"không tìm thấy hồ sơ {code}")
            return Dossier.model_validate(row.document)

    def delivery_state(self, code: str) -> list[MessageSummary]:
        """Every outbound message of a dossier, oldest first, with those held behind a dead
        letter shown as ``blocked`` (the same view technicians get from the DLQ)."""
        code = validate_dossier_code(code)
        return list_messages(self._db, DlqFilter(dossier_code=code, state=None), limit=1000)

    # --- internals ----------------------------------------------------------------------------

    def _lock(self, session: Session, code: str) -> DossierRow | None:
        statement = select(DossierRow).where(DossierRow.code == code)
        if self._db.is_postgres:
            statement = statement.with_for_update()
        return session.scalar(statement)

    def _require(self, session: Session, code: str) -> DossierRow:
        code = validate_dossier_code(code)
        row = self._lock(session, code)
        if row is None:
            raise NotFoundError(f"dossier {code} not found", message_vi=f"không tìm thấy hồ sơ {code}")
        return row

    def _create(self, session: Session, dossier: Dossier, version: int | None, origin: str) -> IntakeResult:
        row = DossierRow(
            code=dossier.code,
            agency_code=dossier.agency_code,
            procedure_code=dossier.procedure_code,
            status=dossier.status.value,
            revision=0,
            source_version=version,
            owner_id_hash=owner_id_digest(dossier.owner.id_number) if dossier.owner.id_number else None,
            document={},
            origin=origin,
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            raise ConflictError(
                f"dossier {dossier.code} was created concurrently; repeat the request",
                message_vi=f"hồ sơ {dossier.code} vừa được tạo đồng thời; hãy gửi lại",
            ) from None
        ids = self._store_and_route(session, row, dossier, [MessageKind.DOSSIER_SYNC], [], origin=origin)
        return IntakeResult(
            dossier_code=dossier.code,
            revision=row.revision,
            status=dossier.status,
            created=True,
            message_ids=ids,
        )

    def _replace(
        self,
        session: Session,
        row: DossierRow,
        dossier: Dossier,
        version: int | None,
        origin: str,
    ) -> IntakeResult:
        current = Dossier.model_validate(row.document)
        stale = version is not None and row.source_version is not None and version <= row.source_version
        if stale or current == dossier:
            return IntakeResult(
                dossier_code=row.code, revision=row.revision, status=current.status, duplicate=True
            )
        if dossier.status is not current.status:
            check_transition(current.status, dossier.status)
        if dossier.agency_code != current.agency_code:
            raise InvalidInputError(
                "a dossier cannot move to another receiving agency",
                message_vi="không thể đổi cơ quan tiếp nhận của hồ sơ",
            )
        new_steps = [step for step in dossier.steps if step not in current.steps]
        row.source_version = version if version is not None else row.source_version
        ids = self._store_and_route(
            session, row, dossier, [MessageKind.DOSSIER_SYNC], new_steps, origin=row.origin
        )
        return IntakeResult(
            dossier_code=row.code, revision=row.revision, status=dossier.status, message_ids=ids
        )

    @staticmethod
    def _apply_status(dossier: Dossier, change: StatusChange) -> None:
        old_due = dossier.due_at
        dossier.status = change.status
        if change.status is DossierStatus.REFUSED:
            dossier.refused_at = change.at
        if change.status.ends_processing and change.status is not DossierStatus.RETURNED:
            dossier.finished_at = dossier.finished_at or change.at
        if change.status is DossierStatus.RETURNED:
            dossier.returned_at = change.at
        if change.new_due_at is not None and change.new_due_at != old_due:
            # Mẫu 02 (supplement) or Mẫu 04 (apology): reported as NgayHenTraTruoc/NgayHenTraMoi.
            dossier.supplements.append(
                SupplementRequest(
                    id=f"{dossier.code}-BS{len(dossier.supplements) + 1}",
                    requested_by=change.handler,
                    content=change.reason or change.status.label_vi,
                    requested_at=change.at,
                    old_due_at=old_due,
                    new_due_at=change.new_due_at,
                )
            )
            dossier.due_at = change.new_due_at

    def _store_and_route(
        self,
        session: Session,
        row: DossierRow,
        dossier: Dossier,
        kinds: Sequence[MessageKind],
        new_steps: Sequence[ProcessingStep],
        *,
        origin: str | None = None,
    ) -> list[str]:
        row.revision += 1
        row.status = dossier.status.value
        row.procedure_code = dossier.procedure_code
        row.document = dossier.model_dump(mode="json")
        row.updated_at = utcnow()
        if dossier.owner.id_number:
            row.owner_id_hash = owner_id_digest(dossier.owner.id_number)
        origin = origin or row.origin
        ids: list[str] = []
        for kind in kinds:
            payload = DossierSyncPayload(dossier=dossier, revision=row.revision)
            ids += self._route(session, kind, origin, dossier, payload.model_dump(mode="json"))
        if new_steps:
            progress = DossierProgressPayload(
                dossier_code=dossier.code, steps=list(new_steps), dossier=dossier, revision=row.revision
            )
            ids += self._route(
                session, MessageKind.DOSSIER_PROGRESS, origin, dossier, progress.model_dump(mode="json")
            )
        return ids

    def _route(
        self, session: Session, kind: MessageKind, origin: str, dossier: Dossier, payload: dict[str, Any]
    ) -> list[str]:
        endpoints = self._router.endpoints_for(
            RouteQuery(kind=kind.value, origin=origin, status=dossier.status.value)
        )
        rows = enqueue(
            session,
            endpoints=endpoints,
            kind=kind.value,
            ordering_key=dossier.code,
            payload=payload,
            dossier_code=dossier.code,
        )
        return [row.message_id for row in rows]

    def _replayed(self, session: Session, key: str | None, body: dict[str, Any]) -> IntakeResult | None:
        if not key:
            return None
        record = session.get(IdempotencyRecord, {"key": key, "scope": self.IDEMPOTENCY_SCOPE})
        if record is None:
            return None
        if record.request_hash != _request_hash(body):
            raise ConflictError(
                f"idempotency key {key!r} was already used with a different request",
                message_vi=f"khóa idempotency {key!r} đã được dùng cho một yêu cầu khác",
            )
        replay = IntakeResult.model_validate(record.response)
        replay.duplicate = True
        replay.created = False
        return replay

    def _remember(
        self, session: Session, key: str | None, body: dict[str, Any], result: IntakeResult
    ) -> None:
        if key:
            session.add(
                IdempotencyRecord(
                    key=key,
                    scope=self.IDEMPOTENCY_SCOPE,
                    request_hash=_request_hash(body),
                    response=result.model_dump(mode="json"),
                )
            )

    @staticmethod
    def _audit(session: Session, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
        session.add(AuditEntry(actor=actor, action=action, target=target, details=details))
