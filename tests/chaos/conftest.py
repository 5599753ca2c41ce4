"""Fixtures of the chaos scenarios: the receiver, a private PostgreSQL, the summary record."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.simulators.sink import WebhookSink
from tests.pgcluster import PrivatePostgres, private_cluster

from .verifier import Report

Record = Callable[..., None]


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    """The portal: a webhook receiver recording every arrival (bodies left out: thousands)."""
    with WebhookSink(record_bodies=False) as server:
        yield server


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this module's own, free to be crashed and restarted."""
    with private_cluster() as cluster:
        yield cluster


@pytest.fixture
def private_pg_url(private_pg: PrivatePostgres) -> str:
    """A fresh migrated database on the private server."""
    return private_pg.create_database(f"hub_chaos_{uuid.uuid4().hex[:10]}")


@pytest.fixture
def chaos_report(request: pytest.FixtureRequest) -> Record:
    """Record a scenario's verifier summary: printed, and appended as a JSON line to the file
    named by ``HUB_CHAOS_REPORT`` (what ``benchmarks/chaos.py`` collects)."""

    started = time.monotonic()

    def record(report: Report, **facts: Any) -> None:
        seconds = round(time.monotonic() - started, 1)
        line = {"scenario": request.node.name, "seconds": seconds, **report.summary(), **facts}
        print(f"\nchaos {json.dumps(line, sort_keys=True)}")
        target = os.environ.get("HUB_CHAOS_REPORT")
        if target:
            with Path(target).open("a", encoding="utf-8") as out:
                out.write(json.dumps(line, sort_keys=True) + "\n")

    return record
