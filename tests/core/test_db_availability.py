"""What a database error means, and how a running hub reports an outage (hub.db.availability)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import psycopg
import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from hub.db.availability import DatabaseProblem, OutageReporter, diagnose
from tests.clocks import SettableClock


def _wrapped(original: Exception) -> OperationalError:
    """As SQLAlchemy raises it."""
    return OperationalError("SELECT 1", {}, original)


@pytest.mark.parametrize(
    ("original", "problem", "reason"),
    [
        (
            psycopg.OperationalError(
                'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
                'FATAL:  database "hub" does not exist'
            ),
            DatabaseProblem.MISSING,
            'database "hub" does not exist',
        ),
        (
            psycopg.OperationalError(
                'connection failed: connection to server at "db", port 5432 failed: '
                'FATAL:  password authentication failed for user "hub"'
            ),
            DatabaseProblem.AUTHENTICATION,
            'password authentication failed for user "hub"',
        ),
        (
            psycopg.OperationalError(
                'connection failed: connection to server at "127.0.0.1", port 5999 failed: '
                "Connection refused\n"
                "\tIs the server running on that host and accepting TCP/IP connections?"
            ),
            DatabaseProblem.UNREACHABLE,
            'connection to server at "127.0.0.1", port 5999 failed: Connection refused',
        ),
        (
            psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
            DatabaseProblem.UNREACHABLE,
            "consuming input failed: server closed the connection unexpectedly",
        ),
        (sqlite3.OperationalError("attempt to write a readonly database"), DatabaseProblem.READ_ONLY, None),
        (sqlite3.OperationalError("database is locked"), DatabaseProblem.UNREACHABLE, None),
        (sqlite3.OperationalError("no such table: outbox_messages"), DatabaseProblem.SCHEMA, None),
        (sqlite3.OperationalError('near "SELEC": syntax error'), DatabaseProblem.OTHER, None),
    ],
)
def test_diagnose(original: Exception, problem: DatabaseProblem, reason: str | None) -> None:
    diagnosis = diagnose(_wrapped(original))
    assert diagnosis.problem is problem
    assert "\n" not in diagnosis.reason
    if reason is not None:
        assert diagnosis.reason == reason
    assert diagnosis.heals is (problem is DatabaseProblem.UNREACHABLE)


def test_diagnose_reads_sqlstates() -> None:
    assert diagnose(psycopg.errors.AdminShutdown("terminating connection")).heals
    assert diagnose(psycopg.errors.ReadOnlySqlTransaction("read-only")).problem is DatabaseProblem.READ_ONLY
    assert (
        diagnose(ProgrammingError("x", {}, psycopg.errors.UndefinedTable("nope"))).problem
        is DatabaseProblem.SCHEMA
    )
    assert diagnose(ConnectionResetError()).heals
    assert diagnose(ValueError("a bug")).problem is DatabaseProblem.OTHER


REFUSED = _wrapped(psycopg.OperationalError("connection failed: Connection refused"))
READ_ONLY = _wrapped(sqlite3.OperationalError("attempt to write a readonly database"))


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hub.db")
    clock = SettableClock(100.0)
    reporter = OutageReporter(first_pause=0.2, max_pause=5.0, clock=clock)
    pauses = [reporter.failed("claim", REFUSED) for _ in range(8)]
    for _ in range(20):
        reporter.failed("flush", REFUSED)
        reporter.failed("heartbeat", REFUSED)
    assert pauses == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]  # doubled, capped
    assert not reporter.reachable
    assert reporter.reason == "Connection refused"
    clock.now += 12.34
    reporter.succeeded("heartbeat")
    reporter.succeeded("claim")
    assert reporter.reachable
    assert reporter.failed("claim", REFUSED) == 0.2  # a new outage starts over
    assert [r.getMessage() for r in caplog.records] == [
        "database unreachable: Connection refused (claim), retrying with backoff",
        "database reachable again after 12.3 s",
        "database unreachable: Connection refused (claim), retrying with backoff",
    ]


def test_other_failures_are_logged_once_per_operation(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hub.db")
    reporter = OutageReporter()
    for _ in range(10):
        reporter.failed("flush", READ_ONLY)
    reporter.failed("bulk jobs", ValueError("a bug"))
    assert reporter.reachable  # reads work: not an outage
    assert reporter.failing() == {"flush": "read_only", "bulk jobs": "other"}
    reporter.succeeded("flush")
    assert reporter.failing() == {"bulk jobs": "other"}
    # A masking handler left installed by an earlier in-process hub turns exc_info into exc_text.
    messages = [(r.levelname, r.getMessage(), bool(r.exc_info or r.exc_text)) for r in caplog.records]
    assert messages == [
        (
            "ERROR",
            "database flush failing: attempt to write a readonly database, retrying with backoff",
            False,
        ),
        ("ERROR", "database bulk jobs failing: a bug, retrying with backoff", True),  # unknown: traceback
        ("WARNING", "database flush works again after 10 failure(s)", False),
    ]


async def test_a_pause_ends_when_the_database_is_back() -> None:
    reporter = OutageReporter()
    reporter.failed("claim", REFUSED)
    pausing = asyncio.create_task(reporter.pause(3600))
    await asyncio.sleep(0)
    reporter.succeeded("claim")
    await asyncio.wait_for(pausing, timeout=30)  # not an hour


def test_a_call_ending_in_the_outages_first_moments_does_not_end_it(caplog: pytest.LogCaptureFixture) -> None:
    """A stopping PostgreSQL ends its sessions one by one: the listening connection fails while
    a claim on another still answers. That claim is no proof the database is back (seen as
    "unreachable / reachable again after 0.0 s / unreachable" in one stop)."""
    caplog.set_level(logging.INFO, logger="hub.db")
    clock = SettableClock(100.0)
    reporter = OutageReporter(first_pause=0.2, clock=clock)
    reporter.failed("listen", REFUSED)
    clock.now += 0.01
    reporter.succeeded("claim")  # under way before the outage
    assert not reporter.reachable
    clock.now += 0.5
    reporter.succeeded("heartbeat")  # later: any operation that works ends it
    assert reporter.reachable
    assert [r.getMessage() for r in caplog.records] == [
        "database unreachable: Connection refused (listen), retrying with backoff",
        "database reachable again after 0.5 s",
    ]


async def test_a_pause_ends_on_stop() -> None:
    stop = asyncio.Event()
    pausing = asyncio.create_task(OutageReporter().pause(3600, stop))
    await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(pausing, timeout=30)
