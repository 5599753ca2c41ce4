"""Hostile input to the simulator (and a hostile server to the client): clear errors, nothing stored."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

import httpx
import pytest

from connectors.lgsp import build_lgsp_soap_connector
from connectors.lgsp.mapping import to_sync_document
from hub.simulators.lgsp import LgspSimulator
from schemas.errors import HubError, SoapFaultError, UnsafeXmlError
from tests.connectors.lgsp.hostile_xml import BILLION_LAUGHS, XXE_FILE
from tests.connectors.lgsp.lgsp_factories import make_dossier, soap_settings, sync_delivery

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
ErrorT = TypeVar("ErrorT", bound=HubError)


def _envelope(sim_http: httpx.Client, sim: LgspSimulator, version: str = "1.1") -> bytes:
    """A valid envelope exactly as the connector would send it."""
    import asyncio

    async def build() -> bytes:
        async with httpx.AsyncClient() as http:
            connector = build_lgsp_soap_connector("lgsp", soap_settings(sim, version), http)
            body = {"Document": to_sync_document(make_dossier()).model_dump(exclude_none=True)}
            return connector.client.build_envelope("sync", body, "m-hostile")

    return asyncio.run(build())


def _post(
    sim: LgspSimulator, body: bytes, *, version: str = "1.1", content_type: str | None = None
) -> httpx.Response:
    url = sim.soap11_url if version == "1.1" else sim.soap12_url
    ctype = content_type or (
        "text/xml; charset=utf-8" if version == "1.1" else "application/soap+xml; charset=utf-8"
    )
    headers = {"Content-Type": ctype}
    if version == "1.1":
        headers["SOAPAction"] = '"urn:motcua-hub:lgsp:document:1/SyncDocument"'
    return httpx.post(url, content=body, headers=headers, timeout=10)


@pytest.fixture
def valid_envelope(simulator: LgspSimulator) -> bytes:
    return _envelope(httpx.Client(), simulator)


def test_valid_raw_envelope_is_accepted(simulator: LgspSimulator, valid_envelope: bytes) -> None:
    response = _post(simulator, valid_envelope)
    assert response.status_code == 200, response.text
    assert len(simulator.records) == 1


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        (BILLION_LAUGHS, "DTD"),
        (XXE_FILE, "DTD"),
        (
            b"<soap:Envelope xmlns:soap='" + SOAP11.encode() + b"'><soap:Body><unclosed></soap:Body>",
            "malformed XML",
        ),
    ],
    ids=["billion-laughs", "xxe", "malformed"],
)
def test_unsafe_or_malformed_envelope_refused(simulator: LgspSimulator, document: bytes, needle: str) -> None:
    response = _post(simulator, document)
    assert response.status_code == 500  # SOAP 1.1 HTTP binding: faults travel with 500
    assert b"Client" in response.content
    assert needle.encode() in response.content
    assert b"root:" not in response.content
    assert simulator.records == []
    assert len(simulator.rejections) == 1


def test_oversized_envelope_refused(valid_envelope: bytes) -> None:
    with LgspSimulator(max_body_bytes=len(valid_envelope) - 1) as sim:
        response = _post(sim, valid_envelope)
        assert response.status_code == 413
        assert sim.records == []
        assert "over the limit" in sim.rejections[0]


@pytest.mark.parametrize(
    ("version", "ctype"), [("1.1", "application/json"), ("1.2", "text/xml; charset=utf-8")]
)
def test_wrong_content_type_refused(
    simulator: LgspSimulator, valid_envelope: bytes, version: str, ctype: str
) -> None:
    response = _post(simulator, valid_envelope, version=version, content_type=ctype)
    assert response.status_code == 415
    assert b"requires Content-Type" in response.content
    assert simulator.records == []


def test_soap11_envelope_on_soap12_endpoint_refused(simulator: LgspSimulator, valid_envelope: bytes) -> None:
    response = _post(simulator, valid_envelope, version="1.2")
    assert response.status_code == 400
    assert b"does not match" in response.content
    assert simulator.records == []


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        (b"2025-06-12T01:05:00.000Z", b"2025-06-12 08:05:00", b"XSD"),  # DateReceived not §4.2 format
        (b"<ns0:ApplicantsType>1<", b"<ns0:ApplicantsType>9<", b"XSD"),
        (b"<ns0:DocCode>000.00.18.H42-250612-0001</ns0:DocCode>", b"", b"XSD"),
        (rb"<wsa:MessageID[^>]*>[^<]*</wsa:MessageID>", b"", b"MessageID header required"),
        (rb"/SyncDocument</wsa:Action>", b"/GetDocument</wsa:Action>", b"does not match"),
        (
            rb"<wsa:To ",
            b'<wsa:MessageID xmlns:wsa="http://www.w3.org/2005/08/addressing">'
            b"urn:uuid:0</wsa:MessageID><wsa:To ",
            b"more than once",
        ),
        (
            b"<wsse:Username>hub</wsse:Username>",
            b"<wsse:Username>eve</wsse:Username>",
            b"authentication failed",
        ),
    ],
    ids=[
        "date-format",
        "applicants-type",
        "missing-doccode",
        "no-message-id",
        "wrong-action",
        "duplicate-message-id",
        "wrong-user",
    ],
)
def test_invalid_envelopes_refused(
    simulator: LgspSimulator, valid_envelope: bytes, old: bytes, new: bytes, needle: bytes
) -> None:
    tampered, replaced = re.subn(old, new, valid_envelope, count=1)
    assert replaced == 1, old
    response = _post(simulator, tampered)
    assert response.status_code == 500
    assert needle in response.content, response.text
    assert simulator.records == []


def test_replayed_password_digest_refused(simulator: LgspSimulator, valid_envelope: bytes) -> None:
    assert b"#PasswordDigest" in valid_envelope
    assert _post(simulator, valid_envelope).status_code == 200
    replay = valid_envelope.replace(b"m-hostile", b"m-replay")
    response = _post(simulator, replay)
    assert response.status_code == 500
    assert b"FailedAuthentication" in response.content
    assert len(simulator.records) == 1


def test_rest_hostile_bodies(simulator: LgspSimulator) -> None:
    token = httpx.post(
        f"{simulator.url}/token",
        data={
            "grant_type": "client_credentials",
            "client_id": simulator.client_id,
            "client_secret": simulator.client_secret,
        },
    ).json()["access_token"]
    url = f"{simulator.url}/motcua/1.0.0/Document/SyncDocument"
    auth = {"Authorization": f"Bearer {token}"}
    assert (
        httpx.post(
            url, content=b"{not json", headers={**auth, "Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert httpx.post(url, content=b"<x/>", headers={**auth, "Content-Type": "text/xml"}).status_code == 415
    assert httpx.post(url, content=b"{}", headers={"Content-Type": "application/json"}).status_code == 401
    record = to_sync_document(make_dossier()).model_dump(mode="json", exclude_none=True)
    record["DateReceived"] = "12/06/2025 08:05"
    bad_date = httpx.post(url, json=record, headers=auth)
    assert bad_date.status_code == 400
    assert "pattern" in bad_date.json()["Message"]
    record["DateReceived"] = "2025-06-12T01:05:00.000Z"
    record["Surprise"] = 1
    assert httpx.post(url, json=record, headers=auth).status_code == 400
    invalid = httpx.post(
        url, content=b'{"DocCode": "x"}', headers={**auth, "Content-Type": "application/json"}
    )
    assert invalid.status_code == 400
    assert invalid.json()["Status"] == 0
    big = b'{"DocCode": "' + b"x" * (simulator.max_body_bytes + 1) + b'"}'
    assert (
        httpx.post(url, content=big, headers={**auth, "Content-Type": "application/json"}).status_code == 413
    )
    assert simulator.records == []


# --- a hostile server: the zeep client must not expand what it receives ---------------------------


@contextmanager
def _evil_server(body: bytes, status: int = 200) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


async def _deliver_to_server(
    simulator: LgspSimulator, body: bytes, expected: type[ErrorT], status: int = 200
) -> ErrorT:
    """Deliver a sync record to a server answering ``body`` with ``status``; the ``expected`` error raised."""
    with _evil_server(body, status) as url:
        settings = soap_settings(simulator)
        settings.url = url
        async with httpx.AsyncClient() as http:
            connector = build_lgsp_soap_connector("lgsp", settings, http)
            with pytest.raises(expected) as info:
                await connector.deliver(sync_delivery())
    return info.value


@pytest.mark.parametrize("document", [BILLION_LAUGHS, XXE_FILE], ids=["billion-laughs", "xxe"])
async def test_client_refuses_unsafe_response(simulator: LgspSimulator, document: bytes) -> None:
    error = await _deliver_to_server(simulator, document, UnsafeXmlError)
    assert not error.retryable


async def test_partner_echo_of_personal_data_is_masked(simulator: LgspSimulator) -> None:
    """A fault that echoes the citizen's ID and phone must not carry them into the DLQ record."""
    fault = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>'
        "<faultcode>soap:Client</faultcode>"
        "<faultstring>CCCD 037190001234, SĐT 0912345678 không khớp</faultstring>"
        "</soap:Fault></soap:Body></soap:Envelope>"
    ).encode()
    error = await _deliver_to_server(simulator, fault, SoapFaultError)
    dumped = str(error.to_dict())
    assert "037190001234" not in dumped
    assert "0912345678" not in dumped
    assert "*********234" in error.details["fault_string"]


@pytest.mark.parametrize(
    "body", [b"not xml at all", b"<html><body>proxy page</body></html>"], ids=["text", "html"]
)
async def test_garbled_200_answer_is_retryable(simulator: LgspSimulator, body: bytes) -> None:
    error = await _deliver_to_server(simulator, body, HubError)
    assert error.retryable, error


async def test_html_404_is_permanent(simulator: LgspSimulator) -> None:
    error = await _deliver_to_server(simulator, b"<html><body>Not Found</body></html>", SoapFaultError, 404)
    assert error.status_code == 404
    assert "check the endpoint address" in error.message
