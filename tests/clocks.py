"""A stand-in for ``time.monotonic`` that moves only when a test moves it, for the code that
takes its clock as an argument (circuit breaker, fault book, outage reporter, readiness)."""

from __future__ import annotations


class SettableClock:
    """Returns ``now`` when called; the test sets or advances ``now``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
