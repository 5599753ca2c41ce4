"""Batch-signing jobs are rows (:mod:`hub.services.signing_batches`): every API process of
``hub serve --processes N`` shows a job and takes its cancellation, and a job whose process is
gone reads as interrupted. The "other process" here is a second :class:`Database` engine on the
same database with a :class:`BatchJobs` of its own, as another process would have; the signing
is real (test PKI, server-held keys bound to console accounts), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from hub.db.base import utcnow
from hub.db.models import ApiRole, AuditEntry
from hub.db.session import Database
from hub.db.signing_tables import SigningBatchJob
from hub.services.result_papers import ResultPapers
from hub.services.signing_batches import STALE_AFTER, BatchJobs, BatchState
from hub.services.signing_desk import SigningDesk, console_principal
from tests.api.livehub import LiveHub
from tests.console.desk_support import upload_draft

OFFICER = console_principal("officer", ["officer"], ApiRole.OFFICER)


@pytest.fixture
def other_process(hub: LiveHub) -> Iterator[Database]:
    """A second engine on the hub's database, as another API process holds."""
    db = Database.connect(hub.settings.database_url)
    try:
        yield db
    finally:
        db.dispose()


def _desk(hub: LiveHub) -> SigningDesk:
    services = hub.app.state.services
    return SigningDesk(hub.db, services.files, services.intake, services.results, services.signing.grants)


def _held(jobs: BatchJobs, hub: LiveHub, drafts: list[str]) -> tuple[str, Callable[[], None]]:
    """A job started by the hub's process whose work has not run yet: ``(job id, work)``."""
    held: list[Callable[[], None]] = []
    job = jobs.start(_desk(hub), OFFICER, "officer", "lanh-ntl", drafts, runner=held.append)
    return job.id, held[0]


def _signed_rows(hub: LiveHub) -> int:
    with hub.db.sessions() as session:
        return len(
            session.scalars(select(AuditEntry.id).where(AuditEntry.action == "signing.results.sign")).all()
        )


def test_another_process_shows_the_job_and_its_progress(hub: LiveHub, other_process: Database) -> None:
    drafts = [upload_draft(hub, f"GIAY CHUNG NHAN {n}") for n in (1, 2)]
    job_id, work = _held(BatchJobs(hub.db), hub, drafts)
    elsewhere = BatchJobs(other_process)
    before = elsewhere.get(job_id, "officer")
    assert (before.state, before.processed, len(before.items)) == (BatchState.RUNNING, 0, 2)
    work()
    after = elsewhere.get(job_id, "officer")
    assert (after.state, after.processed, after.signed) == (BatchState.DONE, 2, 2)
    assert all(item.output_file_id for item in after.items)
    assert after.finished_at is not None
    assert _signed_rows(hub) == 2


def test_a_cancel_taken_by_another_process_stops_the_job_before_its_next_document(
    hub: LiveHub, other_process: Database
) -> None:
    drafts = [upload_draft(hub, f"GIAY CHUNG NHAN {n}") for n in (1, 2)]
    job_id, work = _held(BatchJobs(hub.db), hub, drafts)
    assert BatchJobs(other_process).cancel(job_id, "officer").cancel_requested
    work()
    job = BatchJobs(hub.db).get(job_id, "officer")
    assert (job.state, job.processed) == (BatchState.CANCELLED, 0)
    assert _signed_rows(hub) == 0
    # The drafts it did not reach still wait for an officer.
    papers = ResultPapers(hub.db)
    assert all(papers.paper(draft).state == "draft" for draft in drafts)


def test_another_officer_cannot_see_or_cancel_the_job(hub: LiveHub, other_process: Database) -> None:
    job_id, _work = _held(BatchJobs(hub.db), hub, [upload_draft(hub)])
    elsewhere = BatchJobs(other_process)
    for action in (elsewhere.get, elsewhere.cancel):
        with pytest.raises(Exception, match="no such batch-signing job"):
            action(job_id, "officer2")
    assert not BatchJobs(hub.db).get(job_id, "officer").cancel_requested


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_job_whose_process_is_gone_reads_as_interrupted(hub: LiveHub, other_process: Database) -> None:
    jobs = BatchJobs(hub.db)
    gone, _ = _held(jobs, hub, [upload_draft(hub, "GIAY CHUNG NHAN 1")])
    silent, _ = _held(jobs, hub, [upload_draft(hub, "GIAY CHUNG NHAN 2")])
    alive, _ = _held(jobs, hub, [upload_draft(hub, "GIAY CHUNG NHAN 3")])
    with hub.db.transaction() as session:
        # Its process, on this machine, has exited.
        session.execute(
            update(SigningBatchJob)
            .where(SigningBatchJob.id == gone)
            .values(runner=f"{socket.gethostname()}:{_dead_pid()}")
        )
        # Another machine's process, silent for longer than any document takes.
        session.execute(
            update(SigningBatchJob)
            .where(SigningBatchJob.id == silent)
            .values(runner="may-khac:4242", updated_at=utcnow() - STALE_AFTER - timedelta(seconds=1))
        )
    elsewhere = BatchJobs(other_process)
    assert elsewhere.get(gone, "officer").state is BatchState.INTERRUPTED
    assert elsewhere.get(silent, "officer").state is BatchState.INTERRUPTED
    assert elsewhere.get(alive, "officer").state is BatchState.RUNNING  # this test's own process
    assert f":{os.getpid()}" in _runner(hub, alive)
    # Cancelling an interrupted job changes nothing.
    assert not elsewhere.cancel(gone, "officer").cancel_requested


def _runner(hub: LiveHub, job_id: str) -> str:
    with hub.db.sessions() as session:
        return session.scalars(select(SigningBatchJob.runner).where(SigningBatchJob.id == job_id)).one()


def test_an_officers_newest_jobs_are_kept(hub: LiveHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hub.services.signing_batches.JOBS_KEPT_PER_OWNER", 2)
    jobs = BatchJobs(hub.db)
    ids: list[str] = []
    for n in range(3):
        job_id, work = _held(jobs, hub, [upload_draft(hub, f"GIAY CHUNG NHAN {n}")])
        if not ids:
            work()  # the first ends (it signs the draft); the next two stay running
        ids.append(job_id)
    with hub.db.sessions() as session:
        kept = set(session.scalars(select(SigningBatchJob.id)).all())
    assert kept == set(ids[1:])
