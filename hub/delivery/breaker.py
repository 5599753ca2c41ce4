"""Per-endpoint circuit breaker (docs/delivery.md §7, §11.4).

``failure_threshold`` consecutive retryable failures open the circuit; while open the
endpoint's messages are not claimed. The circuit turns half-open ``probe_interval_seconds``
after it opened and lets ``half_open_probes`` deliveries through; a success closes it, a
failure re-opens it for twice as long, up to ``open_seconds`` (the exponential probing of
Envoy's outlier ejection and WSO2's endpoint suspension: a portal back after a short outage is
found within seconds, a long outage costs few probes). Permanent errors (the portal answered
and refused) prove the endpoint alive and count as successes.

The breaker is local to one worker process; its state is published to ``endpoint_health``
for operators. It remembers when its run of failures began (:attr:`CircuitBreaker.failing_since`,
wall clock) so the worker can make due at once the messages the outage pushed back when the
circuit closes.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from connectors.settings import BreakerSettings
from hub.db.base import utcnow


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
    #: On closing: when the run of failures that the closing ends began (wall clock).
    failing_since: datetime | None = None


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
        #: When the current run of retryable failures began (``None``: not failing).
        self.failing_since: datetime | None = None
        #: Monotonic time the circuit last opened.
        self.opened_at = 0.0
        self._openings = 0  # since it last closed
        self._probes_in_flight = 0

    @property
    def open_for(self) -> float:
        """Seconds the circuit stays open this time: the probe interval, doubled per failed probe,
        capped at ``open_seconds``."""
        first = min(self.settings.probe_interval_seconds, self.settings.open_seconds)
        return float(min(self.settings.open_seconds, first * 2 ** max(0, self._openings - 1)))

    def _refresh(self) -> BreakerTransition | None:
        if self.state is BreakerState.OPEN and self._clock() - self.opened_at >= self.open_for:
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
        return max(0.0, self.open_for - (self._clock() - self.opened_at))

    def try_acquire(self) -> tuple[bool, bool]:
        """Called just before sending: ``(allowed, is_probe)``; not allowed → release the message."""
        self._refresh()
        if self.state is BreakerState.CLOSED:
            return True, False
        if self.state is BreakerState.HALF_OPEN and self._probes_in_flight < self.settings.half_open_probes:
            self._probes_in_flight += 1
            return True, True
        return False, False

    def release_probe(self) -> None:
        """A probe that was not sent after all (fenced): it neither succeeded nor failed."""
        self._probes_in_flight = max(0, self._probes_in_flight - 1)

    def record_success(self, *, probe: bool) -> BreakerTransition | None:
        if probe:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)
        previous = self.state
        failing_since, self.failing_since = self.failing_since, None
        self.consecutive_failures = 0
        if previous is not BreakerState.CLOSED:
            self.state = BreakerState.CLOSED
            self._openings = 0
            return BreakerTransition(self.endpoint, self.state, 0, failing_since=failing_since)
        return None

    def record_failure(self, error: str, *, probe: bool) -> BreakerTransition | None:
        if probe:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)
        if self.failing_since is None:
            self.failing_since = utcnow()
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.consecutive_failures >= self.settings.failure_threshold
        ):
            self.state = BreakerState.OPEN
            self.opened_at = self._clock()
            self._openings += 1
            return BreakerTransition(self.endpoint, self.state, self.consecutive_failures, error)
        return None
