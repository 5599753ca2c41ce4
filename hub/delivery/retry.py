"""Retry policy per endpoint (docs/delivery.md §3 and §11.3).

A Svix-style explicit schedule with ±jitter, computed with tenacity wait strategies:
the delay before attempt ``n + 1`` is ``schedule[n - 1] × (1 ± jitter)``. A ``Retry-After``
hint is honoured but clamped to the endpoint's bounds; after HTTP 429 or a timeout the delay
is at least ``throttle_min_seconds``. Permanent errors are never retried; when the schedule
is exhausted the message goes to the dead-letter queue.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tenacity import RetryCallState, Retrying, stop_after_attempt
from tenacity.wait import wait_base

from connectors.settings import RetrySettings
from schemas.errors import HubError, RetryableError


class wait_schedule(wait_base):
    """Tenacity wait strategy: the explicit schedule, last entry repeated, with ±jitter."""

    def __init__(self, schedule: list[float], jitter_ratio: float, rng: random.Random | None = None) -> None:
        if not schedule:
            schedule = [0.0]
        self.schedule = list(schedule)
        self.jitter_ratio = jitter_ratio
        self._rng = rng or random.Random()

    def __call__(self, retry_state: RetryCallState) -> float:
        index = min(max(retry_state.attempt_number, 1), len(self.schedule)) - 1
        base = self.schedule[index]
        if self.jitter_ratio <= 0:
            return base
        return max(0.0, base * (1 + self._rng.uniform(-self.jitter_ratio, self.jitter_ratio)))


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after a failed attempt: retry after ``delay`` seconds, or dead-letter."""

    retry: bool
    delay: float = 0.0
    reason: str = ""


def is_throttle(error: BaseException) -> bool:
    """True after HTTP 429 or a timeout (``details`` keys set by the connectors)."""
    if isinstance(error, HubError):
        return error.details.get("status_code") == 429 or bool(error.details.get("timeout"))
    return False


def is_retryable(error: BaseException) -> bool:
    """Retryable hub errors, and unexpected exceptions (bugs or library surprises)."""
    if isinstance(error, HubError):
        return error.retryable
    return True


def _call_state(attempt_number: int, error: BaseException) -> RetryCallState:
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt_number
    state.set_exception((type(error), error, error.__traceback__))
    return state


class RetryPolicy:
    """Decides whether and when a failed delivery is tried again, for one endpoint."""

    def __init__(self, settings: RetrySettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.wait = wait_schedule(settings.schedule_seconds, settings.jitter_ratio, rng)
        self.stop = stop_after_attempt(settings.max_attempts)

    @property
    def max_attempts(self) -> int:
        return self.settings.max_attempts

    def decide(self, attempt_number: int, error: BaseException) -> RetryDecision:
        """Decide after attempt ``attempt_number`` (1-based) failed with ``error``."""
        if not is_retryable(error):
            return RetryDecision(False, reason="permanent")
        state = _call_state(attempt_number, error)
        if self.stop(state):
            return RetryDecision(False, reason="exhausted")
        delay = self.wait(state)
        retry_after = getattr(error, "retry_after", None) if isinstance(error, RetryableError) else None
        if retry_after is not None:
            delay = min(
                max(float(retry_after), self.settings.retry_after_min_seconds),
                self.settings.retry_after_max_seconds,
            )
        if is_throttle(error):
            delay = max(delay, self.settings.throttle_min_seconds)
        return RetryDecision(True, delay=delay, reason="scheduled")
