"""The officer's batch signatures: several waiting drafts signed one after another with one key
(the console's desk, ``/console/signing/batch``; docs/console.md).

A job is a row of ``signing_batch_jobs`` (:class:`hub.db.signing_tables.SigningBatchJob`), so
every API process of ``hub serve --processes N`` shows its progress and takes its cancellation,
whichever process the officer's browser reaches, and its page outlives a restart. The process
that starts a job signs its drafts in a thread of its own and writes each document's outcome as
it goes; cancelling sets a flag that the thread reads before each next document.

A job whose process is gone (stopped or killed mid-way) is shown **interrupted**: known at once
on the same machine (its process id is no longer alive), elsewhere once nothing was written for
:data:`STALE_AFTER`. Every signature it made stands (audit log, desk queues); the drafts it did
not reach stay waiting on the desk and can be signed again.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select, update

from hub.auth.keys import Principal
from hub.db.base import utcnow
from hub.db.session import Database
from hub.db.signing_tables import SigningBatchJob
from hub.services.signing_desk import SigningDesk
from schemas.errors import HubError, InvalidInputError, NotFoundError, PermissionDeniedError
from signing.settings import KeyPurpose

__all__ = ["BatchItem", "BatchJob", "BatchJobs", "BatchState"]

#: A running job with no document written for this long has lost its process (one document's
#: signature, time-stamp and revocation fetches included, takes far less).
STALE_AFTER = timedelta(minutes=10)
#: An officer's newest jobs kept; older ones are removed when she starts another.
JOBS_KEPT_PER_OWNER = 100
#: At most this many drafts in one job (the desk's form sends no more).
MAX_ITEMS = 200


class BatchState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    #: Its process stopped before the end (a state readers derive; never stored).
    INTERRUPTED = "interrupted"


@dataclass
class BatchItem:
    file_id: str
    name: str
    dossier_code: str
    outcome: str = "pending"
    """pending, signed, failed"""
    error: str | None = None
    output_file_id: str | None = None


@dataclass
class BatchJob:
    """A job as its page shows it (read from its row)."""

    id: str
    owner: str
    key_id: str
    items: list[BatchItem]
    created_at: datetime = field(default_factory=utcnow)
    state: BatchState = BatchState.RUNNING
    finished_at: datetime | None = None
    cancel_requested: bool = False

    @property
    def processed(self) -> int:
        return sum(1 for item in self.items if item.outcome != "pending")

    @property
    def signed(self) -> int:
        return sum(1 for item in self.items if item.outcome == "signed")


def this_runner() -> str:
    """``host:pid`` of this process, as a job row records who signs it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _runner_gone(runner: str, updated_at: datetime, now: datetime) -> bool:
    """Whether the process that runs a job is gone: a dead process id on this machine, or
    nothing written for :data:`STALE_AFTER` (another machine's process cannot be asked)."""
    host, _, pid = runner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            pass
    return now - updated_at > STALE_AFTER


def _job_of(row: SigningBatchJob, now: datetime) -> BatchJob:
    state = BatchState(row.state)
    if state is BatchState.RUNNING and _runner_gone(row.runner, row.updated_at, now):
        state = BatchState.INTERRUPTED
    return BatchJob(
        id=row.id,
        owner=row.owner,
        key_id=row.key_id,
        items=[BatchItem(**item) for item in row.items],
        created_at=row.created_at,
        state=state,
        finished_at=row.finished_at,
        cancel_requested=row.cancel_requested,
    )


