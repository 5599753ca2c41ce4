"""What one intake change costs the database, and the order its messages are queued in
(docs/architecture.md, "Intake throughput"), on both backends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select

from hub.api.offload import WriteThreads
from hub.db.models import OutboxMessage
from hub.db.session import Database
from hub.reports.models import ReportDossier
from hub.reports.ontime import EndKind
from hub.services.intake import IntakeService
from hub.telemetry import correlation
from schemas.changes import DossierUpsert, StatusChange
from schemas.status import DossierStatus
from tests.core.test_intake import T0, settings
from tests.sample_dossier import make_dossier

CODE = "000.00.18.H42-251125-0001"


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements sent to the database while the block runs (BEGIN included)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()[:3]))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_a_status_change_is_one_short_transaction(db: Database) -> None:
    service = IntakeService(db, settings())
    service.upsert_dossier(DossierUpsert(dossier=make_dossier()), actor="src")
    change = StatusChange(
        status=DossierStatus.PROCESSING, at=T0 + timedelta(hours=1), handler="Trần Thị Bình"
    )
    with statements(db) as seen:
        result = service.change_status(CODE, change, actor="src", idempotency_key="k1")
    # a sync and a progress message to each of two endpoints: four rows, ONE insert
    assert len(result.message_ids) == 4
    assert [s for s in seen if s.startswith("INSERT INTO outbox_messages")] == ["INSERT INTO outbox_messages"]
    writes = [s for s in seen if not s.startswith(("BEGIN", "SELECT pg_notify"))]
    assert writes == [
        "INSERT INTO idempotency_keys",
        "SELECT dossiers.id, dossiers.code,",
        "UPDATE dossiers SET",
        "INSERT INTO outbox_messages",
        "INSERT INTO audit_log",
        "UPDATE idempotency_keys SET",
    ]  # no report row: its facts (dates, end of processing) stay those it holds


def test_the_report_row_is_written_when_its_facts_change(db: Database) -> None:
    service = IntakeService(db, settings())
    with statements(db) as seen:
        service.upsert_dossier(DossierUpsert(dossier=make_dossier()), actor="src")
    assert "INSERT INTO report_dossiers" in seen
    later = T0 + timedelta(hours=1)
    service.change_status(
        CODE, StatusChange(status=DossierStatus.PROCESSING, at=later, handler="B"), actor="src"
    )
    finish = StatusChange(status=DossierStatus.FINISHED, at=later + timedelta(hours=1), handler="B")
    with statements(db) as seen:
        service.change_status(CODE, finish, actor="src")
    assert "INSERT INTO report_dossiers" in seen
    with db.sessions() as session:
        end_kind = session.scalar(select(ReportDossier.end_kind).where(ReportDossier.code == CODE))
    assert end_kind == EndKind.FINISHED


def test_messages_are_queued_in_the_order_the_change_caused_them(db: Database) -> None:
    service = IntakeService(db, settings())
    created = service.upsert_dossier(DossierUpsert(dossier=make_dossier()), actor="src")
    change = StatusChange(
        status=DossierStatus.PROCESSING, at=T0 + timedelta(hours=1), handler="Trần Thị Bình"
    )
    changed = service.change_status(CODE, change, actor="src")
    with db.sessions() as session:
        queued = session.execute(
            select(OutboxMessage.message_id, OutboxMessage.kind).order_by(OutboxMessage.seq)
        )
        rows = list(queued)
    assert [row.message_id for row in rows] == created.message_ids + changed.message_ids
    # per endpoint the sync of a change is queued before its progress message
    assert [row.kind for row in rows[2:]] == [
        "dossier.sync",
        "dossier.sync",
        "dossier.progress",
        "dossier.progress",
    ]


def test_write_threads_match_the_database_and_carry_the_callers_context(db: Database) -> None:
    threads = WriteThreads.for_database(db)
    try:
        assert threads.threads == (db.engine.pool.size() if db.is_postgres else 1)  # type: ignore[attr-defined]

        async def call() -> tuple[str | None, str]:
            token = correlation.bind("req-123")
            try:
                return await threads.run(lambda: (correlation.current(), threading.current_thread().name))
            finally:
                correlation.reset(token)

        cid, thread = asyncio.run(call())
        assert cid == "req-123"
        assert thread.startswith("hub-intake")
    finally:
        threads.close()
