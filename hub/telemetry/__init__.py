"""Observability: Prometheus metrics, the correlation id of logs, optional OpenTelemetry traces.

Owned by the composition root (:mod:`hub.runtime`), which builds one :class:`Telemetry` per
process and hands it to the API and the worker (docs/deployment.md §6). Importing this package
imports neither ``prometheus_client`` nor OpenTelemetry.
"""
