"""Dead-letter operations (docs/delivery.md §8 and §11.6).

Filter → inspect (every attempt, every payload revision) → retry one / edit and retry /
discard with a mandatory reason, or apply retry/discard to everything matching a filter as a
background :class:`~hub.db.models.BulkJob` with progress and cancel. Every operator action
writes an audit row (:func:`hub.audit.log.record`: who, when, from where, what, before/after).

A manual retry resets the attempt budget, is recorded on the next attempt as ``manual`` and is
never refused because the message id was seen before (Outpost #310, PR #670). Discarding a
dead message releases the later messages of its dossier that it was holding (§6).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select, update
from sqlalchemy.orm import Session

from hub.audit.log import record
from hub.db.base import utcnow
from hub.db.models import (
    BulkJob,
    DeliveryAttempt,
    EndpointHealth,
    EndpointPause,
    MessageState,
    OutboxMessage,
    PayloadRevision,
)
from hub.db.session import Database
from hub.dlq.models import (
    AttemptView,
    BulkAction,
    BulkJobView,
    BulkState,
    DlqFilter,
    EndpointHealthView,
    MessageDetail,
    MessageSummary,
    RevisionView,
    SortKey,
    ViewState,
)
from hub.outbox import queue, transitions
from hub.outbox.transitions import DISCARDABLE_STATES, EDITABLE_STATES, RETRYABLE_STATES
from schemas.errors import ConflictError, InvalidInputError, NotFoundError
from schemas.masking import masked_leftovers, unmask_edit

#: Messages handled per transaction by a bulk job (progress is committed after each chunk).
BULK_CHUNK = 200
MAX_REASON_LENGTH = 2000


# --- queries --------------------------------------------------------------------------------


def _filtered(query: Select[Any], flt: DlqFilter) -> Select[Any]:
    conditions: list[Any] = []
    if flt.endpoint:
        conditions.append(OutboxMessage.endpoint == flt.endpoint)
    if flt.dossier_code:
        conditions.append(OutboxMessage.dossier_code == flt.dossier_code)
    if flt.error_class:
        conditions.append(OutboxMessage.error_class == flt.error_class)
    if flt.since:
        conditions.append(OutboxMessage.updated_at >= flt.since)
    if flt.until:
        conditions.append(OutboxMessage.updated_at < flt.until)
    if flt.error_text:
        escaped = flt.error_text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(OutboxMessage.last_error.ilike(f"%{escaped}%", escape="\\"))
    if flt.state is ViewState.BLOCKED:
        conditions.append(OutboxMessage.state == MessageState.PENDING.value)
        conditions.append(queue.blocked_by(OutboxMessage).is_not(None))
    elif flt.state is not None:
        conditions.append(OutboxMessage.state == flt.state.value)
    return query.where(and_(*conditions)) if conditions else query


def _summary(row: OutboxMessage, blocked_by: int | None) -> MessageSummary:
    summary = MessageSummary.model_validate(row)
    if summary.state is ViewState.PENDING and blocked_by is not None:
        summary.state = ViewState.BLOCKED
        summary.blocked_by = blocked_by
    return summary


def list_messages(
    db: Database,
    flt: DlqFilter,
    *,
    limit: int = 100,
    offset: int = 0,
    sort: SortKey = SortKey.SEQ,
    descending: bool = False,
) -> list[MessageSummary]:
    """Messages matching ``flt``, by ``sort`` (then ``seq``), oldest first by default."""
    query = _filtered(select(OutboxMessage, queue.blocked_by(OutboxMessage).label("blocked_by")), flt)
    column = getattr(OutboxMessage, sort.value)
    order = [column.desc() if descending else column.asc()]
    if sort is not SortKey.SEQ:
        order.append(OutboxMessage.seq.desc() if descending else OutboxMessage.seq.asc())
    query = query.order_by(*order).limit(max(1, min(limit, 1000))).offset(max(0, offset))
    with db.sessions() as session:
        return [_summary(row, blocked) for row, blocked in session.execute(query).all()]


def count_messages(db: Database, flt: DlqFilter) -> int:
    with db.sessions() as session:
        return int(session.scalar(_filtered(select(func.count(OutboxMessage.seq)), flt)) or 0)


def get_message(db: Database, seq: int) -> MessageDetail:
    """One message with its whole attempt log and payload revisions."""
    with db.sessions() as session:
        found = session.execute(
            select(OutboxMessage, queue.blocked_by(OutboxMessage).label("blocked_by")).where(
                OutboxMessage.seq == seq
            )
        ).first()
        if found is None:
            raise _not_found(seq)
        row, blocked = found
        attempts = session.scalars(
            select(DeliveryAttempt).where(DeliveryAttempt.message_seq == seq).order_by(DeliveryAttempt.id)
        ).all()
        revisions = session.scalars(
            select(PayloadRevision)
            .where(PayloadRevision.message_seq == seq)
            .order_by(PayloadRevision.revision)
        ).all()
        summary = _summary(row, blocked)
        return MessageDetail(
            **summary.model_dump(),
            payload=row.payload,
            attempt_log=[AttemptView.model_validate(a) for a in attempts],
            revisions=[RevisionView.model_validate(r) for r in revisions],
        )


def endpoint_health(db: Database) -> list[EndpointHealthView]:
    with db.sessions() as session:
        rows = session.scalars(select(EndpointHealth).order_by(EndpointHealth.endpoint)).all()
        return [EndpointHealthView.model_validate(r) for r in rows]


# --- single-message actions -------------------------------------------------------------------


def _missing(what: str, what_vi: str, **key: int) -> NotFoundError:
    """``what`` does not exist; ``key`` (its number) goes to the error's details."""
    return NotFoundError(f"{what} does not exist", message_vi=f"Không tồn tại {what_vi}", details=key)


