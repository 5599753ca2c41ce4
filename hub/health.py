"""Readiness of a hub process: what ``GET /readyz`` answers (docs/delivery.md §13).

Ready means: the database answers, its schema is at the latest migration, and — when the
process runs the delivery worker (``hub serve`` without ``--no-worker``) — the worker's claim
loop has beaten recently and its database calls work (the shared
:class:`~hub.db.availability.OutageReporter`). Otherwise the answer is 503 with the reasons,
so a load balancer or orchestrator stops routing to the process until it heals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hub.db.availability import OutageReporter, diagnose
from hub.db.migrate import current_heads, expected_heads
from hub.db.session import Database

#: A worker whose claim loop has not beaten for this long is reported stuck (its longest
#: regular pause is the poll interval or the capped database backoff, a few seconds).
WORKER_STALE_SECONDS = 30.0


class WorkerPulse:
    """The in-process delivery worker's sign of life: its claim loop beats on every turn."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: float | None = None
        self.stopped = False

    def beat(self) -> None:
        self._last = self._clock()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True

    def age(self) -> float | None:
        """Seconds since the last beat (``None``: never beaten)."""
        return None if self._last is None else self._clock() - self._last


@dataclass
class HubHealth:
    """What one hub process knows of its own health, shared by its API and its worker."""

    database: OutageReporter = field(default_factory=OutageReporter)
    #: The in-process worker's pulse; ``None`` when the process runs no worker.
    worker: WorkerPulse | None = None
    stale_after_seconds: float = WORKER_STALE_SECONDS
    _heads: frozenset[str] | None = None

    def expected_heads(self) -> frozenset[str]:
        if self._heads is None:
            self._heads = expected_heads()
        return self._heads


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reasons: list[str]
    details: dict[str, Any]


def check_readiness(db: Database, health: HubHealth) -> Readiness:
    """Ask the database (one short read) and the worker's state whether the process is ready."""
    reasons: list[str] = []
    details: dict[str, Any] = {"database": db.engine.dialect.name}
    try:
        with db.reader.connect() as connection:
            current = current_heads(connection)
    except Exception as exc:  # noqa: BLE001  # any driver failure means "not ready", with its reason
        diagnosis = diagnose(exc)
        reasons.append(f"database {diagnosis.problem.value}: {diagnosis.reason}")
    else:
        expected = health.expected_heads()
        if current != expected:
            reasons.append(
                f"database schema is at {', '.join(sorted(current)) or 'empty'}, "
                f"expected {', '.join(sorted(expected))}: run 'hub db upgrade'"
            )
    pulse = health.worker
    if pulse is not None:
        age = pulse.age()
        worker: dict[str, Any] = {"last_beat_seconds_ago": None if age is None else round(age, 1)}
        if pulse.stopped:
            reasons.append("worker stopped")
        elif age is None:
            reasons.append("worker not started yet")
        elif age > health.stale_after_seconds:
            reasons.append(f"worker heartbeat stale: last beat {age:.0f} s ago")
        outage = health.database
        if not outage.reachable:
            reasons.append(f"worker: database unreachable for {outage.down_for():.1f} s: {outage.reason}")
        for operation, problem in sorted(outage.failing().items()):
            reasons.append(f"worker: database {operation} failing ({problem})")
        details["worker"] = worker
    return Readiness(ready=not reasons, reasons=reasons, details=details)
