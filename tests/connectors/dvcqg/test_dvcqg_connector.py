"""DvcqgConnector and DvcqgClient against the real simulator over loopback HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from connectors.base import Connector, Delivery
from connectors.dvcqg import DvcqgConnector, build_dvcqg_connector
from connectors.dvcqg.mapping import dossier_to_wire
from connectors.settings import EndpointSettings
from hub.simulators.dvcqg import DvcqgFault, DvcqgSimulator
from hub.simulators.faults import FaultKind
from schemas.errors import (
    BusinessRejectionError,
    ConfigurationError,
    EndpointBusyError,
    InvalidInputError,
    RemoteAuthenticationError,
    SessionExpiredError,
    TransportError,
)
from tests.connectors.dvcqg.dvcqg_samples import (
    CODE,
    dossier_code,
    full_dossier,
    progress_payload,
    steps,
    sync_payload,
)
from tests.connectors.dvcqg.endpoint import MADONVI, Capture, endpoint_settings


def sync(dossier: Any = None, message_id: str = "m-1", revision: int = 1) -> Delivery:
    dossier = dossier or full_dossier()
    return Delivery(
        message_id=message_id,
        endpoint="dvcqg",
        kind="dossier.sync",
        payload=sync_payload(dossier, revision),
        dossier_code=dossier.code,
    )


def progress(dossier: Any, count: int, message_id: str = "p-1") -> Delivery:
    return Delivery(
        message_id=message_id,
        endpoint="dvcqg",
        kind="dossier.progress",
        payload=progress_payload(dossier, steps(count)),
        dossier_code=dossier.code,
    )


def seed(simulator: DvcqgSimulator, code: str = CODE) -> None:
    from connectors.dvcqg.options import DvcqgOptions

    wire = dossier_to_wire(
        full_dossier(code), national_procedure_code="1.003901", options=DvcqgOptions(madonvi=MADONVI)
    )
    simulator.put_record(wire.wire())


async def make(
    simulator: DvcqgSimulator, http: httpx.AsyncClient | None = None, **options: Any
) -> DvcqgConnector:
    return build_dvcqg_connector("dvcqg", endpoint_settings(simulator, **options), http)


# --- create / update ----------------------------------------------------------------------


async def test_connector_satisfies_protocol(connector: DvcqgConnector) -> None:
    assert isinstance(connector, Connector)


async def test_first_sync_creates_then_updates(
    connector: DvcqgConnector, simulator: DvcqgSimulator, capture: Capture
) -> None:
    receipt = await connector.deliver(sync())
    assert receipt.status_code == 200
    assert receipt.remote_reference == CODE
    assert "isUpdating=False" in receipt.request_summary
    assert "error_code=0" in receipt.response_summary
    assert simulator.record(CODE) is not None
    await connector.deliver(sync(message_id="m-2", revision=2))
    assert [b["isUpdating"] for b in capture.bodies] == ["False", "True"]
    assert capture.headers[0]["x-message-id"] == "m-1"
    assert capture.headers[1]["x-message-id"] == "m-2"


async def test_duplicate_create_becomes_update(
    connector: DvcqgConnector, simulator: DvcqgSimulator, capture: Capture
) -> None:
    seed(simulator)  # another system (or a lost answer) put it there already
    receipt = await connector.deliver(sync(full_dossier(status=9, finished_at=full_dossier().due_at)))
    assert [b["isUpdating"] for b in capture.bodies] == ["False", "True"]
    assert capture.headers[1]["x-message-id"] == "m-1:update"
    assert "create→update" in receipt.request_summary
    assert simulator.record(CODE)["TrangThaiHoSo"] == "9"  # type: ignore[index]
    outcomes = [r.outcome for r in simulator.requests() if r.service == "DongBoHoSoMC"]
    assert outcomes == ["duplicate", "ok"]


async def test_lookup_before_create_option(
    simulator: DvcqgSimulator, http: httpx.AsyncClient, capture: Capture
) -> None:
    seed(simulator)
    conn = await make(simulator, http, lookup_before_create=True)
    await conn.deliver(sync())
    assert capture.services() == ["TraCuuHoSo", "DongBoHoSoMC"]
    assert capture.bodies[1]["isUpdating"] == "True"


async def test_message_and_routing_headers_are_configurable(
    simulator: DvcqgSimulator, http: httpx.AsyncClient, capture: Capture
) -> None:
    conn = await make(simulator, http, message_id_header="X-Request-Id", routing_header_value="H42-DVCQG")
    await conn.deliver(sync(message_id="abc"))
    assert capture.headers[0]["x-request-id"] == "abc"
    assert capture.headers[0]["dstcode"] == "H42-DVCQG"


# --- progress -----------------------------------------------------------------------------


async def test_progress_creates_the_dossier_first_when_the_portal_lacks_it(
    connector: DvcqgConnector, simulator: DvcqgSimulator, capture: Capture
) -> None:
    dossier = full_dossier()
    receipt = await connector.deliver(progress(dossier, 3))
    assert capture.services() == ["TraCuuHoSo", "DongBoHoSoMC", "CapNhatTienDoHoSoMC"]
    assert capture.headers[1]["x-message-id"] == "p-1:sync"
    assert len(simulator.progress(CODE)) == 3
    assert "DongBoHoSoMC" in receipt.request_summary
    assert "CapNhatTienDoHoSoMC" in receipt.request_summary


async def test_progress_for_a_dossier_the_portal_has_skips_the_create(
    connector: DvcqgConnector, simulator: DvcqgSimulator, capture: Capture
) -> None:
    seed(simulator)
    await connector.deliver(progress(full_dossier(), 2))
    assert capture.services() == ["TraCuuHoSo", "CapNhatTienDoHoSoMC"]
    # now known: the next progress goes straight out
    await connector.deliver(progress(full_dossier(), 1, "p-2"))
    assert capture.services()[-1] == "CapNhatTienDoHoSoMC"
    assert capture.services().count("TraCuuHoSo") == 1


async def test_progress_after_sync_needs_no_lookup(connector: DvcqgConnector, capture: Capture) -> None:
    await connector.deliver(sync())
    await connector.deliver(progress(full_dossier(), 1))
    assert capture.services() == ["DongBoHoSoMC", "CapNhatTienDoHoSoMC"]


async def test_progress_is_chunked(
    simulator: DvcqgSimulator, http: httpx.AsyncClient, capture: Capture
) -> None:
    conn = await make(simulator, http)
    await conn.deliver(sync())
    await conn.deliver(progress(full_dossier(), 23))
    chunks = [len(b["data"]) for b in capture.bodies if b["service"] == "CapNhatTienDoHoSoMC"]
    assert chunks == [10, 10, 3]
    ids = [
        h["x-message-id"]
        for h, b in zip(capture.headers, capture.bodies, strict=True)
        if b["service"] != "DongBoHoSoMC"
    ]
    assert ids == ["p-1:1/3", "p-1:2/3", "p-1:3/3"]
    assert len(simulator.progress(CODE)) == 23
    small = await make(simulator, http, progress_chunk_size=4)
    await small.deliver(progress(full_dossier(), 9, "p-9"))
    assert [len(b["data"]) for b in capture.bodies[-3:]] == [4, 4, 1]


async def test_plain_text_progress_answer_is_success(
    connector: DvcqgConnector, simulator: DvcqgSimulator
) -> None:
    simulator.config.progress_answer = "text"
    await connector.deliver(sync())
    receipt = await connector.deliver(progress(full_dossier(), 2))
    assert "thành công" in receipt.response_summary


async def test_progress_refused_by_portal_is_permanent(
    connector: DvcqgConnector, simulator: DvcqgSimulator
) -> None:
    await connector.deliver(sync())
    simulator.reset()  # the portal lost the dossier; the connector still believes it is there
    with pytest.raises(BusinessRejectionError) as info:
        await connector.deliver(progress(full_dossier(), 1))
    assert "chưa được đồng bộ" in info.value.response_summary


# --- sessions -----------------------------------------------------------------------------


async def test_session_expiry_in_the_middle_of_a_burst_logs_in_once(
    connector: DvcqgConnector, simulator: DvcqgSimulator
) -> None:
    await connector.deliver(sync(full_dossier(dossier_code(1)), "warm-up"))
    assert simulator.login_count == 1
    simulator.faults.add(kind=DvcqgFault.EXPIRE_SESSION)  # the first call of the burst kills the session
    codes = [dossier_code(n) for n in range(2, 42)]
    receipts = await asyncio.gather(
        *(connector.deliver(sync(full_dossier(code), f"m-{code}")) for code in codes)
    )
    assert len(receipts) == 40
    assert simulator.login_count == 2
    assert connector.client.login_count == 2
    assert set(simulator.records()) == {dossier_code(1), *codes}
    expired = [r for r in simulator.requests() if r.outcome == "session_expired"]
    assert expired  # some calls did hit the expired session and were retried


async def test_session_ttl_and_http_401_variant(connector: DvcqgConnector, simulator: DvcqgSimulator) -> None:
    simulator.config.expired_http_status = 401
    await connector.deliver(sync(full_dossier(dossier_code(1)), "a"))
    simulator.expire_sessions()  # on-demand expiry (same as the TTL running out)
    await asyncio.gather(
        *(connector.deliver(sync(full_dossier(dossier_code(n)), f"b{n}")) for n in range(2, 12))
    )
    assert simulator.login_count == 2
    assert len(simulator.records()) == 11


async def test_client_renews_its_session_after_its_own_ttl(
    simulator: DvcqgSimulator, http: httpx.AsyncClient
) -> None:
    now = [0.0]
    conn = await make(simulator, http, session_ttl_seconds=60)
    conn.client._clock = lambda: now[0]  # a controllable clock instead of sleeping
    await conn.deliver(sync(full_dossier(dossier_code(1)), "a"))
    now[0] = 30
    await conn.deliver(sync(full_dossier(dossier_code(2)), "b"))
    assert simulator.login_count == 1
    now[0] = 61
    await conn.deliver(sync(full_dossier(dossier_code(3)), "c"))
    assert simulator.login_count == 2


async def test_session_rejected_again_after_relogin_is_session_expired(
    connector: DvcqgConnector, simulator: DvcqgSimulator
) -> None:
    simulator.faults.add(kind=DvcqgFault.EXPIRE_SESSION, times=None)
    with pytest.raises(SessionExpiredError) as info:
        await connector.deliver(sync())
    assert info.value.retryable
    assert simulator.login_count == 2
    assert simulator.records() == {}


async def test_wrong_password_is_permanent(simulator: DvcqgSimulator, http: httpx.AsyncClient) -> None:
    settings = endpoint_settings(simulator)
    settings = EndpointSettings.model_validate({**settings.model_dump(), "password": "wrong"})
    conn = build_dvcqg_connector("dvcqg", settings, http)
    with pytest.raises(RemoteAuthenticationError) as info:
        await conn.deliver(sync())
    assert not info.value.retryable
    assert "wrong" not in str(info.value.to_dict())  # the password never appears in errors


async def test_login_is_retried_on_transient_failures(
    connector: DvcqgConnector, simulator: DvcqgSimulator
) -> None:
    simulator.faults.add(kind=FaultKind.STATUS, operation="login", status=503, times=2)
    await connector.deliver(sync())
    assert simulator.login_count == 1
    assert simulator.records()


async def test_login_still_failing_after_retries_is_retryable(
    connector: DvcqgConnector, simulator: DvcqgSimulator
) -> None:
    simulator.faults.add(kind=FaultKind.STATUS, operation="login", status=503, times=3)
    with pytest.raises(EndpointBusyError):
        await connector.deliver(sync())


async def test_a_failing_login_is_shared_by_a_burst_not_repeated(
    connector: DvcqgConnector, simulator: DvcqgSimulator
) -> None:
    simulator.faults.add(kind=FaultKind.STATUS, operation="login", status=503, times=None)
    results = await asyncio.gather(
        *(connector.deliver(sync(full_dossier(dossier_code(n)), f"m{n}")) for n in range(1, 21)),
        return_exceptions=True,
    )
    assert all(isinstance(r, EndpointBusyError) for r in results)
    login_calls = [r for r in simulator.requests() if r.service == "login"]
    assert len(login_calls) == 3  # one login with its 3 tenacity attempts, not 20 × 3
    simulator.faults.clear()
    await connector.deliver(sync())  # the next delivery tries again and succeeds
    assert simulator.login_count == 1


# --- faults -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [(503, "7", 7.0), (429, "30", 30.0), (500, None, None)],
)
async def test_http_faults_are_retryable_with_retry_after(
    connector: DvcqgConnector,
    simulator: DvcqgSimulator,
    status: int,
    retry_after: str | None,
    expected: float | None,
) -> None:
    simulator.faults.add(kind=FaultKind.STATUS, status=status, retry_after=retry_after)
    with pytest.raises(EndpointBusyError) as info:
        await connector.deliver(sync())
    assert info.value.retry_after == expected
    assert info.value.status_code == status
    assert "DongBoHoSoMC" in info.value.request_summary
    assert simulator.records() == {}


async def test_n_failures_then_success(connector: DvcqgConnector, simulator: DvcqgSimulator) -> None:
    simulator.faults.add(kind=FaultKind.STATUS, status=503, times=2)
    for _ in range(2):
        with pytest.raises(EndpointBusyError):
            await connector.deliver(sync())
    await connector.deliver(sync())  # the worker's third attempt
    assert list(simulator.records()) == [CODE]


async def test_hang_is_a_transport_timeout(simulator: DvcqgSimulator) -> None:
    settings = EndpointSettings.model_validate(
        {**endpoint_settings(simulator).model_dump(), "timeout_seconds": 0.3, "password": "hub-secret"}
    )
    conn = build_dvcqg_connector("dvcqg", settings, None)  # its own httpx client with these timeouts
    try:
        await conn.client.login()
        simulator.faults.add(kind=FaultKind.TIMEOUT)
        with pytest.raises(TransportError) as info:
            await conn.deliver(sync())
        assert info.value.retryable
        assert "timed out" in info.value.message
    finally:
        await conn.aclose()


async def test_dropped_connection_is_a_transport_error(
    connector: DvcqgConnector, simulator: DvcqgSimulator
) -> None:
    simulator.faults.add(kind=FaultKind.DROP)
    with pytest.raises(TransportError) as info:
        await connector.deliver(sync())
    assert "dropped" in info.value.message
    assert simulator.records() == {}


async def test_answer_lost_after_commit_then_redelivery_is_deduplicated_by_message_id(
    connector: DvcqgConnector, simulator: DvcqgSimulator
) -> None:
    simulator.faults.add(kind=FaultKind.DROP_AFTER)
    with pytest.raises(TransportError):
        await connector.deliver(sync(message_id="same"))
    assert simulator.record(CODE) is not None  # stored although the hub never heard back
    receipt = await connector.deliver(sync(message_id="same"))  # the worker retries, same id
    assert "error_code=0" in receipt.response_summary
    assert [r.outcome for r in simulator.requests() if r.service == "DongBoHoSoMC"] == ["ok", "replayed"]


async def test_slow_answer_still_succeeds(connector: DvcqgConnector, simulator: DvcqgSimulator) -> None:
    simulator.faults.add(kind=FaultKind.LATENCY, delay_seconds=0.2)
    await connector.deliver(sync())
    assert simulator.record(CODE) is not None


async def test_business_error_is_permanent(connector: DvcqgConnector, simulator: DvcqgSimulator) -> None:
    simulator.faults.add(kind=DvcqgFault.BUSINESS_ERROR, code="-1", message="MaTTHC không hợp lệ")
    with pytest.raises(BusinessRejectionError) as info:
        await connector.deliver(sync())
    assert "MaTTHC không hợp lệ" in info.value.message


async def test_configured_busy_code_is_retryable(simulator: DvcqgSimulator, http: httpx.AsyncClient) -> None:
    conn = await make(simulator, http, busy_codes=["-99"])
    simulator.faults.add(kind=DvcqgFault.BUSINESS_ERROR, code="-99", message="Hệ thống đang bận")
    with pytest.raises(EndpointBusyError):
        await conn.deliver(sync())


async def test_refused_record_is_permanent(connector: DvcqgConnector) -> None:
    # A procedure the portal's catalogue does not know: the simulator refuses the record.
    with pytest.raises(BusinessRejectionError) as info:
        await connector.deliver(sync(full_dossier(procedure_code="1.999999.H42")))
    assert "không có trong danh mục" in info.value.message


async def test_invalid_payload_is_refused_before_sending(connector: DvcqgConnector, capture: Capture) -> None:
    bad = sync()
    bad.payload["dossier"]["code"] = "not-a-code"
    with pytest.raises(InvalidInputError):
        await connector.deliver(bad)
    other = Delivery(message_id="x", endpoint="dvcqg", kind="dossier.unknown", payload={})
    with pytest.raises(InvalidInputError):
        await connector.deliver(other)
    mismatch = progress(full_dossier(), 1)
    mismatch.payload["dossier_code"] = dossier_code(9)
    with pytest.raises(InvalidInputError):
        await connector.deliver(mismatch)
    assert capture.bodies == []


# --- reference data and reconciliation ----------------------------------------------------


async def test_catalogue_enriches_names_and_is_cached(
    connector: DvcqgConnector, simulator: DvcqgSimulator, capture: Capture
) -> None:
    bare = full_dossier(procedure_name=None, field_code=None, field_name=None)
    await connector.deliver(sync(bare))
    await connector.deliver(sync(bare, "m-2"))
    record = simulator.record(CODE)
    assert record is not None
    assert record["TenTTHC"].endswith("(thủ tục mẫu 1.003901)")
    assert (record["MaLinhVuc"], record["TenLinhVuc"]) == ("NN-TT", "Trồng trọt")
    assert capture.services().count("LayThuTuc") == 1


async def test_catalogue_outage_does_not_block_delivery(
    connector: DvcqgConnector, simulator: DvcqgSimulator
) -> None:
    simulator.faults.add(kind=FaultKind.STATUS, operation="LayThuTuc", status=503)
    await connector.deliver(sync(full_dossier(procedure_name=None)))
    assert simulator.record(CODE)["TenTTHC"] == ""  # type: ignore[index]


async def test_catalogue_models_and_mapping_table(simulator: DvcqgSimulator, http: httpx.AsyncClient) -> None:
    conn = await make(simulator, http, procedure_map={"2.000477.000.00.00.H42": "1.004650"})
    catalog = conn.catalog
    assert catalog.national_code("1.003901.H42") == "1.003901"
    assert catalog.national_code("1.003901.000.00.00.H42") == "1.003901"
    assert catalog.national_code("2.000477.000.00.00.H42") == "1.004650"
    results = await asyncio.gather(*(catalog.procedure("1.003901") for _ in range(5)))
    assert catalog.fetch_count == 1  # concurrent misses shared one LayThuTuc call
    info = results[0]
    assert info is not None
    assert info.main_field is not None
    assert info.main_field.code == "NN-TT"
    assert await catalog.procedure("1.000000") is None
    procedures = await catalog.procedures()
    assert "1.003901" in {p.code for p in procedures}
    assert "000.00.00.H42" in {a.code for a in await catalog.agencies()}
    assert {f.code for f in await catalog.fields()} >= {"NN-TT", "NN-TS"}
    await catalog.procedures()
    assert catalog.fetch_count == 5


async def test_bad_mapping_table_is_a_configuration_error(simulator: DvcqgSimulator) -> None:
    with pytest.raises(ConfigurationError):
        await make(simulator, None, procedure_map={"x": "1.003901"})


async def test_tra_cuu_ho_so_returns_our_schema(connector: DvcqgConnector) -> None:
    dossier = full_dossier()
    await connector.deliver(sync(dossier))
    found = await connector.client.lookup_dossier(CODE)
    assert found.found
    assert found.dossier == dossier.model_copy(update={"procedure_code": "1.003901"})
    missing = await connector.client.lookup_dossier(dossier_code(77))
    assert not missing.found
    assert missing.dossier is None


async def test_tra_cuu_ho_so_reports_a_record_that_does_not_fit(
    connector: DvcqgConnector, simulator: DvcqgSimulator
) -> None:
    await connector.deliver(sync())
    with simulator._lock:  # the portal holds a record our schema refuses (e.g. migrated data)
        simulator._records[CODE] = {**simulator._records[CODE], "TrangThaiHoSo": 4, "Extra": "x"}
    found = await connector.client.lookup_dossier(CODE)
    assert found.found
    assert found.dossier is None
    assert found.problem is not None
    assert "TrangThaiHoSo" in found.problem
    assert "Extra" not in found.problem  # keys we do not know are ignored in lookups
    assert "037190001234" not in found.problem  # no values echoed


@pytest.mark.parametrize(
    "change",
    [
        {"options": {"madonvi": MADONVI, "no_such_option": 1}},
        {"options": {}},
        {"username": None},
        {"kind": "webhook"},
    ],
)
def test_factory_refuses_bad_configuration(simulator: DvcqgSimulator, change: dict[str, Any]) -> None:
    raw = {**endpoint_settings(simulator).model_dump(), "password": "hub-secret", **change}
    with pytest.raises(ConfigurationError):
        build_dvcqg_connector("dvcqg", EndpointSettings.model_validate(raw), None)
