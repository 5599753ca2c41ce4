"""REST connector against the simulator: OAuth2 token cache/refresh, WSO2 paths, MResult, faults."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
from pydantic import SecretStr

from connectors.base import Connector
from connectors.lgsp import build_lgsp_rest_connector
from connectors.lgsp.mapping import from_sync_document, from_traces
from connectors.lgsp.models import MSyncDocument, UpdateDocumentTracesRequest
from connectors.lgsp.rest import OAuth2ClientCredentials
from hub.simulators.faults import Fault, FaultKind
from hub.simulators.lgsp import LgspFault, LgspSimulator
from schemas.errors import (
    BusinessRejectionError,
    ConfigurationError,
    EndpointBusyError,
    RemoteAuthenticationError,
    SessionExpiredError,
    TransportError,
)
from tests.connectors.lgsp.lgsp_factories import (
    make_dossier,
    make_steps,
    progress_delivery,
    rest_settings,
    sync_delivery,
)


async def test_sync_and_progress_round_trip(simulator: LgspSimulator, http: httpx.AsyncClient) -> None:
    connector = build_lgsp_rest_connector("lgsp-rest", rest_settings(simulator), http)
    assert isinstance(connector, Connector)
    dossier = make_dossier()
    receipt = await connector.deliver(sync_delivery(dossier, message_id="r-1"))
    assert receipt.status_code == 200
    assert receipt.remote_reference == "LGSP-000001"
    assert "/motcua/1.0.0/Document/SyncDocument" in receipt.request_summary
    assert "037190001234" not in receipt.request_summary
    await connector.deliver(progress_delivery(message_id="r-2"))
    sync_record, traces_record = simulator.records
    assert (sync_record.operation, sync_record.message_id) == ("SyncDocument", "r-1")
    assert from_sync_document(MSyncDocument.model_validate(sync_record.payload())) == dossier
    assert traces_record.operation == "UpdateDocumentTraces"
    assert from_traces(UpdateDocumentTracesRequest.model_validate(traces_record.payload())) == make_steps()
    assert simulator.token_count == 1
    assert await connector.lookup(dossier.code, message_id="q-1") == dossier
    assert await connector.lookup("000.00.18.H42-250612-0099", message_id="q-2") is None


async def test_inline_attachment_bytes_travel_as_base64(
    simulator: LgspSimulator, http: httpx.AsyncClient
) -> None:
    from connectors.lgsp.mapping import to_sync_document

    doc = to_sync_document(
        make_dossier(), attachment_loader=lambda d: b"%PDF-1.7 test" if d.id == "TL-1" else None
    )
    body = doc.model_dump_json(exclude_none=True)
    assert '"Base64":"JVBERi0xLjcgdGVzdA=="' in body
    assert MSyncDocument.model_validate_json(body).Attachments[0].Base64 == b"%PDF-1.7 test"


async def test_token_is_cached_across_deliveries(simulator: LgspSimulator, http: httpx.AsyncClient) -> None:
    connector = build_lgsp_rest_connector("lgsp-rest", rest_settings(simulator), http)
    await asyncio.gather(*(connector.deliver(sync_delivery(message_id=f"c-{i}")) for i in range(10)))
    assert simulator.token_count == 1
    assert connector.client.auth.fetch_count == 1


async def test_token_revoked_mid_burst_is_refreshed_once(
    simulator: LgspSimulator, http: httpx.AsyncClient
) -> None:
    connector = build_lgsp_rest_connector("lgsp-rest", rest_settings(simulator), http)
    await connector.deliver(sync_delivery(message_id="warm-up"))
    # The next request revokes every token server-side and is answered 401; requests already
    # in flight with the old token get 401 too. Each retries once with the single new token.
    simulator.faults.add(Fault(kind=LgspFault.EXPIRED_TOKEN))
    receipts = await asyncio.gather(
        *(
            connector.deliver(
                sync_delivery(make_dossier(code=f"000.00.18.H42-250612-{n:04d}"), message_id=f"b-{n}")
            )
            for n in range(1, 21)
        )
    )
    assert len(receipts) == 20
    assert len(simulator.records) == 21
    assert simulator.token_count == 2
    assert connector.client.auth.fetch_count == 2
    assert simulator.unauthorized_count >= 1


async def test_token_expiry_by_clock_refreshes_before_use(
    simulator: LgspSimulator, http: httpx.AsyncClient
) -> None:
    now = [1000.0]
    auth = OAuth2ClientCredentials(
        http,
        f"{simulator.url}/token",
        simulator.client_id,
        simulator.client_secret,
        timeout=httpx.Timeout(5),
        skew_seconds=30,
        clock=lambda: now[0],
    )
    first = await auth.token()
    assert first.authorization.startswith("Bearer ")
    now[0] += simulator.token_lifetime_seconds - 31  # still inside expires_in − skew
    assert await auth.token() is first
    now[0] += 2  # inside the safety margin: refreshed before the server would refuse it
    second = await auth.token()
    assert second is not first
    assert simulator.token_count == 2


async def test_token_rejected_twice_is_session_expired(
    simulator: LgspSimulator, http: httpx.AsyncClient
) -> None:
    connector = build_lgsp_rest_connector("lgsp-rest", rest_settings(simulator), http)
    simulator.faults.add(Fault(kind=LgspFault.EXPIRED_TOKEN, times=2))
    with pytest.raises(SessionExpiredError) as info:
        await connector.deliver(sync_delivery())
    assert info.value.retryable
    assert info.value.status_code == 401
    assert simulator.records == []


async def test_bad_client_secret_is_permanent(simulator: LgspSimulator, http: httpx.AsyncClient) -> None:
    settings = rest_settings(simulator)
    settings.client_secret = SecretStr("wrong")
    connector = build_lgsp_rest_connector("lgsp-rest", settings, http)
    with pytest.raises(RemoteAuthenticationError) as info:
        await connector.deliver(sync_delivery())
    assert info.value.status_code == 401
    assert "wrong" not in str(info.value.to_dict())  # the secret never lands in error details
    assert simulator.records == []


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        (Fault(kind=FaultKind.STATUS, status=503, retry_after="12"), EndpointBusyError, 503),
        (Fault(kind=FaultKind.STATUS, status=429, retry_after="60"), EndpointBusyError, 429),
        (Fault(kind=LgspFault.SOAP_SERVER_FAULT, retry_after="3"), EndpointBusyError, 500),
        (Fault(kind=LgspFault.SOAP_CLIENT_FAULT), BusinessRejectionError, 400),
        (Fault(kind=LgspFault.REJECT), BusinessRejectionError, 200),
    ],
)
async def test_fault_classification(
    simulator: LgspSimulator, http: httpx.AsyncClient, fault: Fault, error: type[Exception], status: int
) -> None:
    connector = build_lgsp_rest_connector("lgsp-rest", rest_settings(simulator), http)
    simulator.faults.add(fault)
    with pytest.raises(error) as info:
        await connector.deliver(sync_delivery())
    assert info.value.status_code == status  # type: ignore[attr-defined]
    if fault.retry_after is not None:
        assert info.value.retry_after == float(fault.retry_after)  # type: ignore[attr-defined]
    assert simulator.records == []


@pytest.mark.parametrize("hub_tuned", [False, True], ids=["httpx-client", "hub-http-client"])
async def test_timeout_and_drop_are_transport_errors(
    simulator: LgspSimulator, http: httpx.AsyncClient, hub_tuned: bool
) -> None:
    """On a plain httpx client and on the hub's tuned one (connectors.http): nothing recorded for a
    timeout or a dropped connection; an expired token is refreshed once."""
    from connectors.http import build_http_client

    settings = rest_settings(simulator, timeout_seconds=0.3)
    async with build_http_client(settings) if hub_tuned else contextlib.nullcontext(http) as client:
        connector = build_lgsp_rest_connector("lgsp-rest", settings, client)
        await connector.deliver(sync_delivery(message_id="t-1"))
        simulator.faults.add(Fault(kind=FaultKind.TIMEOUT, delay_seconds=1.5))
        with pytest.raises(TransportError):
            await connector.deliver(sync_delivery(message_id="t-2"))
        simulator.faults.add(Fault(kind=FaultKind.DROP))
        with pytest.raises(TransportError):
            await connector.deliver(sync_delivery(message_id="t-3"))
        assert [r.message_id for r in simulator.records] == ["t-1"]
        simulator.faults.add(Fault(kind=LgspFault.EXPIRED_TOKEN))
        await connector.deliver(sync_delivery(message_id="t-4"))
        assert [r.message_id for r in simulator.records] == ["t-1", "t-4"]
        assert simulator.token_count == 2


async def test_already_exists_and_redelivery(simulator: LgspSimulator, http: httpx.AsyncClient) -> None:
    connector = build_lgsp_rest_connector("lgsp-rest", rest_settings(simulator), http)
    simulator.faults.add(Fault(kind=LgspFault.ALREADY_EXISTS))
    assert (await connector.deliver(sync_delivery(message_id="d-1"))).response_summary.startswith("duplicate")
    await connector.deliver(sync_delivery(message_id="d-2"))
    again = await connector.deliver(sync_delivery(message_id="d-2"))
    assert "duplicate" in again.response_summary
    assert len(simulator.records) == 1


async def test_custom_wso2_context_and_version(http: httpx.AsyncClient) -> None:
    with LgspSimulator(context="lgsp-motcua", version="2.1") as sim:
        default = build_lgsp_rest_connector("lgsp-rest", rest_settings(sim), http)
        with pytest.raises(BusinessRejectionError):  # 404 on the wrong path is a permanent refusal
            await default.deliver(sync_delivery())
        custom = build_lgsp_rest_connector(
            "lgsp-rest", rest_settings(sim, context="lgsp-motcua", version="2.1"), http
        )
        receipt = await custom.deliver(sync_delivery())
        assert "/lgsp-motcua/2.1/Document/SyncDocument" in receipt.request_summary


def test_rest_configuration_errors(simulator: LgspSimulator) -> None:
    client = httpx.AsyncClient()
    settings = rest_settings(simulator)
    settings.client_id = None
    with pytest.raises(ConfigurationError, match="client_id"):
        build_lgsp_rest_connector("lgsp-rest", settings, client)
    with pytest.raises(ConfigurationError, match="unknown"):
        build_lgsp_rest_connector("lgsp-rest", rest_settings(simulator, unknown=True), client)
