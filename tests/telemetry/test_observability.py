"""Metrics, the correlation id and traces of a live hub (docs/deployment.md §6).

A real hub (API and worker, started by the runtime) delivers to a real webhook sink; the
metrics are scraped over HTTP as Prometheus would, and the logs read as the JSON lines the
hub writes.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from hub import runtime
from hub.db.models import EndpointHealth, OutboxMessage
from hub.logging import configure_logging
from hub.simulators.sink import WebhookSink
from tests.api.livehub import LiveHub, dossier_json, hub_settings, live_hub

REQUEST_ID = "req-7f3a.intake:42"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as server:
        yield server


@pytest.fixture
def json_log() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The hub's own log handler (JSON lines, masked, correlation id) writing to a buffer."""
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging("INFO", stream=buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    for handler in list(root.handlers):
        if getattr(handler, "_hub_handler", False):
            root.removeHandler(handler)
    root.setLevel(level)


def _endpoints(sink: WebhookSink) -> dict[str, Any]:
    return {
        "endpoints": {
            "portal": {"kind": "webhook", "url": sink.url},
            # nothing listens there: its messages wait for their retry (queue depth, oldest age)
            "down": {"kind": "webhook", "url": "http://127.0.0.1:9/down"},
        },
        "routing": [{"kinds": ["dossier.sync", "dossier.progress"], "endpoints": ["portal", "down"]}],
    }


def _scrape(hub: LiveHub, **client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``(sample name, sorted labels) → value`` of one scrape of ``/metrics``."""
    with hub.client(**client) as http:
        response = http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_metrics_and_correlation_from_intake_to_delivery(
    database_url: str, tmp_path: Path, sink: WebhookSink, json_log: Callable[[], list[dict[str, Any]]]
) -> None:
    overrides = {**_endpoints(sink), "metrics": {"database_cache_seconds": 0}}
    with live_hub(database_url, tmp_path / "data", worker=True, **overrides) as hub:
        body = {"dossier": dossier_json(), "version": 1}
        with hub.client("source", headers={"X-Request-ID": REQUEST_ID}) as http:
            created = http.post("/api/v1/dossiers", json=body)
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"] == REQUEST_ID
        _wait_for(lambda: len(sink.arrivals()) == 1)
        _wait_for(lambda: len([line for line in json_log() if line["logger"] == "hub.delivery.attempt"]) == 2)

        with hub.client() as http:  # the lookups of the citizens
            code = body["dossier"]["code"]
            assert http.get(f"/api/v1/lookup/{code}", params={"id_number": "001099012345"}).status_code == 200
            assert http.get(f"/api/v1/lookup/{code}", params={"id_number": "001099099999"}).status_code == 404
            assert http.get("/tra-cuu", params={"MHS": code}).status_code == 200
        with hub.client("portal") as http:
            sms = http.post("/api/v1/sms/inbound", json={"src": "0912345678", "msgbody": f"HS {code}"})
        assert sms.status_code == 200, sms.text

        samples = _scrape(hub, headers={"Authorization": f"Bearer {hub.tokens['technician']}"})
        with hub.db.sessions() as session:
            rows = session.execute(select(OutboxMessage.endpoint, OutboxMessage.correlation_id)).all()

    # the correlation id: outbox rows, the sink's header, the intake and attempt log lines
    assert sorted(rows) == [("down", REQUEST_ID), ("portal", REQUEST_ID)]
    (arrival,) = sink.arrivals()
    assert arrival.request_id == REQUEST_ID
    lines = json_log()
    intake = [line for line in lines if line["logger"] == "hub.intake"]
    assert len(intake) == 1
    assert intake[0]["correlation_id"] == REQUEST_ID
    assert code in intake[0]["msg"]
    attempts = {line["outcome"]: line for line in lines if line["logger"] == "hub.delivery.attempt"}
    assert set(attempts) == {"delivered", "retry"}
    for attempt in attempts.values():
        assert attempt["correlation_id"] == REQUEST_ID
        assert attempt["dossier_code"] == code
    assert attempts["retry"]["error_class"] == "TransportError"
    assert "001099012345" not in json.dumps(lines)  # still masked

    # the metrics
    def value(name: str, **labels: str) -> float:
        return samples[name, tuple(sorted(labels.items()))]

    assert value("hub_delivery_attempts_total", endpoint="portal", outcome="delivered") == 1
    assert value("hub_delivery_attempt_duration_seconds_count", endpoint="portal") == 1
    assert value("hub_delivery_latency_seconds_count", endpoint="portal") == 1
    assert 0 < value("hub_delivery_latency_seconds_sum", endpoint="portal") < 20
    assert value("hub_outbox_messages", endpoint="portal", state="pending") == 0
    assert value("hub_delivery_attempts_total", endpoint="down", outcome="retry") == 1
    assert value("hub_delivery_latency_seconds_count", endpoint="down") == 0  # not delivered
    assert value("hub_outbox_messages", endpoint="down", state="pending") == 1
    assert value("hub_outbox_messages", endpoint="down", state="dead") == 0
    assert value("hub_outbox_oldest_pending_age_seconds", endpoint="down") > 0
    assert ("hub_outbox_oldest_pending_age_seconds", (("endpoint", "portal"),)) not in samples
    assert value("hub_workers", state="alive") == 1
    assert value("hub_metrics_database_up") == 1
    assert value("hub_lookup_requests_total", channel="api", outcome="found") == 1
    assert value("hub_lookup_requests_total", channel="api", outcome="not_found") == 1
    assert value("hub_lookup_requests_total", channel="qr", outcome="opened") == 1
    assert value("hub_lookup_requests_total", channel="sms", outcome="processing") == 1


def test_circuit_state_is_scraped_from_the_database(
    database_url: str, tmp_path: Path, sink: WebhookSink
) -> None:
    metrics = {"database_cache_seconds": 0, "scrape_networks": ["127.0.0.1/32"]}
    overrides = {**_endpoints(sink), "metrics": metrics}
    with live_hub(database_url, tmp_path / "data", **overrides) as hub:
        with hub.db.transaction() as session:
            session.add(EndpointHealth(endpoint="portal", state="open", consecutive_failures=5))
        samples = _scrape(hub)
    assert samples["hub_endpoint_circuit_state", (("endpoint", "portal"), ("state", "open"))] == 1
    assert samples["hub_endpoint_circuit_state", (("endpoint", "portal"), ("state", "closed"))] == 0
    assert samples["hub_endpoint_consecutive_failures", (("endpoint", "portal"),)] == 5


@pytest.mark.parametrize(
    ("metrics", "role", "status"),
    [
        ({}, None, 401),
        ({}, "source", 403),
        ({}, "portal", 403),
        ({}, "technician", 200),
        ({}, "admin", 200),
        ({"scrape_networks": ["127.0.0.0/8"]}, None, 200),
        ({"scrape_networks": ["10.0.0.0/8", "::1/128"]}, None, 401),
        ({"enabled": False}, "technician", 404),
        ({"enabled": False, "scrape_networks": ["127.0.0.0/8"]}, None, 404),
    ],
)
def test_who_may_read_metrics(
    database_url: str, tmp_path: Path, metrics: dict[str, Any], role: str | None, status: int
) -> None:
    with live_hub(database_url, tmp_path / "data", metrics=metrics) as hub, hub.client(role) as http:
        response = http.get("/metrics")
    assert response.status_code == status, response.text
    if status == 200:
        assert "hub_delivery_attempts_total" in response.text or "hub_metrics_database_up" in response.text
    else:
        assert set(response.json()["error"]) >= {"code", "message", "message_vi"}
        assert "hub_" not in response.text


@pytest.mark.parametrize(("networks", "status"), [(["127.0.0.1/32"], 200), ([], 403)])
def test_a_worker_process_serves_its_own_metrics(
    database_url: str, tmp_path: Path, networks: list[str], status: int
) -> None:
    settings = hub_settings(
        database_url, tmp_path, 0, metrics={"worker_port": 0, "scrape_networks": networks}
    )
    with runtime.run_in_thread(settings, api=False, worker=True) as running:
        assert running.metrics_port is not None
        response = httpx.get(f"http://127.0.0.1:{running.metrics_port}/metrics", timeout=10)
    assert response.status_code == status, response.text
    if status == 200:
        assert 'hub_workers{state="alive"} 1.0' in response.text
    else:
        assert response.json()["error"]["code"]


def test_traces_follow_the_request_and_each_delivery(
    database_url: str, tmp_path: Path, sink: WebhookSink
) -> None:
    exporter = InMemorySpanExporter()
    overrides = {**_endpoints(sink), "tracing": {"enabled": True}}
    with live_hub(database_url, tmp_path / "data", worker=True, span_exporter=exporter, **overrides) as hub:
        with hub.client("source", headers={"traceparent": TRACEPARENT}) as http:
            created = http.post("/api/v1/dossiers", json={"dossier": dossier_json(), "version": 1})
        assert created.status_code == 201
        assert created.headers["x-request-id"] == TRACE_ID
        _wait_for(lambda: any(span.name == "deliver portal" for span in exporter.get_finished_spans()))
        code = dossier_json()["code"]
        with hub.client() as http:
            assert http.get(f"/api/v1/lookup/{code}", params={"id_number": "001099012345"}).status_code == 200
    spans = exporter.get_finished_spans()
    (_lookup,) = [span for span in spans if span.name == "GET /api/v1/lookup/{code}"]
    assert "001099012345" not in repr([dict(span.attributes or {}) for span in spans])  # no query string
    (server,) = [span for span in spans if span.name == "POST /api/v1/dossiers"]
    assert server.context is not None
    assert server.parent is not None
    assert f"{server.context.trace_id:032x}" == TRACE_ID  # continues the caller's trace
    assert server.parent.span_id == 0x00F067AA0BA902B7
    assert server.attributes is not None
    assert server.attributes["hub.correlation_id"] == TRACE_ID
    assert server.attributes["http.response.status_code"] == 201
    (delivery,) = [span for span in spans if span.name == "deliver portal"]
    assert delivery.attributes is not None
    assert delivery.attributes["hub.correlation_id"] == TRACE_ID
    assert delivery.attributes["hub.delivery.outcome"] == "delivered"
    assert delivery.attributes["http.response.status_code"] == 200
    assert delivery.start_time is not None
    assert delivery.end_time is not None
    assert delivery.start_time <= delivery.end_time


NO_OTEL = """
import sys
from hub import runtime
from hub.config import load_settings

settings = load_settings(database_url=sys.argv[1], data_dir=sys.argv[2], api={"port": 0})
with runtime.run_in_thread(settings, api=True, worker=True, access_log=False) as hub:
    import httpx
    assert httpx.get(hub.base_url + "/healthz").status_code == 200
# FastAPI itself imports opentelemetry-api (its native telemetry, switched off by the hub):
# the SDK and the exporter are what tracing would add.
added = ("opentelemetry.sdk", "opentelemetry.exporter")
loaded = sorted(name for name in sys.modules if name.startswith(added))
print(loaded)
"""


def test_no_opentelemetry_sdk_import_when_tracing_is_off(database_url: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_OTEL, database_url, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
