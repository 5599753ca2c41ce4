"""Per-endpoint circuit breaker (docs/delivery.md §7, §11.4).

``failure_threshold`` consecutive retryable failures open the circuit; while open the
endpoint's messages are not claimed. After ``open_seconds`` the circuit is half-open and lets
``half_open_probes`` deliveries through; a success closes it, a failure re-opens it. Permanent
errors (the portal answered and refused) prove the endpoint alive and count as successes.

The breaker is local to one worker process; its state is published to ``endpoint_health``
for operators.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from connectors.settings import BreakerSettings


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    endpoint: str
    state: BreakerState
    consecutive_failures: int
    error: str | None = None


class CircuitBreaker:
    """State machine for one endpoint. Not thread-safe: used from the worker's event loop."""

    def __init__(
        self, endpoint: str, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self._clock = clock
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self._opened_at = 0.0
        self._probes_in_flight = 0

    def _refresh(self) -> BreakerTransition | None:
        if self.state is BreakerState.OPEN and self._clock() - self._opened_at >= self.settings.open_seconds:
            self.state = BreakerState.HALF_OPEN
            self._probes_in_flight = 0
            return BreakerTransition(self.endpoint, self.state, self.consecutive_failures)
        return None

    def capacity(self) -> int | None:
        """How many new deliveries may start now: ``None`` = unlimited by the breaker."""
        self._refresh()
        if self.state is BreakerState.CLOSED:
            return None
        if self.state is BreakerState.OPEN:
            return 0
        return max(0, self.settings.half_open_probes - self._probes_in_flight)

    def seconds_until_half_open(self) -> float:
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.settings.open_seconds - (self._clock() - self._opened_at))

    def try_acquire(self) -> tuple[bool, bool]:
        """Called just before sending: ``(allowed, is_probe)``; not allowed → release the message."""
        self._refresh()
        if self.state is BreakerState.CLOSED:
            return True, False
        if self.state is BreakerState.HALF_OPEN and self._probes_in_flight < self.settings.half_open_probes:
            self._probes_in_flight += 1
            return True, True
        return False, False

    def record_success(self, *, probe: bool) -> BreakerTransition | None:
        if probe:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)
        previous = self.state
        self.consecutive_failures = 0
        if previous is not BreakerState.CLOSED:
            self.state = BreakerState.CLOSED
            return BreakerTransition(self.endpoint, self.state, 0)
        return None

    def record_failure(self, error: str, *, probe: bool) -> BreakerTransition | None:
        if probe:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.consecutive_failures >= self.settings.failure_threshold
        ):
            self.state = BreakerState.OPEN
            self._opened_at = self._clock()
            return BreakerTransition(self.endpoint, self.state, self.consecutive_failures, error)
        return None
