"""Optional OpenTelemetry traces (off by default; docs/deployment.md §6).

When ``tracing.enabled`` is set the runtime builds a :class:`Tracing` with its own
``TracerProvider`` (never the global one) exporting over OTLP/HTTP in batches. The API makes a
server span per request (continuing a caller's W3C ``traceparent``), the worker a client span
per delivery attempt. Both carry ``hub.correlation_id``: a delivery runs long after its request
has been answered, in another process perhaps, so it is a trace of its own, found by that
attribute. When tracing is off nothing of OpenTelemetry is imported (the modules are imported
in :meth:`Tracing.start` only) and :meth:`Tracing.span` costs a ``nullcontext``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

    from hub.config import TracingSettings

AttributeValue = str | int | float | bool


class Tracing:
    """Spans of one process, or nothing (:meth:`disabled`)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._provider = provider
        self._tracer: Tracer | None = provider.get_tracer("hub") if provider is not None else None

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    @classmethod
    def disabled(cls) -> Tracing:
        return cls()

    @classmethod
    def start(cls, settings: TracingSettings, *, exporter: SpanExporter | None = None) -> Tracing:
        """A provider exporting to ``settings.endpoint`` (or to ``exporter``, synchronously:
        the seam tests use with the SDK's ``InMemorySpanExporter``); disabled when off."""
        if not settings.enabled:
            return cls.disabled()
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: settings.service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        )
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.endpoint)))
        else:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        return cls(provider)

    @contextlib.contextmanager
    def server_span(
        self, name: str, headers: Mapping[str, str], attributes: Mapping[str, AttributeValue]
    ) -> Iterator[Span | None]:
        """A server span continuing the ``traceparent`` of ``headers`` (``None`` when off)."""
        if self._tracer is None:
            yield None
            return
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = TraceContextTextMapPropagator().extract(dict(headers))
        with self._tracer.start_as_current_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=dict(attributes)
        ) as span:
            yield span

    def record_span(
        self,
        name: str,
        started: datetime,
        finished: datetime,
        attributes: Mapping[str, AttributeValue | None],
        *,
        error: str | None = None,
    ) -> None:
        """A client span of something already finished (a delivery attempt), with its times."""
        if self._tracer is None:
            return
        from opentelemetry.trace import SpanKind, Status, StatusCode

        span = self._tracer.start_span(
            name,
            kind=SpanKind.CLIENT,
            start_time=_nanoseconds(started),
            attributes={key: value for key, value in attributes.items() if value is not None},
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=_nanoseconds(finished))

    def shutdown(self) -> None:
        """Export what is buffered and stop (the runtime's disposal)."""
        if self._provider is not None:
            self._provider.shutdown()


def set_attributes(span: Any, attributes: Mapping[str, AttributeValue]) -> None:
    if span is not None:
        span.set_attributes(dict(attributes))


def _nanoseconds(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000_000)