class BatchJobs:
    """Batch-signing jobs stored in the hub's database (see the module's docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def start(
        self,
        desk: SigningDesk,
        principal: Principal,
        owner: str,
        key_id: str,
        file_ids: list[str],
        *,
        runner: Callable[[Callable[[], None]], None] | None = None,
    ) -> BatchJob:
        """Check every file is a waiting draft and the key is hers, store the job, then sign the
        drafts in the background (``runner``: how to run the work; default a daemon thread)."""
        wanted = list(dict.fromkeys(file_ids))
        if not wanted:
            raise InvalidInputError("select at least one document", message_vi="Hãy chọn ít nhất một văn bản")
        if len(wanted) > MAX_ITEMS:
            raise InvalidInputError(
                f"at most {MAX_ITEMS} documents in one batch",
                message_vi=f"Mỗi lần ký tối đa {MAX_ITEMS} văn bản",
            )
        waiting = {fid: desk.draft(fid, owner) for fid in wanted}
        if key_id not in desk.keys_of(owner, KeyPurpose.PERSONAL):
            raise PermissionDeniedError(
                f"key {key_id!r} is not bound to your account",
                message_vi=f"Khóa '{key_id}' không gắn với tài khoản của bạn",
                details={"key_id": key_id[:100]},
            )
        items = [BatchItem(fid, waiting[fid].name, waiting[fid].dossier_code) for fid in wanted]
        job = BatchJob(uuid.uuid4().hex, owner, key_id, items)
        self._insert(job)
        work = self._work(desk, principal, job)
        if runner is not None:
            runner(work)
        else:
            threading.Thread(target=work, name=f"batch-sign-{job.id[:8]}", daemon=True).start()
        return job

    def get(self, job_id: str, owner: str) -> BatchJob:
        """The owner's job (another account's is as unknown as a missing one)."""
        with self._db.sessions() as session:
            row = session.get(SigningBatchJob, job_id[:32])
            if row is None or row.owner != owner:
                raise NotFoundError(
                    "no such batch-signing job", message_vi="Không có tác vụ ký hàng loạt này"
                )
            return _job_of(row, utcnow())

    def cancel(self, job_id: str, owner: str) -> BatchJob:
        """Ask the job to stop before its next document (a finished job is left as it is)."""
        job = self.get(job_id, owner)
        if job.state is BatchState.RUNNING:
            with self._db.transaction() as session:
                session.execute(
                    update(SigningBatchJob)
                    .where(SigningBatchJob.id == job.id, SigningBatchJob.state == BatchState.RUNNING.value)
                    .values(cancel_requested=True)
                )
            job.cancel_requested = True
        return job

    # --- the job's own thread ------------------------------------------------------------------

    def _insert(self, job: BatchJob) -> None:
        with self._db.transaction() as session:
            kept = (
                select(SigningBatchJob.id)
                .where(SigningBatchJob.owner == job.owner)
                .order_by(SigningBatchJob.created_at.desc())
                .limit(JOBS_KEPT_PER_OWNER - 1)
            )
            session.execute(
                delete(SigningBatchJob).where(
                    SigningBatchJob.owner == job.owner,
                    SigningBatchJob.state != BatchState.RUNNING.value,
                    SigningBatchJob.id.not_in(kept.scalar_subquery()),
                )
            )
            session.add(
                SigningBatchJob(
                    id=job.id,
                    owner=job.owner,
                    key_id=job.key_id,
                    state=job.state.value,
                    cancel_requested=False,
                    items=_items_of(job),
                    runner=this_runner(),
                    created_at=job.created_at,
                    updated_at=job.created_at,
                )
            )

    def _cancel_requested(self, job_id: str) -> bool:
        with self._db.sessions() as session:
            return bool(
                session.scalar(select(SigningBatchJob.cancel_requested).where(SigningBatchJob.id == job_id))
            )

    def _write(self, job: BatchJob, **values: Any) -> None:
        with self._db.transaction() as session:
            session.execute(
                update(SigningBatchJob)
                .where(SigningBatchJob.id == job.id)
                .values(items=_items_of(job), updated_at=utcnow(), **values)
            )

    def _work(self, desk: SigningDesk, principal: Principal, job: BatchJob) -> Callable[[], None]:
        def work() -> None:
            cancelled = False
            for item in job.items:
                if self._cancel_requested(job.id):
                    cancelled = True
                    break
                try:
                    signed = desk.sign(principal, item.file_id, job.key_id)
                except HubError as exc:
                    item.outcome, item.error = "failed", exc.message_vi
                except Exception as exc:  # noqa: BLE001  # one document's failure ends only it
                    item.outcome, item.error = "failed", f"{type(exc).__name__}: {exc}"[:300]
                else:
                    item.outcome, item.output_file_id = "signed", signed.file_id
                self._write(job)
            job.state = BatchState.CANCELLED if cancelled else BatchState.DONE
            job.finished_at = utcnow()
            self._write(job, state=job.state.value, finished_at=job.finished_at)

        return work



def _items_of(job: BatchJob) -> list[dict[str, Any]]:
    return [asdict(item) for item in job.items]
