"""The one fault model every simulator shares: what can go wrong, for which calls, and when.

A :class:`Fault` names a ``kind`` — one of the shared :class:`FaultKind` transport faults, or a
protocol fault the simulator declares (a SOAP fault, DVCQG "already exists", an expired session
or token) — and selects the calls it hits: one ``operation`` (``None``: every operation the
simulator exposes to wildcard faults), ``times`` calls (``None``: until cleared), only the first
``attempts`` tries of each message (by the message id the simulator reads), and an outage
window (``after_seconds`` … ``after_seconds + for_seconds`` after it was added).

The :class:`FaultBook` holds a simulator's faults; ``take(operation, key)`` returns the first
fault that hits a call and counts it down. The first match wins, in the order the faults were
added — so "fail twice, then answer slowly" is two faults added in that order.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FaultKind(StrEnum):
    """Transport faults every simulator carries out the same way (:mod:`hub.simulators.harness`)."""

    LATENCY = "latency"
    """Wait ``delay_seconds``, then answer normally (a slow partner)."""
    TIMEOUT = "timeout"
    """Hold the call ``delay_seconds`` (0: the server's ``hang_seconds``), then close without an answer."""
    DROP = "drop"
    """Close the connection without an answer, before processing (nothing is stored)."""
    DROP_AFTER = "drop_after"
    """Process the call (its effects are kept), then close the connection without an answer."""
    STATUS = "status"
    """Answer HTTP ``status`` (500, 503, 429 …) with ``Retry-After`` when set, before processing."""


#: The shared kinds, as plain strings (``Fault.kind`` also takes a simulator's protocol kinds).
TRANSPORT_KINDS = frozenset(kind.value for kind in FaultKind)


class Fault(BaseModel):
    """One injected misbehaviour (the JSON body of ``PUT``/``POST /_control/faults``)."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    """A :class:`FaultKind` or one of the simulator's protocol fault kinds."""
    operation: str | None = None
    """The operation it hits (``SyncDocument``, ``login``, ``tsa`` …); ``None`` = any wildcard one."""
    times: int | None = Field(default=1, ge=1)
    """How many calls it hits; ``None`` = until cleared (or its window ends)."""
    attempts: int | None = Field(default=None, ge=1)
    """Only the first N tries of each message (same message id); ``None`` = every try."""
    status: int = Field(default=503, ge=100, le=599)
    """HTTP status of a ``status`` fault."""
    retry_after: str | None = None
    """``Retry-After`` sent with a ``status`` fault (and by protocol faults that answer busy)."""
    delay_seconds: float = Field(default=0.0, ge=0)
    """Wait before the fault's effect (the whole effect of ``latency``; ``timeout``'s hold)."""
    after_seconds: float = Field(default=0.0, ge=0)
    """Outage window: the fault starts hitting this long after it was added …"""
    for_seconds: float | None = Field(default=None, gt=0)
    """… and stops after this long (``None`` = no end)."""
    code: str | None = None
    """Protocol faults: the error code to answer with (e.g. DVCQG ``error_code``)."""
    message: str | None = None
    """Protocol faults: the message to answer with."""


class UnknownFaultKindError(ValueError):
    """A fault kind that is neither a shared one nor one of the simulator's protocol kinds."""


class _Entry:
    __slots__ = ("added_at", "fault", "id", "remaining")

    def __init__(self, fault_id: int, fault: Fault, added_at: float) -> None:
        self.id = fault_id
        self.fault = fault
        self.added_at = added_at
        self.remaining = fault.times


class FaultBook:
    """A simulator's injected faults, thread-safe (the test thread adds, the server thread takes)."""

    def __init__(
        self, protocol_kinds: Iterable[str] = (), *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.kinds = TRANSPORT_KINDS | frozenset(protocol_kinds)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        self._ids = itertools.count(1)
        self._tries: dict[str, int] = {}
        self._hits: dict[str, int] = {}

    def add(self, fault: Fault | None = None, /, **fields: Any) -> int:
        """Add a fault (or build one from ``fields``); returns its id for :meth:`remove`."""
        fault = fault or Fault(**fields)
        if fault.kind not in self.kinds:
            raise UnknownFaultKindError(
                f"unknown fault kind {fault.kind!r}; this simulator knows {sorted(self.kinds)}"
            )
        with self._lock:
            entry = _Entry(next(self._ids), fault, self._clock())
            self._entries.append(entry)
            return entry.id

    def replace(self, faults: Iterable[Fault]) -> list[int]:
        """Drop every fault and add ``faults`` in order (``PUT /_control/faults``)."""
        faults = list(faults)
        for fault in faults:
            if fault.kind not in self.kinds:
                raise UnknownFaultKindError(f"unknown fault kind {fault.kind!r}")
        self.clear()
        return [self.add(fault) for fault in faults]

    def remove(self, fault_id: int) -> None:
        with self._lock:
            self._entries = [e for e in self._entries if e.id != fault_id]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def reset(self) -> None:
        """Faults, per-message try counts and per-operation call counts all cleared."""
        with self._lock:
            self._entries.clear()
            self._tries.clear()
            self._hits.clear()

    def pending(self) -> list[Fault]:
        """Faults that can still hit (the remaining ``times`` shown), in order."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            return [e.fault.model_copy(update={"times": e.remaining}) for e in self._entries]

    def calls(self) -> dict[str, int]:
        """Calls seen per operation (whether a fault hit them or not)."""
        with self._lock:
            return dict(self._hits)

    def take(self, operation: str, key: str | None = None, *, wildcard: bool = True) -> Fault | None:
        """The fault hitting this call of ``operation`` (message id ``key``), counted down; or ``None``.

        ``wildcard=False`` keeps faults without an ``operation`` off this call (DVCQG's login).
        """
        now = self._clock()
        with self._lock:
            self._hits[operation] = self._hits.get(operation, 0) + 1
            tries = 0
            if key is not None:
                tries = self._tries[key] = self._tries.get(key, 0) + 1
            self._expire(now)
            for entry in self._entries:
                fault = entry.fault
                if fault.operation is None and not wildcard:
                    continue
                if fault.operation is not None and fault.operation != operation:
                    continue
                if fault.attempts is not None and (key is None or tries > fault.attempts):
                    continue
                if now < entry.added_at + fault.after_seconds:
                    continue
                if entry.remaining is not None:
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        self._entries.remove(entry)
                return fault
        return None

    def _expire(self, now: float) -> None:
        self._entries = [
            e
            for e in self._entries
            if e.fault.for_seconds is None or now < e.added_at + e.fault.after_seconds + e.fault.for_seconds
        ]
