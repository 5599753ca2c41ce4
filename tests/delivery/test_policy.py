"""Retry schedule, Retry-After clamping, throttling and the circuit breaker state machine."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connectors.http import parse_retry_after
from connectors.settings import BreakerSettings, RetrySettings
from hub.db.base import utcnow
from hub.delivery.breaker import BreakerState, CircuitBreaker
from hub.delivery.retry import RetryPolicy
from schemas.errors import (
    BusinessRejectionError,
    EndpointBusyError,
    EndpointTimeoutError,
    InvalidInputError,
    SoapFaultError,
    TransportError,
)
from tests.clocks import SettableClock

SCHEDULE = [5.0, 60.0, 300.0]


def policy(**overrides: object) -> RetryPolicy:
    settings = RetrySettings(
        schedule_seconds=SCHEDULE,
        jitter_ratio=0.2,
        retry_after_min_seconds=2,
        retry_after_max_seconds=600,
        throttle_min_seconds=30,
    ).model_copy(update=overrides)
    return RetryPolicy(settings, rng=random.Random(7))


@pytest.mark.parametrize(("attempt", "base"), [(1, 5.0), (2, 60.0), (3, 300.0)])
def test_schedule_with_jitter_bounds(attempt: int, base: float) -> None:
    retry_policy = policy()
    delays = [retry_policy.decide(attempt, EndpointBusyError("503")).delay for _ in range(200)]
    assert all(base * 0.8 <= d <= base * 1.2 for d in delays)
    assert max(delays) - min(delays) > base * 0.2  # jitter actually spreads retries


def test_no_jitter_gives_the_exact_schedule() -> None:
    retry_policy = policy(jitter_ratio=0.0)
    assert [retry_policy.decide(n, TransportError("x")).delay for n in (1, 2, 3)] == SCHEDULE


def test_attempts_exhausted_after_the_schedule() -> None:
    retry_policy = policy()
    assert retry_policy.max_attempts == 4
    decision = retry_policy.decide(4, EndpointBusyError("503"))
    assert not decision.retry
    assert decision.reason == "exhausted"


@pytest.mark.parametrize(
    "error",
    [
        BusinessRejectionError("rejected"),
        SoapFaultError("soap:Client"),
        InvalidInputError("bad payload"),
    ],
)
def test_permanent_errors_are_not_retried(error: Exception) -> None:
    decision = policy().decide(1, error)
    assert not decision.retry
    assert decision.reason == "permanent"


def test_unexpected_exceptions_are_retried() -> None:
    assert policy().decide(1, RuntimeError("bug")).retry


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(120.0, 120.0), (0.5, 2.0), (99999.0, 600.0)],
)
def test_retry_after_is_honoured_within_bounds(retry_after: float, expected: float) -> None:
    decision = policy(throttle_min_seconds=0).decide(1, EndpointBusyError("503", retry_after=retry_after))
    assert decision.delay == expected


def test_minimum_delay_after_429_and_timeouts() -> None:
    retry_policy = policy()
    too_many = EndpointBusyError("429", retry_after=1, status_code=429)
    timeout = EndpointTimeoutError("timed out")
    assert retry_policy.decide(1, too_many).delay == 30
    assert retry_policy.decide(1, timeout).delay >= 30
    assert retry_policy.decide(1, TransportError("refused")).delay < 30


def test_parse_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None


def test_breaker_opens_probes_and_closes() -> None:
    clock = SettableClock()
    breaker = CircuitBreaker(
        "p", BreakerSettings(failure_threshold=3, open_seconds=10, half_open_probes=1), clock
    )
    for _ in range(2):
        assert breaker.record_failure("503", probe=False) is None
    transition = breaker.record_failure("503", probe=False)
    assert transition is not None
    assert transition.state is BreakerState.OPEN
    assert breaker.capacity() == 0
    assert breaker.try_acquire() == (False, False)

    clock.now = 10.0
    assert breaker.capacity() == 1
    assert breaker.try_acquire() == (True, True)
    assert breaker.try_acquire() == (False, False)  # one probe at a time
    reopened = breaker.record_failure("503", probe=True)
    assert reopened is not None
    assert reopened.state is BreakerState.OPEN

    clock.now = 20.0
    assert breaker.try_acquire() == (True, True)
    closed = breaker.record_success(probe=True)
    assert closed is not None
    assert closed.state is BreakerState.CLOSED
    assert breaker.capacity() is None
    assert breaker.consecutive_failures == 0


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker("p", BreakerSettings(failure_threshold=2), SettableClock())
    breaker.record_failure("x", probe=False)
    breaker.record_success(probe=False)
    assert breaker.record_failure("x", probe=False) is None
    assert breaker.state is BreakerState.CLOSED


def test_probes_come_soon_after_opening_then_back_off_up_to_open_seconds() -> None:
    """First probe ``probe_interval_seconds`` after opening; each failed probe doubles the wait,
    capped at ``open_seconds``; closing starts over."""
    clock = SettableClock()
    settings = BreakerSettings(failure_threshold=1, probe_interval_seconds=5, open_seconds=30)
    breaker = CircuitBreaker("p", settings, clock)
    waits = []
    breaker.record_failure("503", probe=False)
    for _ in range(5):
        waits.append(breaker.seconds_until_half_open())
        clock.now += breaker.seconds_until_half_open()
        assert breaker.try_acquire() == (True, True)
        breaker.record_failure("503", probe=True)
    assert waits == [5, 10, 20, 30, 30]
    clock.now += 30
    assert breaker.try_acquire() == (True, True)
    closed = breaker.record_success(probe=True)
    assert closed is not None
    breaker.record_failure("503", probe=False)
    assert breaker.seconds_until_half_open() == 5


def test_closing_tells_when_the_run_of_failures_began() -> None:
    clock = SettableClock()
    breaker = CircuitBreaker("p", BreakerSettings(failure_threshold=2, probe_interval_seconds=1), clock)
    assert breaker.failing_since is None
    before = utcnow()
    breaker.record_failure("503", probe=False)
    began = breaker.failing_since
    assert began is not None
    assert began >= before
    breaker.record_failure("503", probe=False)
    assert breaker.failing_since == began  # the run's start, not the last failure
    clock.now = 1.0
    assert breaker.try_acquire() == (True, True)
    closed = breaker.record_success(probe=True)
    assert closed is not None
    assert closed.state is BreakerState.CLOSED
    assert closed.failing_since == began
    assert breaker.failing_since is None