def _not_found(seq: int) -> NotFoundError:
    return _missing(f"outbox message {seq}", f"bản tin số {seq} trong hàng đợi gửi", seq=seq)


def _locked(session: Session, seq: int) -> OutboxMessage:
    row = session.scalar(select(OutboxMessage).where(OutboxMessage.seq == seq).with_for_update())
    if row is None:
        raise _not_found(seq)
    return row


def _require_state(row: OutboxMessage, allowed: tuple[MessageState, ...], action: str) -> None:
    if row.state not in {state.value for state in allowed}:
        names = ", ".join(state.value for state in allowed)
        raise ConflictError(
            f"cannot {action} message {row.seq} in state {row.state} (allowed: {names})",
            message_vi=f"Không thể thực hiện '{action}' với bản tin {row.seq} đang ở trạng thái {row.state}",
            details={"seq": row.seq, "state": row.state},
        )


def _clean_reason(reason: str | None, *, required: bool) -> str:
    text = (reason or "").strip()
    if required and not text:
        raise InvalidInputError(
            "a reason is required", message_vi="Phải nhập lý do", details={"field": "reason"}
        )
    if len(text) > MAX_REASON_LENGTH:
        raise InvalidInputError(
            f"reason longer than {MAX_REASON_LENGTH} characters",
            message_vi=f"Lý do dài quá {MAX_REASON_LENGTH} ký tự",
            details={"field": "reason"},
        )
    return text


def _audit(
    session: Session,
    actor: str,
    action: str,
    seq: int | None,
    details: dict[str, Any],
    row: OutboxMessage | None = None,
) -> None:
    """One audit row; for a message (``row``) the state it left and the state it is in now."""
    record(
        session,
        actor=actor,
        action=action,
        target=f"outbox:{seq}" if seq is not None else "outbox",
        details=details,
        before={"state": details["previous_state"]} if row is not None else None,
        after={"state": row.state} if row is not None else None,
    )


def _apply_retry(row: OutboxMessage, now: datetime) -> str:
    previous = row.state
    transitions.apply_changes(row, transitions.operator_retry(now=now))
    return previous


def _apply_discard(row: OutboxMessage, reason: str, now: datetime) -> str:
    previous = row.state
    transitions.apply_changes(row, transitions.discard(reason=reason, now=now))
    return previous


def retry_message(db: Database, seq: int, *, actor: str, reason: str = "") -> MessageSummary:
    """Put a dead (or discarded, or delivered) message back in the queue with a fresh budget."""
    reason = _clean_reason(reason, required=False)
    with db.transaction() as session:
        row = _locked(session, seq)
        _require_state(row, RETRYABLE_STATES, "retry")
        previous = _apply_retry(row, utcnow())
        _audit(session, actor, "dlq.retry", seq, {"previous_state": previous, "reason": reason}, row)
        session.flush()
        return _summary(row, None)


