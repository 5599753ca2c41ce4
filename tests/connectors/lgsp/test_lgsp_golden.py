"""Golden SOAP 1.1 / 1.2 envelopes: what the connector puts on the wire, byte-for-byte modulo C14N.

Generated values (UsernameToken digest, nonce, creation time) are replaced by placeholders, the
rest is compared as Canonical XML 2.0 with whitespace-only text stripped. Regenerate after a
deliberate change with ``LGSP_UPDATE_GOLDEN=1 pytest tests/connectors/lgsp/test_lgsp_golden.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import xmlschema
from lxml import etree
from pydantic import SecretStr

from connectors.lgsp import build_lgsp_soap_connector
from connectors.lgsp.mapping import to_sync_document, to_traces
from connectors.lgsp.soap import bundled_wsdl_path
from connectors.settings import EndpointKind, EndpointSettings
from connectors.xmlsafety import parse_xml
from tests.connectors.lgsp.lgsp_factories import make_dossier, make_steps

GOLDEN = Path(__file__).parent / "golden"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PLACEHOLDERS = {
    f"{{{WSSE}}}Password": "PASSWORD-DIGEST",
    f"{{{WSSE}}}Nonce": "NONCE",
    f"{{{WSU}}}Created": "CREATED",
}


def normalise(envelope: bytes) -> str:
    root = parse_xml(envelope)
    for tag, placeholder in PLACEHOLDERS.items():
        for element in root.iter(tag):
            element.text = placeholder
    return etree.tostring(root, method="c14n2", strip_text=True).decode("utf-8")


def _envelope(version: str, role: str) -> bytes:
    settings = EndpointSettings(
        kind=EndpointKind.LGSP_SOAP,
        url=f"http://lgsp.test/lgsp/soap{version.replace('.', '')}",
        username="hub",
        password=SecretStr("hub-secret"),
        options={"soap_version": version},
    )
    connector = build_lgsp_soap_connector("lgsp", settings, httpx.AsyncClient())
    dossier = make_dossier()
    if role == "sync":
        body = {"Document": to_sync_document(dossier).model_dump(exclude_none=True)}
    else:
        body = to_traces(dossier, make_steps()).model_dump(exclude_none=True)
    return connector.client.build_envelope(role, body, "0b7f3c1e-5a2d-4f7e-9c3b-2d1e0f9a8b7c")


CASES = [(v, r) for v in ("1.1", "1.2") for r in ("sync", "traces")]


@pytest.mark.parametrize(("version", "role"), CASES)
def test_envelope_matches_golden(version: str, role: str) -> None:
    name = {"sync": "sync_document", "traces": "update_document_traces"}[role]
    path = GOLDEN / f"{name}.soap{version.replace('.', '')}.xml"
    actual = _envelope(version, role)
    if os.environ.get("LGSP_UPDATE_GOLDEN") == "1":
        root = parse_xml(actual)
        for tag, placeholder in PLACEHOLDERS.items():
            for element in root.iter(tag):
                element.text = placeholder
        etree.indent(root, space="  ")
        path.write_bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8") + b"\n")
    assert normalise(actual) == normalise(path.read_bytes())


@pytest.mark.parametrize(("version", "role"), CASES)
def test_golden_body_is_schema_valid(version: str, role: str) -> None:
    """The golden bodies validate with xmlschema (a validator unrelated to zeep and libxml2)."""
    name = {"sync": "sync_document", "traces": "update_document_traces"}[role]
    root = parse_xml((GOLDEN / f"{name}.soap{version.replace('.', '')}.xml").read_bytes())
    env = (
        "http://schemas.xmlsoap.org/soap/envelope/"
        if version == "1.1"
        else "http://www.w3.org/2003/05/soap-envelope"
    )
    assert root.tag == f"{{{env}}}Envelope"
    body = root.find(f"{{{env}}}Body")
    assert body is not None
    schema = xmlschema.XMLSchema(str(bundled_wsdl_path().with_suffix(".xsd")))
    schema.validate(etree.tostring(body[0]).decode())


def test_normalisation_ignores_only_generated_values() -> None:
    a, b = _envelope("1.1", "sync"), _envelope("1.1", "sync")
    assert a != b  # fresh nonce and digest every time
    assert normalise(a) == normalise(b)
    assert normalise(a) != normalise(a.replace(b"Nguy\xe1\xbb\x85n", b"Nguyen"))
