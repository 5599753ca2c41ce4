"""One process's telemetry: its metrics registry and its tracer, made by :mod:`hub.runtime`.

:meth:`Telemetry.delivery_attempt` is the worker's one call per finished attempt: a counter,
two histograms, one log line (logger ``hub.delivery.attempt``, with the correlation id) and,
when tracing is on, a span. It takes plain attributes (:class:`AttemptMessage`,
:class:`AttemptResult`), so this package imports neither the worker nor the API.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from hub.telemetry.metrics import HubMetrics
from hub.telemetry.tracing import Tracing

attempt_log = logging.getLogger("hub.delivery.attempt")

_DELIVERED = "delivered"


class AttemptMessage(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def message_id(self) -> str: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def dossier_code(self) -> str | None: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def created_at(self) -> datetime | None: ...


class AttemptResult(Protocol):
    @property
    def attempt_no(self) -> int: ...
    @property
    def outcome(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def finished_at(self) -> datetime: ...
    @property
    def status_code(self) -> int | None: ...
    @property
    def error_class(self) -> str | None: ...


@dataclass
class Telemetry:
    """Metrics and traces of one hub process (shared by its API and its worker)."""

    metrics: HubMetrics = field(default_factory=HubMetrics)
    tracing: Tracing = field(default_factory=Tracing.disabled)

    def delivery_attempt(self, message: AttemptMessage, result: AttemptResult) -> None:
        outcome = str(result.outcome)
        seconds = (result.finished_at - result.started_at).total_seconds()
        enqueued_for = (
            (result.finished_at - message.created_at).total_seconds()
            if outcome == _DELIVERED and message.created_at is not None
            else None
        )
        self.metrics.observe_attempt(message.endpoint, outcome, seconds, enqueued_for)
        if attempt_log.isEnabledFor(logging.INFO):  # its extras are built only for a log line
            attempt_log.info(
                "attempt %d of %s to %s: %s",
                result.attempt_no,
                message.message_id,
                message.endpoint,
                outcome,
                extra={
                    "correlation_id": message.correlation_id,
                    "seq": message.seq,
                    "dossier_code": message.dossier_code,
                    "outcome": outcome,
                    "status_code": result.status_code,
                    "error_class": result.error_class,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
        if self.tracing.enabled:
            self.tracing.record_span(
                f"deliver {message.endpoint}",
                result.started_at,
                result.finished_at,
                {
                    "hub.correlation_id": message.correlation_id,
                    "hub.endpoint": message.endpoint,
                    "hub.outbox.seq": message.seq,
                    "hub.delivery.attempt": result.attempt_no,
                    "hub.delivery.outcome": outcome,
                    "hub.dossier_code": message.dossier_code,
                    "messaging.message.id": message.message_id,
                    "http.response.status_code": result.status_code,
                },
                error=None if outcome == _DELIVERED else (result.error_class or outcome),
            )