def discard_message(db: Database, seq: int, *, actor: str, reason: str) -> MessageSummary:
    """Discard a dead or blocked message; the reason is mandatory and audited."""
    reason = _clean_reason(reason, required=True)
    with db.transaction() as session:
        row = _locked(session, seq)
        _require_state(row, DISCARDABLE_STATES, "discard")
        previous = _apply_discard(row, reason, utcnow())
        _audit(session, actor, "dlq.discard", seq, {"previous_state": previous, "reason": reason}, row)
        session.flush()
        return _summary(row, None)


def _unmasked(stored: dict[str, Any], edited: dict[str, Any]) -> dict[str, Any]:
    """``edited`` with the masks of a masked copy (API, ``hub dlq show``) put back to the stored
    values; 422 when a masked value was changed in part (the mask would be stored as data)."""
    restored: dict[str, Any] = unmask_edit(stored, edited)
    leftovers = masked_leftovers(stored, restored)
    if leftovers:
        raise InvalidInputError(
            "the payload holds masked personal data that was changed: leave masked values exactly "
            "as shown, or type them in full",
            message_vi="bản tin chứa dữ liệu cá nhân bị che đã bị sửa: giữ nguyên giá trị bị che "
            "hoặc nhập đầy đủ",
            details={"fields": leftovers[:20]},
        )
    return restored


def edit_message(
    db: Database, seq: int, payload: dict[str, Any], *, actor: str, reason: str = "", retry: bool = True
) -> MessageSummary:
    """Replace the payload (the original is kept as a revision) and, by default, retry."""
    if not isinstance(payload, dict):
        raise InvalidInputError(
            "the payload must be a JSON object",
            message_vi="Nội dung bản tin phải là một đối tượng JSON",
            details={"field": "payload"},
        )
    reason = _clean_reason(reason, required=False)
    with db.transaction() as session:
        row = _locked(session, seq)
        _require_state(row, EDITABLE_STATES, "edit")
        payload = _unmasked(row.payload, payload)
        now = utcnow()
        revision = (
            session.scalar(
                select(func.max(PayloadRevision.revision)).where(PayloadRevision.message_seq == seq)
            )
            or 0
        ) + 1
        session.add(
            PayloadRevision(
                message_seq=seq,
                revision=revision,
                payload=row.payload,
                replaced_by=actor,
                replaced_at=now,
                reason=reason,
            )
        )
        row.payload = payload
        row.note = f"payload edited by {actor}" + (f": {reason}" if reason else "")
        row.updated_at = now
        previous = row.state
        if retry and row.state != MessageState.PENDING.value:
            _apply_retry(row, now)
        _audit(
            session,
            actor,
            "dlq.edit",
            seq,
            {"previous_state": previous, "reason": reason, "revision": revision, "retry": retry},
            row,
        )
        session.flush()
        return _summary(row, None)


# --- bulk jobs --------------------------------------------------------------------------------


def _job_view(job: BulkJob) -> BulkJobView:
    return BulkJobView.model_validate(job)


def create_bulk_job(
    db: Database, action: BulkAction, flt: DlqFilter, *, actor: str, reason: str = ""
) -> BulkJobView:
    """Queue a retry/discard of every message matching ``flt``; a worker (or thread) runs it."""
    reason = _clean_reason(reason, required=action is BulkAction.DISCARD)
    total = count_messages(db, flt)
    with db.transaction() as session:
        job = BulkJob(
            action=action.value,
            filter=flt.model_dump(mode="json"),
            reason=reason,
            state=BulkState.QUEUED.value,
            total=total,
            processed=0,
            created_by=actor,
            created_at=utcnow(),
        )
        session.add(job)
        session.flush()
        _audit(
            session,
            actor,
            f"dlq.bulk_{action.value}",
            None,
            {"job": job.id, "filter": job.filter, "matched": total, "reason": reason},
        )
        session.flush()
        return _job_view(job)


def _job_not_found(job_id: int) -> NotFoundError:
    return _missing(f"bulk job {job_id}", f"tác vụ hàng loạt số {job_id}", job=job_id)


