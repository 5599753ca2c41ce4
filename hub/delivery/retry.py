"""Retry policy per endpoint (docs/delivery.md §3 and §11.3).

A Svix-style explicit schedule with ±jitter, as plain code: the delay before attempt
``n + 1`` is ``schedule[n - 1] × (1 ± jitter)``, the last entry repeated. A ``Retry-After``
hint (RFC 9110 §10.2.3) is honoured but clamped to the endpoint's bounds; after HTTP 429 or
a timeout (:class:`~schemas.errors.EndpointTimeoutError`) the delay is at least
``throttle_min_seconds``. Permanent errors are never retried; when the schedule is exhausted
the message goes to the dead-letter queue. (tenacity stays where a call is retried in place:
portal login, TSA, OAuth2 token.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from connectors.settings import RetrySettings
from schemas.errors import EndpointTimeoutError, HubError, RetryableError


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after a failed attempt: retry after ``delay`` seconds, or dead-letter."""

    retry: bool
    delay: float = 0.0
    reason: str = ""


def is_throttle(error: BaseException) -> bool:
    """True after HTTP 429 or a timeout: the endpoint asks the hub to slow down."""
    if isinstance(error, EndpointTimeoutError):
        return True
    return isinstance(error, HubError) and error.status_code == 429


def is_retryable(error: BaseException) -> bool:
    """Retryable hub errors, and unexpected exceptions (bugs or library surprises)."""
    if isinstance(error, HubError):
        return error.retryable
    return True


class RetryPolicy:
    """Decides whether and when a failed delivery is tried again, for one endpoint."""

    def __init__(self, settings: RetrySettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.schedule: list[float] = list(settings.schedule_seconds) or [0.0]
        self._rng = rng or random.Random()

    @property
    def max_attempts(self) -> int:
        return self.settings.max_attempts

    def scheduled_delay(self, attempt_number: int) -> float:
        """The schedule's entry for attempt ``attempt_number`` (last one repeated), ±jitter."""
        index = min(max(attempt_number, 1), len(self.schedule)) - 1
        base = self.schedule[index]
        jitter = self.settings.jitter_ratio
        if jitter <= 0:
            return base
        return max(0.0, base * (1 + self._rng.uniform(-jitter, jitter)))

    def decide(self, attempt_number: int, error: BaseException) -> RetryDecision:
        """Decide after attempt ``attempt_number`` (1-based) failed with ``error``."""
        if not is_retryable(error):
            return RetryDecision(False, reason="permanent")
        if attempt_number >= self.max_attempts:
            return RetryDecision(False, reason="exhausted")
        delay = self.scheduled_delay(attempt_number)
        retry_after = error.retry_after if isinstance(error, RetryableError) else None
        if retry_after is not None:
            delay = min(
                max(float(retry_after), self.settings.retry_after_min_seconds),
                self.settings.retry_after_max_seconds,
            )
        if is_throttle(error):
            delay = max(delay, self.settings.throttle_min_seconds)
        return RetryDecision(True, delay=delay, reason="scheduled")
