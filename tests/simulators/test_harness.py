"""The shared simulator harness: one fault model and one control API on every simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.simulators.dvcqg import DvcqgSimulator
from hub.simulators.faults import Fault, FaultBook, FaultKind, UnknownFaultKindError
from hub.simulators.harness import Simulator
from hub.simulators.lgsp import LgspContract, LgspSimulator
from hub.simulators.pki import PkiSimulator, serve_test_pki
from hub.simulators.sink import WebhookSink
from tests.clocks import SettableClock

# --- the fault model ----------------------------------------------------------------------------


def test_first_matching_fault_wins_and_counts_down() -> None:
    book = FaultBook()
    book.add(kind=FaultKind.STATUS, status=500, times=2)
    book.add(kind=FaultKind.LATENCY, delay_seconds=0.1)
    taken = [book.take("op") for _ in range(4)]
    assert [f.kind if f else None for f in taken] == ["status", "status", "latency", None]
    assert book.calls() == {"op": 4}


def test_per_operation_and_wildcard_selection() -> None:
    book = FaultBook()
    book.add(kind=FaultKind.DROP, operation="tsa", times=None)
    book.add(kind=FaultKind.STATUS, times=None)
    assert book.take("crl") == book.take("ocsp") == Fault(kind="status", times=None)
    tsa = book.take("tsa")
    assert tsa is not None
    assert tsa.kind == "drop"
    assert book.take("login", wildcard=False) is None


def test_attempts_count_per_message() -> None:
    book = FaultBook()
    book.add(kind=FaultKind.STATUS, status=503, attempts=2, times=None)
    hits = [book.take("deliver", key) for key in ["a", "b", "a", "a", "b", "b", "c"]]
    assert [h is not None for h in hits] == [True, True, True, False, True, False, True]
    assert book.take("deliver") is None  # no message id: never "one of the first tries"


def test_outage_window() -> None:
    clock = SettableClock(1000.0)
    book = FaultBook(clock=clock)
    book.add(kind=FaultKind.STATUS, times=None, after_seconds=10, for_seconds=5)
    assert book.take("op") is None
    clock.now += 10
    assert book.take("op") is not None
    clock.now += 4.9
    assert book.take("op") is not None
    clock.now += 0.1
    assert book.take("op") is None
    assert book.pending() == []


def test_protocol_kinds_are_per_simulator() -> None:
    with pytest.raises(UnknownFaultKindError):
        FaultBook().add(kind="already_exists")
    book = FaultBook({"already_exists"})
    fault_id = book.add(kind="already_exists", times=None)
    assert [f.kind for f in book.pending()] == ["already_exists"]
    book.remove(fault_id)
    assert book.pending() == []


# --- the control API, the same on every simulator ------------------------------------------------


@pytest.fixture(params=["dvcqg", "lgsp", "sink", "pki"])
def any_simulator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Simulator]:
    simulators: dict[str, Simulator] = {
        "dvcqg": DvcqgSimulator(),
        "lgsp": LgspSimulator(contract=LgspContract()),
        "sink": WebhookSink(),
        "pki": PkiSimulator(),
    }
    with simulators[request.param] as sim:
        yield sim


def test_control_api(any_simulator: Simulator) -> None:
    with httpx.Client(base_url=any_simulator.base_url, timeout=5) as control:
        assert control.get("/_control/faults").json() == {"faults": []}
        added = control.post("/_control/faults", json={"kind": "status", "status": 503, "retry_after": "9"})
        assert added.status_code == 201
        assert added.json()["added"]["retry_after"] == "9"
        assert control.post("/_control/faults", json={"kind": "explode"}).status_code == 422
        assert control.post("/_control/faults", json={"kind": "status", "surprise": 1}).status_code == 422
        replaced = control.put(
            "/_control/faults",
            json=[
                {"kind": "latency", "delay_seconds": 0.01, "times": None},
                {"kind": "drop", "operation": "x"},
            ],
        )
        assert [f["kind"] for f in replaced.json()["faults"]] == ["latency", "drop"]
        assert [f.kind for f in any_simulator.faults.pending()] == ["latency", "drop"]
        assert control.put("/_control/faults", json=[{"kind": "explode"}]).status_code == 422
        assert len(any_simulator.faults.pending()) == 2  # a refused PUT changes nothing
        assert control.delete("/_control/faults").json() == {"cleared": True}
        assert control.get("/_control/records").status_code == 200
        assert control.get("/_control/calls").json() == {}
        assert control.post("/_control/reset").json() == {"reset": True}


# --- the shared transport faults, carried out the same way everywhere -----------------------------


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as running:
        yield running


def _post(sink: WebhookSink, message_id: str = "m-1", *, timeout: float = 5) -> httpx.Response:
    return httpx.post(sink.url, json={"n": 1}, headers={"X-Message-Id": message_id}, timeout=timeout)


def test_status_with_retry_after_then_recovery(sink: WebhookSink) -> None:
    sink.faults.add(kind=FaultKind.STATUS, status=429, retry_after="7")
    busy = _post(sink)
    assert busy.status_code == 429
    assert busy.headers["retry-after"] == "7"
    assert _post(sink).status_code == 200
    assert [a.message_id for a in sink.arrivals()] == ["m-1"]


#: What a client sees of a dropped connection: no answer, or a reset.
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)


def test_drop_before_and_after_processing(sink: WebhookSink) -> None:
    sink.faults.add(kind=FaultKind.DROP)
    with pytest.raises(DROPPED):
        _post(sink, "m-dropped")
    assert sink.arrivals() == []
    sink.faults.add(kind=FaultKind.DROP_AFTER)
    with pytest.raises(DROPPED):
        _post(sink, "m-kept")
    assert [a.message_id for a in sink.arrivals()] == ["m-kept"]  # processed, answer lost


def test_timeout_holds_the_call(sink: WebhookSink) -> None:
    sink.faults.add(kind=FaultKind.TIMEOUT, delay_seconds=30)
    with pytest.raises(httpx.ReadTimeout):
        _post(sink, timeout=0.3)
    assert sink.arrivals() == []


def test_latency_then_normal_answer(sink: WebhookSink) -> None:
    sink.faults.add(kind=FaultKind.LATENCY, delay_seconds=0.05)
    assert _post(sink).status_code == 200
    assert len(sink.arrivals()) == 1


def test_restart_on_the_same_port_keeps_records(sink: WebhookSink) -> None:
    url = sink.url
    assert _post(sink).status_code == 200
    sink.stop()
    with pytest.raises(httpx.ConnectError):
        _post(sink)
    sink.start()
    assert sink.url == url
    assert _post(sink, "m-2").status_code == 200
    assert [a.message_id for a in sink.arrivals()] == ["m-1", "m-2"]


async def test_in_loop_runner() -> None:
    async with WebhookSink() as sink, httpx.AsyncClient() as http:
        answer = await http.post(sink.url, json={}, headers={"X-Message-Id": "m-async"})
        assert answer.status_code == 200
    assert [a.message_id for a in sink.arrivals()] == ["m-async"]
    assert not sink.running


def test_pki_operations_are_selected_separately(tmp_path: Path) -> None:
    with serve_test_pki(tmp_path / "pki") as running:
        running.set_revocation_available(False)
        assert httpx.get(running.crl_url, timeout=5).status_code == 503
        certs = httpx.get(f"{running.base_url}/certs/root.crt", timeout=5)
        assert certs.status_code == 200  # only OCSP and CRL are down
        running.set_revocation_available(True)
        assert httpx.get(running.crl_url, timeout=5).status_code == 200
        assert running.counters["crl"] == 2
        assert running.counters["certs"] == 1