def get_bulk_job(db: Database, job_id: int) -> BulkJobView:
    with db.sessions() as session:
        job = session.get(BulkJob, job_id)
        if job is None:
            raise _job_not_found(job_id)
        return _job_view(job)


def list_bulk_jobs(db: Database, *, limit: int = 50) -> list[BulkJobView]:
    with db.sessions() as session:
        jobs = session.scalars(select(BulkJob).order_by(BulkJob.id.desc()).limit(limit)).all()
        return [_job_view(job) for job in jobs]


def cancel_bulk_job(db: Database, job_id: int, *, actor: str) -> BulkJobView:
    """Stop a queued or running job after its current chunk; what was done stays done."""
    with db.transaction() as session:
        job = session.scalar(select(BulkJob).where(BulkJob.id == job_id).with_for_update())
        if job is None:
            raise _job_not_found(job_id)
        if job.state not in (BulkState.QUEUED.value, BulkState.RUNNING.value):
            raise ConflictError(
                f"bulk job {job_id} is already {job.state}",
                message_vi=f"Tác vụ hàng loạt {job_id} đã ở trạng thái {job.state}",
                details={"job": job_id, "state": job.state},
            )
        job.state = BulkState.CANCELLED.value
        job.finished_at = utcnow()
        _audit(session, actor, "dlq.bulk_cancel", None, {"job": job_id, "processed": job.processed})
        session.flush()
        return _job_view(job)


def _take_job(db: Database, job_id: int | None) -> int | None:
    """Atomically move a queued job (the given one, or the oldest) to running."""
    with db.transaction() as session:
        query = (
            select(BulkJob.id).where(BulkJob.state == BulkState.QUEUED.value).order_by(BulkJob.id).limit(1)
        )
        if job_id is not None:
            query = query.where(BulkJob.id == job_id)
        found = session.scalar(query)
        if found is None:
            return None
        taken = session.scalar(
            update(BulkJob)
            .where(BulkJob.id == found, BulkJob.state == BulkState.QUEUED.value)
            .values(state=BulkState.RUNNING.value)
            .returning(BulkJob.id)
        )
        return taken


def _mark_failed(db: Database, job_id: int, exc: Exception) -> None:
    with db.transaction() as session:
        session.execute(
            update(BulkJob)
            .where(BulkJob.id == job_id, BulkJob.state == BulkState.RUNNING.value)
            .values(state=BulkState.FAILED.value, error=f"{type(exc).__name__}: {exc}", finished_at=utcnow())
        )


def run_bulk_job(db: Database, job_id: int) -> BulkJobView:
    """Run a queued job to completion (or cancellation), chunk by chunk."""
    if _take_job(db, job_id) is None:
        return get_bulk_job(db, job_id)
    _run_taken_job(db, job_id)
    return get_bulk_job(db, job_id)


def resume_bulk_job(db: Database, job_id: int, *, actor: str) -> BulkJobView:
    """Finish a job left ``running`` by a runner that died (worker killed mid-job).

    Only for a job whose runner is known to be gone: the actions are re-checked message by
    message, so resuming repeats nothing that was already done for a ``dead``-state filter.
    """
    job = get_bulk_job(db, job_id)
    if job.state is not BulkState.RUNNING:
        raise ConflictError(
            f"bulk job {job_id} is {job.state.value}, not running",
            message_vi=f"Tác vụ hàng loạt {job_id} không ở trạng thái đang chạy",
            details={"job": job_id, "state": job.state.value},
        )
    with db.transaction() as session:
        _audit(session, actor, "dlq.bulk_resume", None, {"job": job_id, "processed": job.processed})
    _run_taken_job(db, job_id)
    return get_bulk_job(db, job_id)


def run_next_bulk_job(db: Database, *, should_stop: Callable[[], bool] | None = None) -> bool:
    """Run the oldest queued job, if any (called by :class:`hub.dlq.runner.BulkJobRunner`).

    ``should_stop`` is checked between chunks: when it turns true (worker shutting down) the
    job goes back to ``queued`` and the next worker continues it.
    """
    job_id = _take_job(db, None)
    if job_id is None:
        return False
    _run_taken_job(db, job_id, should_stop)
    return True


def _run_taken_job(db: Database, job_id: int, should_stop: Callable[[], bool] | None = None) -> None:
    """Run a job this runner has taken; an unexpected error marks it ``failed`` and propagates."""
    try:
        _process_chunks(db, job_id, should_stop)
    except Exception as exc:
        _mark_failed(db, job_id, exc)
        raise


