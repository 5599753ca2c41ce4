"""What the LGSP simulator validates against: the WSDL's operations and the XSD it imports.

Read with the hardened parser (:func:`connectors.xmlsafety.parse_xml`), never zeep: the
simulator shares no code path with the hub's SOAP client. SOAP bodies are validated by lxml's
XMLSchema (libxml2); REST JSON bodies are encoded against the same XSD by xmlschema (built on
first use, per contract — a test session shares one contract between its simulators) or, for
the benchmark, checked by the hub's pydantic wire models.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lxml import etree
from pydantic import BaseModel, ValidationError

from connectors.lgsp.models import MSyncDocument, UpdateDocumentTracesRequest
from connectors.lgsp.soap import bundled_wsdl_path
from connectors.xmlsafety import parse_xml
from schemas.errors import InvalidInputError

_WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
_WSDL_SOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
_XSD_NS = "http://www.w3.org/2001/XMLSchema"

RestValidation = Literal["xsd", "model"]


@dataclass(frozen=True)
class WsdlInfo:
    namespace: str
    schema_path: Path
    actions: dict[str, str]
    """Operation name → soapAction."""


def read_wsdl(path: Path) -> WsdlInfo:
    """Target namespace, imported XSD and soapActions, read with the hardened parser."""
    root = parse_xml(path.read_bytes())
    namespace = root.get("targetNamespace") or ""
    location = None
    for imp in root.iter(f"{{{_XSD_NS}}}import"):
        if imp.get("namespace") == namespace:
            location = imp.get("schemaLocation")
    if location is None:
        raise InvalidInputError(f"WSDL {path} does not import an XSD for {namespace}")
    actions: dict[str, str] = {}
    for op in root.iter(f"{{{_WSDL_NS}}}operation"):
        soap_op = op.find(f"{{{_WSDL_SOAP11}}}operation")
        if soap_op is not None and op.get("name"):
            actions[str(op.get("name"))] = soap_op.get("soapAction") or ""
    return WsdlInfo(namespace, (path.parent / location).resolve(), actions)


def _prune_empty(value: Any) -> Any:
    """JSON ``[]`` means zero occurrences; xmlschema would encode an empty element instead."""
    if isinstance(value, dict):
        return {k: _prune_empty(v) for k, v in value.items() if v != [] and v is not None}
    if isinstance(value, list):
        return [_prune_empty(v) for v in value]
    return value


def _strip_xmlns(value: Any) -> Any:
    if isinstance(value, dict):
        return {k.rsplit(":", 1)[-1]: _strip_xmlns(v) for k, v in value.items() if not k.startswith("@xmlns")}
    if isinstance(value, list):
        return [_strip_xmlns(v) for v in value]
    return value


_WIRE_MODELS: dict[str, type[BaseModel]] = {
    "SyncDocument": MSyncDocument,
    "UpdateDocumentTraces": UpdateDocumentTracesRequest,
}


class LgspContract:
    """One WSDL and its XSD, compiled for validation (share one between simulators of a test run)."""

    def __init__(self, wsdl_path: Path | None = None) -> None:
        self.wsdl_path = (wsdl_path or bundled_wsdl_path()).resolve()
        self.wsdl = read_wsdl(self.wsdl_path)
        self.schema = etree.XMLSchema(parse_xml(self.wsdl.schema_path.read_bytes()))
        self._xmlschema: Any = None
        self._lock = threading.Lock()

    @property
    def namespace(self) -> str:
        return self.wsdl.namespace

    @property
    def actions(self) -> dict[str, str]:
        return self.wsdl.actions

    def xmlschema(self) -> Any:
        """The XSD compiled by xmlschema (about 0.3 s; built once per contract, on first use)."""
        with self._lock:
            if self._xmlschema is None:
                import xmlschema

                self._xmlschema = xmlschema.XMLSchema(str(self.wsdl.schema_path))
            return self._xmlschema

    def body_problem(self, element: etree._Element) -> str | None:
        """``None`` when the SOAP Body's operation element validates against the XSD, else why not."""
        if self.schema.validate(element):
            return None
        error = self.schema.error_log.filter_from_errors()
        first = error[0] if error else None
        return f"line {first.line}: {first.message}" if first else "schema validation failed"

    def json_problem(self, operation: str, data: dict[str, Any], mode: RestValidation) -> str | None:
        """Validate a REST body; ``None`` when valid, else the first problem.

        ``xsd``: encode the JSON against the WSDL's XSD with xmlschema (independent of the hub's
        models; about 2 ms per record). ``model``: the hub's pydantic wire models (fast; used
        by the benchmark so the simulator is not the bottleneck).
        """
        if mode == "model":
            try:
                if operation in _WIRE_MODELS:
                    _WIRE_MODELS[operation].model_validate(data)
            except ValidationError as exc:
                return str(exc.errors()[0]["msg"])
            return None
        import xmlschema

        wrapped = {"Document": data} if operation == "SyncDocument" else data
        try:
            self.xmlschema().encode(_prune_empty(wrapped), path=operation, namespaces={"": self.namespace})
        except (xmlschema.XMLSchemaValidationError, xmlschema.XMLSchemaEncodeError) as exc:
            return str(exc.reason or exc.message)
        return None

    def decode(self, xml: bytes) -> dict[str, Any]:
        """An accepted SOAP body element as plain data (XSD-driven decoding, prefixes stripped)."""
        decoded: dict[str, Any] = _strip_xmlns(self.xmlschema().to_dict(xml.decode("utf-8")))
        return decoded
