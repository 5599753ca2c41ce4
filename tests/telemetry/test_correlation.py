"""Which correlation ids the hub takes from callers (hub/telemetry/correlation.py)."""

from __future__ import annotations

import logging
import os

import pytest

from hub.telemetry import correlation

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("request_id", "traceparent", "expected"),
    [
        ("abc-123", None, "abc-123"),
        (" req.1:2_3 ", None, "req.1:2_3"),
        (None, TRACEPARENT, TRACE_ID),
        ("bad id", TRACEPARENT, TRACE_ID),
    ],
)
def test_usable_ids_are_kept(request_id: str | None, traceparent: str | None, expected: str) -> None:
    assert correlation.from_headers(request_id, traceparent) == expected


@pytest.mark.parametrize(
    ("request_id", "traceparent"),
    [
        (None, None),
        ("a\r\nX-Injected: 1", None),  # header / log line forging
        ('{"level": "ERROR"}', None),
        ("x" * 65, None),  # longer than the column
        ("-starts-with-dash", None),
        (None, "00-00000000000000000000000000000000-00f067aa0ba902b7-01"),  # invalid trace id
        (None, "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),  # upper case: not W3C
        (None, "garbage"),
    ],
)
def test_anything_else_gets_a_fresh_id(request_id: str | None, traceparent: str | None) -> None:
    fresh = correlation.from_headers(request_id, traceparent)
    assert len(fresh) == 32
    assert int(fresh, 16) >= 0
    assert fresh != correlation.from_headers(request_id, traceparent)


def test_the_filter_adds_the_bound_id_to_records() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    token = correlation.bind("abc")
    try:
        assert correlation.CorrelationFilter().filter(record)
    finally:
        correlation.reset(token)
    assert record.correlation_id == "abc"  # type: ignore[attr-defined]
    unbound = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    correlation.CorrelationFilter().filter(unbound)
    assert not hasattr(unbound, "correlation_id")


def test_fresh_ids_are_cut_from_one_read_of_random_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A read of the random source per id released the GIL on every API request."""
    reads: list[int] = []
    read = os.urandom

    def urandom(size: int) -> bytes:
        reads.append(size)
        return read(size)

    monkeypatch.setattr(correlation.os, "urandom", urandom)
    monkeypatch.setattr(correlation, "_ids", correlation._RandomIds())
    ids = [correlation.new_id() for _ in range(correlation.POOL_IDS)]
    assert len(reads) == 1
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and i == i.lower() and int(i, 16) >= 0 for i in ids)
    correlation.new_id()
    assert len(reads) == 2


def test_a_forked_process_reads_random_bytes_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = correlation._RandomIds()
    first = ids.take()
    monkeypatch.setattr(correlation.os, "getpid", lambda: -1)  # as in a child after fork
    pooled = correlation._RandomIds()
    pooled._hex, pooled._next, pooled._pid = ids._hex, ids._next, ids._pid
    assert pooled.take() != ids.take()
    assert first not in (ids.take(), pooled.take())
