"""Group commit of concurrent single changes (hub/services/commit_group.py), on both databases.

Each test makes a group form deterministically: the first caller's unit waits inside the
transaction until the others have queued behind it, so they are written together next.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import AuditEntry, IdempotencyRecord
from hub.db.session import Database
from hub.services.commit_group import CommitGroup
from hub.services.intake import IntakeService
from schemas.changes import DossierUpsert
from schemas.errors import ConflictError
from tests.core.test_intake import count_messages, settings
from tests.services.results_support import make_dossier

QUEUE_WAIT_SECONDS = 30


def audit(target: str) -> Callable[[Session], str]:
    """A unit writing one audit row for ``target``."""

    def work(session: Session) -> str:
        session.connection().execute(
            insert(AuditEntry).values(at=utcnow(), actor="test", action="t", target=target, details={})
        )
        return target

    return work


def audited(db: Database) -> set[str]:
    with db.sessions() as session:
        return set(session.scalars(select(AuditEntry.target)))


def run_grouped(
    group: CommitGroup, first: Callable[[Session], Any], rest: list[Callable[[Session], Any]]
) -> list[Any]:
    """Units ``rest`` queued behind ``first`` (see :func:`call_grouped`)."""
    return call_grouped(group, first, [lambda work=work: group.run(work) for work in rest])


def call_grouped(
    group: CommitGroup, first: Callable[[Session], Any], calls: list[Callable[[], Any]]
) -> list[Any]:
    """Run ``first``, hold it inside its transaction until each of ``calls`` (callers of
    ``group.run``) has queued its unit, then let them go; each call's result or exception."""
    release = threading.Event()
    outcomes: list[Any] = [None] * (1 + len(calls))

    def held(session: Session) -> Any:
        release.wait(QUEUE_WAIT_SECONDS)
        return first(session)

    def call(index: int, caller: Callable[[], Any]) -> None:
        try:
            outcomes[index] = caller()
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes[index] = exc

    threads = [threading.Thread(target=call, args=(0, lambda: group.run(held)))]
    threads[0].start()
    deadline = time.monotonic() + QUEUE_WAIT_SECONDS
    while not group._leading and time.monotonic() < deadline:
        time.sleep(0.005)
    for i, caller in enumerate(calls):
        # One at a time, so the queue order is the list order.
        threads.append(threading.Thread(target=call, args=(i + 1, caller)))
        threads[-1].start()
        while len(group._queue) < i + 1 and time.monotonic() < deadline:
            time.sleep(0.005)
    release.set()
    for thread in threads:
        thread.join(QUEUE_WAIT_SECONDS)
    return outcomes


def test_queued_callers_share_one_transaction(db: Database) -> None:
    group = CommitGroup(db)
    outcomes = run_grouped(group, audit("first"), [audit(f"u{i}") for i in range(5)])
    assert outcomes == ["first", *(f"u{i}" for i in range(5))]
    assert audited(db) == {"first", *(f"u{i}" for i in range(5))}
    # The first alone, then the five that queued behind it in one transaction.
    assert (group.groups, group.grouped) == (2, 6)


def test_a_refused_unit_leaves_the_others_of_its_group_committed(db: Database) -> None:
    def refused(session: Session) -> str:
        audit("refused")(session)  # written, then rolled back to its savepoint
        raise ConflictError("no", message_vi="không")

    group = CommitGroup(db)
    outcomes = run_grouped(group, audit("first"), [audit("a"), refused, audit("b")])
    assert outcomes[:2] == ["first", "a"]
    assert outcomes[3] == "b"
    assert isinstance(outcomes[2], ConflictError)
    assert audited(db) == {"first", "a", "b"}
    assert group.groups == 2


def test_a_unit_failing_in_the_database_is_run_alone_and_gets_its_own_error(db: Database) -> None:
    """A duplicate idempotency key inside a group: the unit is rolled back to its savepoint,
    then run again in a transaction of its own, where it fails as it would have ungrouped."""
    runs: list[str] = []

    def remember(key: str) -> Callable[[Session], str]:
        def work(session: Session) -> str:
            runs.append(key)
            session.connection().execute(
                insert(IdempotencyRecord).values(
                    key=key, scope="t", request_hash="h", response={}, created_at=utcnow()
                )
            )
            return key

        return work

    group = CommitGroup(db)
    outcomes = run_grouped(group, audit("first"), [remember("k1"), remember("k1"), audit("after")])
    assert outcomes[:2] == ["first", "k1"]
    assert outcomes[3] == "after"
    assert isinstance(outcomes[2], IntegrityError)
    assert runs == ["k1", "k1", "k1"]  # the second one: in the group, then alone
    assert audited(db) == {"first", "after"}
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1


def test_a_failed_commit_sends_every_caller_to_its_own_transaction(db: Database) -> None:
    group = CommitGroup(db)
    real = db.transaction
    failures = {"left": 1}

    def failing_once() -> Any:
        class Failing:
            def __enter__(self) -> Session:
                self.inner = real()
                return self.inner.__enter__()

            def __exit__(self, *exc: object) -> bool | None:
                if exc[0] is None and failures["left"]:
                    failures["left"] -= 1
                    self.inner.__exit__(RuntimeError, RuntimeError("commit failed"), None)
                    raise RuntimeError("commit failed")
                return self.inner.__exit__(*exc)

        return Failing()

    db.transaction = failing_once  # type: ignore[method-assign]
    try:
        outcomes = run_grouped(group, audit("first"), [audit("a"), audit("b")])
    finally:
        db.transaction = real  # type: ignore[method-assign]
    assert outcomes == ["first", "a", "b"]
    assert audited(db) == {"first", "a", "b"}


def test_concurrent_upserts_with_one_idempotency_key_store_one_dossier(db: Database) -> None:
    """Two requests with the same key in one group: the second is answered from the first."""
    service = IntakeService(db, settings())
    command = DossierUpsert(dossier=make_dossier("000.00.18.H42-251125-0001"))

    def upsert() -> Any:
        return service.upsert_dossier(command, actor="t", idempotency_key="same-key")

    outcomes = call_grouped(service._commits, audit("first"), [upsert, upsert])
    results = outcomes[1:]
    assert [(r.created, r.duplicate) for r in results] == [(True, False), (False, True)]
    assert results[0].message_ids
    assert results[1].message_ids == results[0].message_ids
    assert count_messages(db) == 2  # one change, routed to its two endpoints
    assert (service._commits.groups, service._commits.grouped) == (2, 3)


@pytest.mark.parametrize("size", [1, 3])
def test_groups_never_exceed_their_bound(db: Database, size: int) -> None:
    group = CommitGroup(db, max_group=size)
    outcomes = run_grouped(group, audit("first"), [audit(f"u{i}") for i in range(6)])
    assert outcomes == ["first", *(f"u{i}" for i in range(6))]
    assert group.groups == 1 + -(-6 // size)
