"""Scale-out: several ``hub worker`` processes on one database (docs/deployment.md, "Several
workers, several machines"). A few thousand messages over many dossiers are drained by three
processes: every message is delivered exactly once in this normal case (at-least-once allows a
repeat only after a lost lease, and no lease is lost here), never by two workers at once, and
each dossier's messages arrive in order, one at a time."""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.db.models import DeliveryAttempt, OutboxMessage
from hub.db.session import Database
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.sink import WebhookSink
from tests.delivery.helpers import put_many, states, wait_until

from .workers import WorkerProcess, write_config

pytestmark = pytest.mark.slow

MESSAGES = 3000
DOSSIERS = 300
PROCESSES = 3


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as server:
        yield server


def test_three_worker_processes_share_the_outbox(
    db: Database, database_url: str, sink: WebhookSink, tmp_path: Path
) -> None:
    # A little latency at the portal, so that many deliveries are in flight at once.
    sink.faults.replace([Fault(kind=FaultKind.LATENCY, delay_seconds=0.005, times=None)])
    put_many(
        db, "portal", [(f"D{i % DOSSIERS}", {"dossier": f"D{i % DOSSIERS}", "n": i}) for i in range(MESSAGES)]
    )
    config = write_config(tmp_path, sink.url)
    workers = [WorkerProcess(database_url, config, f"w{index}") for index in range(PROCESSES)]
    try:
        wait_until(lambda: states(db) == {"delivered": MESSAGES}, within=240, step=0.5)
    finally:
        statuses = [worker.stop() for worker in workers]
    assert statuses == [0] * PROCESSES, [worker.log() for worker in workers]

    with db.sessions() as session:
        rows = session.execute(
            select(OutboxMessage.seq, OutboxMessage.message_id, OutboxMessage.ordering_key)
        )
        ids, keys = {}, {}
        for seq, message_id, key in rows:
            ids[seq], keys[seq] = message_id, key
        attempts = list(session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.started_at)))

    # Every message arrived, exactly once.
    arrivals = sink.arrivals()
    counts = Counter(arrival.message_id for arrival in arrivals)
    assert set(counts) == set(ids.values())
    assert max(counts.values()) == 1, [mid for mid, n in counts.items() if n > 1][:5]
    # One attempt per message, by one worker; all three took part.
    assert Counter(a.message_seq for a in attempts) == Counter(set(ids))
    assert {a.outcome for a in attempts} == {"delivered"}
    assert {a.worker_id for a in attempts} == {f"w{index}" for index in range(PROCESSES)}

    # Per-dossier order: arrivals in enqueue order, and never two of a dossier in flight at
    # once (each attempt starts after the previous one of its dossier finished).
    numbers: dict[str, list[int]] = defaultdict(list)
    for arrival in arrivals:
        body = json.loads(arrival.body)
        numbers[body["dossier"]].append(body["n"])
    assert len(numbers) == DOSSIERS
    for dossier, sequence in numbers.items():
        assert sequence == sorted(sequence), dossier
    by_dossier: dict[str, list[DeliveryAttempt]] = defaultdict(list)
    for attempt in attempts:
        by_dossier[keys[attempt.message_seq]].append(attempt)
    for dossier_attempts in by_dossier.values():
        dossier_attempts.sort(key=lambda a: a.message_seq)
        for earlier, later in itertools.pairwise(dossier_attempts):
            assert later.started_at >= earlier.finished_at, (earlier.message_seq, later.message_seq)
