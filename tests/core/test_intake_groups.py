"""Group commit of single changes (hub/api/offload.py ``WriteGroups``,
``IntakeService.apply_group``; docs/architecture.md, "Intake throughput"): concurrent single
changes of one caller written in one transaction, each answered as if written alone."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.api.offload import WriteGroups, WriteThreads
from hub.db.models import AuditEntry, DossierRow, OutboxMessage
from hub.db.session import Database
from hub.services.intake import IntakeResult, IntakeService, SingleChange
from hub.telemetry import correlation
from schemas.changes import DossierUpsert, StatusChange
from schemas.errors import HubError, NotFoundError, PermissionDeniedError
from schemas.status import DossierStatus
from tests.core.test_intake import T0, settings
from tests.core.test_intake_statements import statements
from tests.sample_dossier import make_dossier

SCOPE = frozenset({"000.00.18.H42"})


def _code(n: int) -> str:
    return f"000.00.18.H42-251125-{n:04d}"


def _create(n: int, *, request_id: str | None = None, **extra: object) -> SingleChange:
    """A create of dossier ``n`` as its route hands it over, in a request ``request_id``."""
    context = contextvars.copy_context()
    if request_id is not None:
        context.run(correlation.bind, request_id)
    return SingleChange(DossierUpsert(dossier=make_dossier(_code(n), **extra)), context=context)


def _processing(n: int) -> SingleChange:
    change = StatusChange(
        status=DossierStatus.PROCESSING, at=T0 + timedelta(hours=1), handler="Trần Thị Bình"
    )
    return SingleChange(change, _code(n))


def test_a_group_is_one_transaction_and_each_change_gets_its_own_answer(db: Database) -> None:
    service = IntakeService(db, settings())
    service.upsert_dossier(DossierUpsert(dossier=make_dossier(_code(1))), actor="src", scope=SCOPE)
    changes = [_processing(1), *(_create(n, request_id=f"req-{n}") for n in range(2, 6))]
    with statements(db) as seen:
        outcomes = service.apply_group(changes, actor="src", scope=SCOPE)
    assert seen.count("INSERT INTO dossiers") == 1  # four creates, one multi-row INSERT: one transaction
    assert all(isinstance(outcome, IntakeResult) for outcome in outcomes)
    results = [outcome for outcome in outcomes if isinstance(outcome, IntakeResult)]
    assert [r.dossier_code for r in results] == [_code(n) for n in range(1, 6)]
    assert results[0].status is DossierStatus.PROCESSING
    assert results[0].revision == 2
    assert not results[0].created
    assert all(r.created and r.revision == 1 and len(r.message_ids) == 2 for r in results[1:])
    with db.sessions() as session:
        messages = session.execute(select(OutboxMessage.dossier_code, OutboxMessage.correlation_id)).all()
        audit = session.execute(select(AuditEntry.action, AuditEntry.actor, AuditEntry.target)).all()
    # each create's messages carry its own request's correlation id, not the group's first
    assert {(code, cid) for code, cid in messages if code != _code(1)} == {
        (_code(n), f"req-{n}") for n in range(2, 6)
    }
    assert sorted(audit) == sorted(
        [("dossier.upsert", "src", _code(1)), ("dossier.status", "src", _code(1))]
        + [("dossier.upsert", "src", _code(n)) for n in range(2, 6)]
    )


def test_a_refused_change_gets_its_error_and_the_others_are_written_alone(db: Database) -> None:
    """A change of the group is refused: the shared transaction is rolled back, then each
    change is written alone and answered with its own result or error; nothing of the refused
    one is stored."""
    service = IntakeService(db, settings())
    changes = [
        _create(1),
        _processing(99),  # no such dossier
        _create(2, agency_code="000.00.19.H42"),  # outside the caller's agencies
        _create(3),
    ]
    with statements(db) as seen:
        outcomes = service.apply_group(changes, actor="src", scope=SCOPE)
    assert isinstance(outcomes[0], IntakeResult)
    assert outcomes[0].created
    assert isinstance(outcomes[1], NotFoundError)
    assert isinstance(outcomes[2], PermissionDeniedError)
    assert isinstance(outcomes[3], IntakeResult)
    assert outcomes[3].created
    assert seen.count("INSERT INTO dossiers") == 2  # the two creates that stand, each alone
    with db.sessions() as session:
        codes = sorted(session.scalars(select(DossierRow.code)))
        messages = session.scalars(select(OutboxMessage.dossier_code)).all()
    assert codes == [_code(1), _code(3)]
    assert sorted(messages) == [_code(1), _code(1), _code(3), _code(3)]


def test_two_changes_of_one_dossier_in_a_group_apply_in_order(db: Database) -> None:
    service = IntakeService(db, settings())
    outcomes = service.apply_group([_create(7), _processing(7)], actor="src", scope=SCOPE)
    assert [o.revision for o in outcomes if isinstance(o, IntakeResult)] == [1, 2]
    assert service.get_dossier(_code(7)).status is DossierStatus.PROCESSING


# --- WriteGroups: lanes and groups --------------------------------------------------------------


class _Recorder:
    """An ``apply`` for :class:`WriteGroups` that records each group and can be held."""

    def __init__(self) -> None:
        self.groups: list[tuple[str, list[int]]] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def __call__(self, key: str, changes: Sequence[int]) -> list[int | Exception]:
        self.entered.set()
        assert self.release.wait(10)
        self.groups.append((key, list(changes)))
        return [ValueError(f"refused {c}") if c < 0 else c * 10 for c in changes]


async def _settle(groups: WriteGroups[str, int, int], waiting: int) -> None:
    for _ in range(500):
        if groups.waiting == waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{groups.waiting} waiting, not {waiting}")


@pytest.fixture
def threads() -> Iterator[WriteThreads]:
    pool = WriteThreads(2)
    yield pool
    pool.close()


def test_changes_that_wait_for_a_lane_are_written_together_by_caller(threads: WriteThreads) -> None:
    recorder = _Recorder()
    groups: WriteGroups[str, int, int] = WriteGroups(threads, recorder, lanes=1, most=3)

    async def scenario() -> list[int | BaseException]:
        recorder.release.clear()
        first = asyncio.ensure_future(groups.write("a", 1))  # a free lane: alone, at once
        await asyncio.get_running_loop().run_in_executor(None, recorder.entered.wait, 10)
        later = [
            asyncio.ensure_future(groups.write(key, n))
            for key, n in [("a", 2), ("b", 3), ("a", -4), ("a", 5), ("a", 6), ("b", 7)]
        ]
        await _settle(groups, 6)
        recorder.release.set()
        return await asyncio.gather(first, *later, return_exceptions=True)

    answers = asyncio.run(scenario())
    assert answers[0] == 10
    assert answers[1] == 20
    assert answers[2] == 30
    assert isinstance(answers[3], ValueError)
    assert str(answers[3]) == "refused -4"
    assert answers[4:] == [50, 60, 70]
    # alone first; then a caller at a time in the order they first waited, at most 3 a group
    assert recorder.groups == [("a", [1]), ("a", [2, -4, 5]), ("b", [3, 7]), ("a", [6])]
    assert groups.waiting == 0


def test_a_failed_group_answers_each_of_its_changes_and_the_lane_goes_on(threads: WriteThreads) -> None:
    calls: list[list[int]] = []

    def apply(_key: str, changes: Sequence[int]) -> list[int | Exception]:
        calls.append(list(changes))
        if len(calls) == 1:
            raise HubError("database gone")
        return list(changes)

    groups: WriteGroups[str, int, int] = WriteGroups(threads, apply, lanes=1)

    async def scenario() -> list[int | BaseException]:
        answers = await asyncio.gather(groups.write("a", 1), return_exceptions=True)
        return [*answers, await groups.write("a", 2)]

    answers = asyncio.run(scenario())
    assert isinstance(answers[0], HubError)
    assert answers[1] == 2


def test_a_caller_that_went_away_does_not_hold_up_its_group(threads: WriteThreads) -> None:
    recorder = _Recorder()
    groups: WriteGroups[str, int, int] = WriteGroups(threads, recorder, lanes=1)

    async def scenario() -> int:
        recorder.release.clear()
        first = asyncio.ensure_future(groups.write("a", 1))
        await asyncio.get_running_loop().run_in_executor(None, recorder.entered.wait, 10)
        gone = asyncio.ensure_future(groups.write("a", 2))
        kept = asyncio.ensure_future(groups.write("a", 3))
        await _settle(groups, 2)
        gone.cancel()
        recorder.release.set()
        await first
        return await kept

    assert asyncio.run(scenario()) == 30
    assert recorder.groups == [("a", [1]), ("a", [2, 3])]  # written all the same