def _process_chunks(db: Database, job_id: int, should_stop: Callable[[], bool] | None) -> None:
    """Process chunks until nothing matches or the job is no longer ``running`` (cancelled).

    The job row is not locked while a chunk runs, so a cancel never waits for the chunk; the
    state changes made here are guarded by ``state = 'running'`` so they never undo a cancel.
    """
    job = get_bulk_job(db, job_id)
    allowed = RETRYABLE_STATES if job.action is BulkAction.RETRY else DISCARDABLE_STATES
    allowed_values = {state.value for state in allowed}
    running = and_(BulkJob.id == job_id, BulkJob.state == BulkState.RUNNING.value)
    cursor = 0
    while True:
        with db.transaction() as session:
            if session.scalar(select(BulkJob.state).where(BulkJob.id == job_id)) != BulkState.RUNNING.value:
                return  # cancelled (or removed) meanwhile
            if should_stop is not None and should_stop():
                session.execute(update(BulkJob).where(running).values(state=BulkState.QUEUED.value))
                return
            query = _filtered(select(OutboxMessage), job.filter).where(OutboxMessage.seq > cursor)
            query = query.order_by(OutboxMessage.seq).limit(BULK_CHUNK).with_for_update()
            rows = session.scalars(query).all()
            if not rows:
                session.execute(
                    update(BulkJob).where(running).values(state=BulkState.DONE.value, finished_at=utcnow())
                )
                _audit(session, job.created_by, "dlq.bulk_done", None, {"job": job_id})
                return
            now = utcnow()
            acted = 0
            for row in rows:
                cursor = row.seq
                if row.state not in allowed_values:
                    continue
                if job.action is BulkAction.RETRY:
                    previous = _apply_retry(row, now)
                else:
                    previous = _apply_discard(row, job.reason, now)
                acted += 1
                _audit(
                    session,
                    job.created_by,
                    f"dlq.{job.action.value}",
                    row.seq,
                    {"previous_state": previous, "reason": job.reason, "bulk_job": job_id},
                    row,
                )
            session.execute(
                update(BulkJob).where(BulkJob.id == job_id).values(processed=BulkJob.processed + acted)
            )


# --- pausing an endpoint ----------------------------------------------------------------------


def paused_endpoints(db: Database) -> dict[str, EndpointPause]:
    """The paused endpoints with who paused them, when and why."""
    with db.sessions() as session:
        return {row.endpoint: row for row in session.scalars(select(EndpointPause))}


def pause_endpoint(db: Database, endpoint: str, *, actor: str, reason: str) -> None:
    """Stop claiming ``endpoint``'s messages (they keep queueing, in order) until resumed;
    the reason is mandatory and audited (``endpoint.pause``)."""
    reason = _clean_reason(reason, required=True)
    with db.transaction() as session:
        if session.get(EndpointPause, endpoint) is not None:
            raise ConflictError(
                f"endpoint {endpoint} is already paused",
                message_vi=f"Điểm nhận {endpoint} đang tạm dừng",
                details={"endpoint": endpoint},
            )
        session.add(EndpointPause(endpoint=endpoint, paused_by=actor, paused_at=utcnow(), reason=reason))
        record(
            session,
            actor=actor,
            action="endpoint.pause",
            target=f"endpoint:{endpoint}",
            details={"reason": reason},
            before={"paused": False},
            after={"paused": True},
        )


def resume_endpoint(db: Database, endpoint: str, *, actor: str) -> None:
    """Deliver to ``endpoint`` again (audited ``endpoint.resume``)."""
    with db.transaction() as session:
        row = session.get(EndpointPause, endpoint, with_for_update=True)
        if row is None:
            raise ConflictError(
                f"endpoint {endpoint} is not paused",
                message_vi=f"Điểm nhận {endpoint} không tạm dừng",
                details={"endpoint": endpoint},
            )
        details = {"paused_by": row.paused_by, "reason": row.reason}
        session.delete(row)
        record(
            session,
            actor=actor,
            action="endpoint.resume",
            target=f"endpoint:{endpoint}",
            details=details,
            before={"paused": True},
            after={"paused": False},
        )
