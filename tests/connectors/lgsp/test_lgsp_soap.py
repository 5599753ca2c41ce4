"""SOAP connector against the simulator: both SOAP versions, headers, faults, drop-in WSDL."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from lgsp_factories import VARIANT_WSDL, make_dossier, make_steps, progress_delivery, soap_settings, sync_delivery

from connectors.base import Connector
from connectors.lgsp import build_lgsp_soap_connector
from connectors.lgsp.mapping import from_sync_document, from_traces
from connectors.lgsp.models import MSyncDocument, UpdateDocumentTracesRequest
from connectors.lgsp.simulator import FaultSpec, LgspSimulator
from hub.errors import (
    BusinessRejectionError,
    ConfigurationError,
    EndpointBusyError,
    InvalidInputError,
    RemoteAuthenticationError,
    SoapFaultError,
    TransportError,
)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
async def test_sync_round_trip_through_simulator(simulator: LgspSimulator, http: httpx.AsyncClient, version: str) -> None:
    connector = build_lgsp_soap_connector("lgsp", soap_settings(simulator, version), http)
    assert isinstance(connector, Connector)
    dossier = make_dossier()
    receipt = await connector.deliver(sync_delivery(dossier, message_id="3f0c2a4e-8d1b-4c4e-9d7a-0a1b2c3d4e5f"))
    assert receipt.status_code == 200
    assert receipt.remote_reference == "LGSP-000001"
    assert "Status=1" in receipt.response_summary
    # No personal data in what the worker records.
    assert "037190001234" not in receipt.request_summary and "0912345678" not in receipt.request_summary
    [record] = simulator.records
    assert record.flavour == ("soap11" if version == "1.1" else "soap12")
    assert record.operation == "SyncDocument"
    assert record.message_id == "urn:uuid:3f0c2a4e-8d1b-4c4e-9d7a-0a1b2c3d4e5f"
    assert record.username == "hub"
    # canonical → wire (zeep) → XML validated by libxml2 → decoded by xmlschema → canonical
    wire = MSyncDocument.model_validate(record.payload()["Document"])
    assert from_sync_document(wire) == dossier


async def test_progress_round_trip_through_simulator(simulator: LgspSimulator, http: httpx.AsyncClient) -> None:
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
