"""Interop: the zeep client against spyne, a SOAP stack that shares no code with the hub.

spyne 2.14 serves both SOAP 1.1 and SOAP 1.2 (``spyne.protocol.soap.Soap12``) and validates each
request with lxml against the schema it generates from its own model classes.
"""

from __future__ import annotations

import re

import httpx
import pytest
from pydantic import SecretStr

from connectors.lgsp import build_lgsp_soap_connector
from connectors.lgsp.mapping import to_sync_document
from connectors.settings import EndpointKind, EndpointSettings
from schemas.errors import EndpointBusyError, SoapFaultError
from tests.connectors.lgsp.lgsp_factories import make_dossier, make_steps, progress_delivery, sync_delivery
from tests.connectors.lgsp.spyne_lgsp import spyne_server

VERSIONS = ["1.1", "1.2"]


def _settings(url: str, version: str) -> EndpointSettings:
    return EndpointSettings(
        kind=EndpointKind.LGSP_SOAP,
        url=url,
        username="hub",
        password=SecretStr("hub-secret"),
        timeout_seconds=5,
        options={"soap_version": version},
    )


@pytest.mark.parametrize("version", VERSIONS)
async def test_sync_traces_lookup_against_spyne(http: httpx.AsyncClient, version: str) -> None:
    with spyne_server(version) as (url, store):
        connector = build_lgsp_soap_connector("lgsp", _settings(url, version), http)
        dossier = make_dossier()
        receipt = await connector.deliver(sync_delivery(dossier))
        assert receipt.remote_reference == "SPYNE-1"
        assert "OK (spyne)" in receipt.response_summary
        stored = store.documents[dossier.code]
        assert stored.CitizenName == "Nguyễn Thị Hoà"
        assert stored.DateReceived == "2025-06-12T01:05:00.000Z"
        assert [a.AttachmentId for a in stored.Attachments] == ["TL-1", "TL-2"]
        assert stored.Supplementaries[0].NewDateAppointed == "2025-06-30T10:00:00.000Z"

        receipt = await connector.deliver(progress_delivery())
        assert "2 traces (spyne)" in receipt.response_summary
        assert [t.Comment for t in store.traces] == [s.content for s in make_steps()]

        # spyne's own serialisation of GetDocumentResponse, read back by zeep → canonical
        assert await connector.lookup(dossier.code, message_id="q-1") == dossier
        assert await connector.lookup("000.00.18.H42-250612-0042", message_id="q-2") is None


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("code", "error"), [("Client", SoapFaultError), ("Server", EndpointBusyError)])
async def test_spyne_faults_are_mapped(
    http: httpx.AsyncClient, version: str, code: str, error: type[Exception]
) -> None:
    with spyne_server(version) as (url, store):
        connector = build_lgsp_soap_connector("lgsp", _settings(url, version), http)
        store.fault_next = code
        with pytest.raises(error) as info:
            await connector.deliver(sync_delivery())
        assert "spyne injected fault" in info.value.details["fault_string"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("version", VERSIONS)
def test_spyne_schema_validation_is_live(version: str) -> None:
    """The same envelope spyne accepts is refused once DateReceived breaks the §4.2 pattern.

    spyne 2.14's SOAP 1.2 protocol crashes while serialising its own schema-validation fault
    (``TypeError`` on a bytes faultstring), so there the refusal is a bare HTTP 500; SOAP 1.1
    answers a proper Client fault.
    """
    with spyne_server(version) as (url, store):
        connector = build_lgsp_soap_connector("lgsp", _settings(url, version), httpx.AsyncClient())
        body = {"Document": to_sync_document(make_dossier()).model_dump(exclude_none=True)}
        envelope = connector.client.build_envelope("sync", body, "m-raw")
        ctype = "text/xml; charset=utf-8" if version == "1.1" else "application/soap+xml; charset=utf-8"
        headers = {"Content-Type": ctype, "SOAPAction": '"urn:motcua-hub:lgsp:document:1/SyncDocument"'}
        ok = httpx.post(url, content=envelope, headers=headers)
        assert ok.status_code == 200, ok.text
        bad = re.sub(rb"2025-06-12T01:05:00.000Z", b"12/06/2025 08:05", envelope, count=1)
        refused = httpx.post(url, content=bad, headers=headers)
        assert refused.status_code == 500
        if version == "1.1":
            assert b"Client" in refused.content
            assert b"pattern" in refused.content
        assert len(store.documents) == 1
