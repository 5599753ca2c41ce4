"""SOAP connector against the simulator: both SOAP versions, headers, faults, drop-in WSDL."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest

from connectors.base import Connector
from connectors.lgsp import build_lgsp_soap_connector
from connectors.lgsp.mapping import from_sync_document, from_traces, to_sync_document
from connectors.lgsp.models import MSyncDocument, UpdateDocumentTracesRequest
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.lgsp import LgspFault, LgspSimulator
from schemas.errors import (
    BusinessRejectionError,
    ConfigurationError,
    EndpointBusyError,
    InvalidInputError,
    RemoteAuthenticationError,
    SoapFaultError,
    TransportError,
)
from tests.connectors.lgsp.lgsp_factories import (
    VARIANT_WSDL,
    make_dossier,
    make_steps,
    progress_delivery,
    soap_settings,
    sync_delivery,
)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
async def test_sync_round_trip_through_simulator(
    simulator: LgspSimulator, http: httpx.AsyncClient, version: str
) -> None:
    connector = build_lgsp_soap_connector("lgsp", soap_settings(simulator, version), http)
    assert isinstance(connector, Connector)
    dossier = make_dossier()
    receipt = await connector.deliver(
        sync_delivery(dossier, message_id="3f0c2a4e-8d1b-4c4e-9d7a-0a1b2c3d4e5f")
    )
    assert receipt.status_code == 200
    assert receipt.remote_reference == "LGSP-000001"
    assert "Status=1" in receipt.response_summary
    # No personal data in what the worker records.
    assert "037190001234" not in receipt.request_summary
    assert "0912345678" not in receipt.request_summary
    [record] = simulator.records
    assert record.flavour == ("soap11" if version == "1.1" else "soap12")
    assert record.operation == "SyncDocument"
    assert record.message_id == "urn:uuid:3f0c2a4e-8d1b-4c4e-9d7a-0a1b2c3d4e5f"
    assert record.username == "hub"
    # canonical → wire (zeep) → XML validated by libxml2 → decoded by xmlschema → canonical
    wire = MSyncDocument.model_validate(record.payload()["Document"])
    assert from_sync_document(wire) == dossier


async def test_progress_round_trip_through_simulator(
    simulator: LgspSimulator, http: httpx.AsyncClient
) -> None:
    connector = build_lgsp_soap_connector("lgsp", soap_settings(simulator, "1.2"), http)
    delivery = progress_delivery()
    receipt = await connector.deliver(delivery)
    assert "UpdateDocumentTraces" in receipt.request_summary
    [record] = simulator.records
    steps = from_traces(UpdateDocumentTracesRequest.model_validate(record.payload()))
    assert steps == make_steps()


async def test_lookup_returns_canonical_dossier(simulator: LgspSimulator, http: httpx.AsyncClient) -> None:
    connector = build_lgsp_soap_connector("lgsp", soap_settings(simulator), http)
    assert await connector.lookup("000.00.18.H42-250612-0001", message_id="q-1") is None
    dossier = make_dossier()
    await connector.deliver(sync_delivery(dossier))
    found = await connector.lookup(dossier.code, message_id="q-2")
    assert found == dossier


# --- fault mapping ---------------------------------------------------------------------------

VERSIONS = ["1.1", "1.2"]


async def _deliver_after(sim: LgspSimulator, http: httpx.AsyncClient, version: str, fault: Fault, **opts):
    connector = build_lgsp_soap_connector("lgsp", soap_settings(sim, version, **opts), http)
    sim.faults.add(fault)
    return connector, connector.deliver(sync_delivery(message_id="m-fault"))


@pytest.mark.parametrize("version", VERSIONS)
async def test_client_fault_is_permanent(
    simulator: LgspSimulator, http: httpx.AsyncClient, version: str
) -> None:
    _, call = await _deliver_after(simulator, http, version, Fault(kind=LgspFault.SOAP_CLIENT_FAULT))
    with pytest.raises(SoapFaultError) as info:
        await call
    err = info.value
    assert not err.retryable
    assert err.details["fault_code"].endswith("Client" if version == "1.1" else "Sender")
    assert err.status_code == (500 if version == "1.1" else 400)
    assert "DocTypeCode" in err.details["fault_string"]
    assert err.request_summary.startswith(f"SOAP {version} SyncDocument")
    assert simulator.records == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_server_fault_is_retryable_with_retry_after(
    simulator: LgspSimulator, http: httpx.AsyncClient, version: str
) -> None:
    connector, call = await _deliver_after(
        simulator, http, version, Fault(kind=LgspFault.SOAP_SERVER_FAULT, retry_after="7")
    )
    with pytest.raises(EndpointBusyError) as info:
        await call
    assert info.value.retryable
    assert info.value.retry_after == 7
    assert info.value.details["fault_code"].endswith("Server" if version == "1.1" else "Receiver")
    assert simulator.records == []
    # the fault was one-shot: the redelivery goes through
    await connector.deliver(sync_delivery(message_id="m-fault"))
    assert len(simulator.records) == 1


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [(503, 12), (429, 30), (500, 5)],
)
async def test_http_busy_statuses_are_retryable(
    simulator: LgspSimulator, http: httpx.AsyncClient, status: int, retry_after: int
) -> None:
    fault = Fault(kind=FaultKind.STATUS, status=status, retry_after=str(retry_after))
    _, call = await _deliver_after(simulator, http, "1.1", fault)
    with pytest.raises(EndpointBusyError) as info:
        await call
    assert info.value.status_code == status
    assert info.value.retry_after == retry_after
    assert simulator.records == []


async def test_timeout_is_retryable_transport_error(
    simulator: LgspSimulator, http: httpx.AsyncClient
) -> None:
    _, call = await _deliver_after(
        simulator, http, "1.2", Fault(kind=FaultKind.TIMEOUT, delay_seconds=1.5), timeout_seconds=0.3
    )
    with pytest.raises(TransportError) as info:
        await call
    assert info.value.retryable
    assert "timed out" in info.value.message
    assert simulator.records == []


async def test_dropped_connection_is_retryable(simulator: LgspSimulator, http: httpx.AsyncClient) -> None:
    _, call = await _deliver_after(simulator, http, "1.1", Fault(kind=FaultKind.DROP))
    with pytest.raises(TransportError):
        await call
    assert simulator.records == []


async def test_slow_answer_within_timeout_succeeds(simulator: LgspSimulator, http: httpx.AsyncClient) -> None:
    _, call = await _deliver_after(simulator, http, "1.1", Fault(kind=FaultKind.LATENCY, delay_seconds=0.2))
    receipt = await call
    assert receipt.remote_reference == "LGSP-000001"


async def test_already_exists_is_acknowledged(simulator: LgspSimulator, http: httpx.AsyncClient) -> None:
    _, call = await _deliver_after(simulator, http, "1.2", Fault(kind=LgspFault.ALREADY_EXISTS))
    receipt = await call
    assert receipt.response_summary.startswith("duplicate acknowledged")


async def test_business_rejection_is_permanent(simulator: LgspSimulator, http: httpx.AsyncClient) -> None:
    _, call = await _deliver_after(simulator, http, "1.1", Fault(kind=LgspFault.REJECT))
    with pytest.raises(BusinessRejectionError) as info:
        await call
    assert info.value.details["lgsp_status"] == 0
    assert "thiếu thông tin" in info.value.message_vi


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("digest", [True, False])
async def test_wrong_password_is_remote_auth_error(
    simulator: LgspSimulator, http: httpx.AsyncClient, version: str, digest: bool
) -> None:
    settings = soap_settings(simulator, version, password_digest=digest)
    settings.password = type(settings.password)("wrong")  # type: ignore[misc]
    connector = build_lgsp_soap_connector("lgsp", settings, http)
    with pytest.raises(RemoteAuthenticationError):
        await connector.deliver(sync_delivery())
    assert simulator.records == []
    assert any("authentication failed" in r for r in simulator.rejections)


async def test_plain_password_refused_when_digest_required(http: httpx.AsyncClient) -> None:
    with LgspSimulator(require_digest=True) as sim:
        plain = build_lgsp_soap_connector("lgsp", soap_settings(sim, password_digest=False), http)
        with pytest.raises(RemoteAuthenticationError):
            await plain.deliver(sync_delivery())
        digest = build_lgsp_soap_connector("lgsp", soap_settings(sim, password_digest=True), http)
        await digest.deliver(sync_delivery())
        assert len(sim.records) == 1


async def test_redelivery_with_same_message_id_is_stored_once(
    simulator: LgspSimulator, http: httpx.AsyncClient
) -> None:
    connector = build_lgsp_soap_connector("lgsp", soap_settings(simulator), http)
    first = await connector.deliver(sync_delivery(message_id="m-dup"))
    second = await connector.deliver(sync_delivery(message_id="m-dup"))
    assert first.remote_reference == "LGSP-000001"
    assert "duplicate" in second.response_summary
    assert len(simulator.records) == 1


async def test_concurrent_deliveries_share_one_client(
    simulator: LgspSimulator, http: httpx.AsyncClient
) -> None:
    connector = build_lgsp_soap_connector("lgsp", soap_settings(simulator, "1.2"), http)
    dossiers = [make_dossier(code=f"000.00.18.H42-250612-{n:04d}") for n in range(1, 21)]
    receipts = await asyncio.gather(
        *(connector.deliver(sync_delivery(d, message_id=f"m-{i}")) for i, d in enumerate(dossiers))
    )
    assert len({r.remote_reference for r in receipts}) == 20
    assert sorted(r.message_id for r in simulator.records) == sorted(
        f"urn:motcua-hub:message:m-{i}" for i in range(20)
    )


async def test_injected_http_client_headers_untouched(
    simulator: LgspSimulator, http: httpx.AsyncClient
) -> None:
    build_lgsp_soap_connector("lgsp", soap_settings(simulator), http)
    assert http.headers["User-Agent"] == "motcua-hub-test"


# --- input and configuration errors ------------------------------------------------------------


async def test_invalid_payload_and_unknown_kind(simulator: LgspSimulator, http: httpx.AsyncClient) -> None:
    connector = build_lgsp_soap_connector("lgsp", soap_settings(simulator), http)
    bad = sync_delivery()
    bad.payload["dossier"]["code"] = "not-a-code"
    with pytest.raises(InvalidInputError) as info:
        await connector.deliver(bad)
    assert "dossier.code" in info.value.message
    with pytest.raises(InvalidInputError, match="do not deliver message kind"):
        await connector.deliver(dataclasses.replace(sync_delivery(), kind="dossier.unknown"))
    assert simulator.records == []


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"wsdl_path": "http://lgsp.example/service?wsdl"}, "local file"),
        ({"wsdl_path": "/nonexistent/lgsp.wsdl"}, "does not exist"),
        ({"service_name": "NoSuchService"}, "no service"),
        ({"port_name": "NoSuchPort"}, "no SOAP 1.1 port"),
        ({"operations": {"sync": "PushDossier"}}, "lacks operations PushDossier"),
        ({"operations": {"delete": "X"}}, "unknown roles"),
        ({"soap_version": "1.3"}, "soap_version"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_configuration_errors(simulator: LgspSimulator, options: dict, needle: str) -> None:
    client = httpx.AsyncClient()
    with pytest.raises(ConfigurationError) as info:
        build_lgsp_soap_connector("lgsp", soap_settings(simulator, **options), client)
    assert needle in info.value.message


# --- a province's own WSDL dropped in ------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("by_name", [True, False])
async def test_drop_in_wsdl_variant(http: httpx.AsyncClient, version: str, by_name: bool) -> None:
    names = (
        {"service_name": "DichVuHoSoTinh", "port_name": f"HoSoMotCuaSoap{version.replace('.', '')}Port"}
        if by_name
        else {}
    )
    with LgspSimulator(wsdl_path=VARIANT_WSDL) as sim:
        connector = build_lgsp_soap_connector(
            "lgsp", soap_settings(sim, version, wsdl_path=str(VARIANT_WSDL), **names), http
        )
        assert connector.client.soap_version == version
        dossier = make_dossier()
        await connector.deliver(sync_delivery(dossier))
        await connector.deliver(progress_delivery())
        assert [r.operation for r in sim.records] == ["SyncDocument", "UpdateDocumentTraces"]
        assert b"http://lgsp.province.example/services/hoso/2024" in sim.records[0].body
        assert await connector.lookup(dossier.code, message_id="q") == dossier


async def test_bundled_wsdl_against_variant_server_is_a_client_fault(http: httpx.AsyncClient) -> None:
    with LgspSimulator(wsdl_path=VARIANT_WSDL) as sim:
        connector = build_lgsp_soap_connector("lgsp", soap_settings(sim), http)
        with pytest.raises(SoapFaultError) as info:
            await connector.deliver(sync_delivery())
        assert "unknown operation element" in info.value.details["fault_string"]
        assert sim.records == []


async def test_renamed_operations_by_configuration(
    simulator: LgspSimulator, http: httpx.AsyncClient, tmp_path
) -> None:
    """A province WSDL whose operations have other names (same messages and SOAP actions)."""
    import shutil

    from connectors.lgsp.soap import bundled_wsdl_path

    source = bundled_wsdl_path()
    shutil.copy(source.with_suffix(".xsd"), tmp_path / source.with_suffix(".xsd").name)
    text = source.read_text(encoding="utf-8")
    renames = {
        "SyncDocument": "DongBoHoSo",
        "UpdateDocumentTraces": "CapNhatTienDo",
        "GetDocument": "TraCuuHoSo",
    }
    for old, new in renames.items():
        text = text.replace(f'<wsdl:operation name="{old}">', f'<wsdl:operation name="{new}">')
    wsdl = tmp_path / "renamed.wsdl"
    wsdl.write_text(text, encoding="utf-8")
    operations = {"sync": "DongBoHoSo", "traces": "CapNhatTienDo", "lookup": "TraCuuHoSo"}
    connector = build_lgsp_soap_connector(
        "lgsp", soap_settings(simulator, "1.2", wsdl_path=str(wsdl), operations=operations), http
    )
    receipt = await connector.deliver(sync_delivery())
    assert receipt.request_summary.startswith("SOAP 1.2 DongBoHoSo")
    await connector.deliver(progress_delivery())
    assert [r.operation for r in simulator.records] == ["SyncDocument", "UpdateDocumentTraces"]
    assert await connector.lookup(make_dossier().code, message_id="q") == make_dossier()
    with pytest.raises(ConfigurationError, match="lacks operations SyncDocument"):
        build_lgsp_soap_connector("lgsp", soap_settings(simulator, wsdl_path=str(wsdl)), http)


# --- on the hub's own (aiohttp-backed) HTTP client -------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (None, None),
        (Fault(kind=FaultKind.TIMEOUT, delay_seconds=1.5), TransportError),
        (Fault(kind=FaultKind.DROP), TransportError),
        (Fault(kind=FaultKind.STATUS, status=503, retry_after="9"), EndpointBusyError),
        (Fault(kind=LgspFault.SOAP_CLIENT_FAULT), SoapFaultError),
    ],
    ids=["ok", "timeout", "drop", "503", "client-fault"],
)
async def test_on_hub_tuned_http_client(
    simulator: LgspSimulator, fault: Fault | None, error: type[Exception] | None
) -> None:
    from connectors.http import build_http_client

    settings = soap_settings(simulator, "1.2", timeout_seconds=0.5)
    async with build_http_client(settings) as http:
        connector = build_lgsp_soap_connector("lgsp", settings, http)
        if fault is not None:
            simulator.faults.add(fault)
        if error is None:
            assert (await connector.deliver(sync_delivery())).remote_reference == "LGSP-000001"
        else:
            with pytest.raises(error):
                await connector.deliver(sync_delivery())
            assert simulator.records == []
            await connector.deliver(sync_delivery())  # the pooled connection recovers
            assert len(simulator.records) == 1


# --- the fast MResult reply path and request rendering ------------------------------------------


async def test_empty_message_in_mresult_is_a_delivery(
    simulator: LgspSimulator, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``<Message/>`` with Status 1 is success (read as ""), not a malformed answer."""
    original = simulator.soap.result

    def blank_message(version: str, operation: str, message_id: str, status: int, message: str, *args, **kw):
        return original(version, operation, message_id, status, "", *args, **kw)

    monkeypatch.setattr(simulator.soap, "result", blank_message)
    connector = build_lgsp_soap_connector("lgsp", soap_settings(simulator), http)
    receipt = await connector.deliver(sync_delivery())
    assert receipt.status_code == 200
    assert "Status=1" in receipt.response_summary
    assert len(simulator.records) == 1


async def test_fault_answers_still_go_through_zeep(simulator: LgspSimulator, http: httpx.AsyncClient) -> None:
    """The fast path only reads plain MResult answers; a Receiver fault keeps its mapping."""
    connector = build_lgsp_soap_connector("lgsp", soap_settings(simulator, "1.2"), http)
    simulator.faults.add(Fault(kind=LgspFault.SOAP_SERVER_FAULT, operation="SyncDocument"))
    with pytest.raises(EndpointBusyError):
        await connector.deliver(sync_delivery())
    assert (await connector.deliver(sync_delivery())).status_code == 200


async def test_request_field_not_in_the_wsdl_is_refused_before_sending(
    simulator: LgspSimulator, http: httpx.AsyncClient
) -> None:
    connector = build_lgsp_soap_connector("lgsp", soap_settings(simulator), http)
    record = to_sync_document(make_dossier())
    body = {"Document": {**record.model_dump(exclude_none=True), "NotInTheSchema": "x"}}
    with pytest.raises(InvalidInputError, match="NotInTheSchema"):
        await connector.client.call("sync", body, message_id="m-1", summary="test")
    assert simulator.records == []
