"""A stand-in LGSP: SOAP 1.1/1.2 on the WSDL, the REST flavour, ``/token``, and fault injection.

The simulator is a real HTTP/1.1 server (stdlib ``ThreadingHTTPServer``) so tests and the
benchmark exercise real sockets. It deliberately shares no code path with the hub's SOAP
client: envelopes are parsed with :func:`connectors.xmlsafety.parse_xml`, checked by hand
(SOAP 1.1 / SOAP 1.2 envelope, WS-Addressing ``MessageID``/``Action``, WS-Security
UsernameToken with PasswordText or PasswordDigest, nonce replay) and the body is validated
against the XSD the WSDL imports with lxml's XMLSchema (libxml2), never zeep. Accepted
requests are kept as :class:`SimulatorRecord` for inspection; refused ones are counted with
their reason and never stored.

Fault injection (:meth:`LgspSimulator.inject`): timeouts, slow answers, dropped connections,
HTTP 500/503 with ``Retry-After``, 429, SOAP Client/Sender and Server/Receiver faults,
"already exists" and other ``MResult`` rejections, and (REST) a revoked token.

Endpoints: ``POST /lgsp/soap11``, ``POST /lgsp/soap12``, ``GET /lgsp?wsdl``; ``POST /token``,
``POST /{context}/{version}/Document/{SyncDocument|UpdateDocumentTraces|GetDocument}``;
control ``GET /_sim/stats``, ``POST /_sim/faults`` (JSON :class:`FaultSpec`), ``POST /_sim/reset``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urljoin, urlparse

from lxml import etree
from pydantic import BaseModel, ValidationError

from connectors.lgsp.models import MSyncDocument, UpdateDocumentTracesRequest
from connectors.lgsp.soap import bundled_wsdl_path
from connectors.xmlsafety import parse_xml
from schemas.errors import HubError, InvalidInputError, PayloadTooLargeError

log = logging.getLogger(__name__)

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSA_NS = "http://www.w3.org/2005/08/addressing"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_TEXT = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
)
PASSWORD_DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
)
_WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
_WSDL_SOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
_XSD_NS = "http://www.w3.org/2001/XMLSchema"

FaultKind = Literal[
    "timeout",
    "slow",
    "drop",
    "http_500",
    "http_503",
    "http_429",
    "soap_client_fault",
    "soap_server_fault",
    "already_exists",
    "reject",
    "expired_token",
]


@dataclass
class FaultSpec:
    """One injected misbehaviour, applied to the next ``count`` matching requests."""

    kind: FaultKind
    count: int = 1
    operation: str | None = None
    """Only requests for this operation (``SyncDocument``...); ``None`` matches any."""
    retry_after: int | None = None
    delay_seconds: float = 3.0
    """For ``timeout`` and ``slow``."""


@dataclass(frozen=True)
class SimulatorRecord:
    """An accepted request."""

    flavour: Literal["soap11", "soap12", "rest"]
    operation: str
    message_id: str
    username: str | None
    body: bytes
    """SOAP: the Body's child element (XML); REST: the JSON body."""
    received_at: datetime
    _schema_path: Path | None = field(default=None, repr=False, compare=False)

    def payload(self) -> dict[str, Any]:
        """The request as plain data: XSD-driven decoding (xmlschema) for SOAP, JSON for REST."""
        if self.flavour == "rest":
            data = json.loads(self.body)
            return data if isinstance(data, dict) else {"items": data}

        assert self._schema_path is not None
        schema = _xmlschema_cache(self._schema_path)
        decoded: dict[str, Any] = _strip_xmlns(schema.to_dict(self.body.decode("utf-8")))
        return decoded


_XMLSCHEMA: dict[Path, Any] = {}


def _xmlschema_cache(path: Path) -> Any:
    import xmlschema

    if path not in _XMLSCHEMA:
        _XMLSCHEMA[path] = xmlschema.XMLSchema(str(path))
    return _XMLSCHEMA[path]


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


@dataclass(frozen=True)
class _WsdlInfo:
    namespace: str
    schema_path: Path
    actions: dict[str, str]
    """Operation name → soapAction."""


def _read_wsdl(path: Path) -> _WsdlInfo:
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
    return _WsdlInfo(namespace, (path.parent / location).resolve(), actions)


class _SoapFault(Exception):
    def __init__(
        self,
        code: Literal["client", "server"],
        reason: str,
        *,
        subcode: str | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ):
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.subcode = subcode
        self.headers = headers or {}


class _RestReject(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


class _Drop(Exception):
    """Close the connection without an answer."""


class LgspSimulator:
    """Run with ``start()``/``stop()`` or as a context manager; ``url`` is the base address."""

    def __init__(
        self,
        *,
        wsdl_path: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "hub",
        password: str = "hub-secret",  # noqa: S107  # simulator's own test credential
        client_id: str = "hub-client",
        client_secret: str = "hub-client-secret",  # noqa: S107  # simulator's own test credential
        token_lifetime_seconds: int = 3600,
        context: str = "motcua",
        version: str = "1.0.0",
        max_body_bytes: int = 2 * 1024 * 1024,
        require_digest: bool = False,
        created_tolerance_seconds: float = 300,
        rest_validation: Literal["xsd", "model"] = "xsd",
    ) -> None:
        self.wsdl_path = (wsdl_path or bundled_wsdl_path()).resolve()
        self.wsdl = _read_wsdl(self.wsdl_path)
        schema_root = parse_xml(self.wsdl.schema_path.read_bytes())
        self.schema = etree.XMLSchema(schema_root)
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.client_id, self.client_secret = client_id, client_secret
        self.token_lifetime_seconds = token_lifetime_seconds
        self.api_prefix = f"/{context.strip('/')}/{version.strip('/')}/"
        self.max_body_bytes = max_body_bytes
        self.require_digest = require_digest
        self.rest_validation = rest_validation
        self.created_tolerance = timedelta(seconds=created_tolerance_seconds)
        self._lock = threading.Lock()
        self._faults: deque[FaultSpec] = deque()
        self._records: list[SimulatorRecord] = []
        self._rejections: list[str] = []
        self._seen_ids: dict[tuple[str, str], bytes] = {}
        self._nonces: set[str] = set()
        self._tokens: dict[str, float] = {}
        self._documents: dict[str, etree._Element] = {}
        self._documents_json: dict[str, dict[str, Any]] = {}
        self._doc_ids: dict[str, str] = {}
        self.token_count = 0
        self.unauthorized_count = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> LgspSimulator:
        if self.rest_validation == "xsd":
            _xmlschema_cache(self.wsdl.schema_path)  # built once per process, before the first request
        server = _Server((self.host, self.port), _Handler)
        server.simulator = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="lgsp-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LgspSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def soap11_url(self) -> str:
        return f"{self.url}/lgsp/soap11"

    @property
    def soap12_url(self) -> str:
        return f"{self.url}/lgsp/soap12"

    # --- inspection and control ------------------------------------------------------------

    def inject(self, fault: FaultSpec) -> None:
        with self._lock:
            self._faults.append(fault)

    @property
    def records(self) -> list[SimulatorRecord]:
        with self._lock:
            return list(self._records)

    @property
    def rejections(self) -> list[str]:
        with self._lock:
            return list(self._rejections)

    def expire_tokens(self) -> None:
        """Revoke every issued token (server-side expiry the client cannot predict)."""
        with self._lock:
            self._tokens.clear()

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._records.clear()
            self._rejections.clear()
            self._seen_ids.clear()
            self._documents.clear()
            self._documents_json.clear()
            self.token_count = 0
            self.unauthorized_count = 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "records": len(self._records),
                "rejections": len(self._rejections),
                "tokens": self.token_count,
                "unauthorized": self.unauthorized_count,
                "pending_faults": len(self._faults),
            }

    def _take_fault(self, operation: str) -> FaultSpec | None:
        with self._lock:
            for spec in self._faults:
                if spec.operation is None or spec.operation == operation:
                    spec.count -= 1
                    if spec.count <= 0:
                        self._faults.remove(spec)
                    return spec
        return None

    def _reject(self, reason: str) -> None:
        with self._lock:
            self._rejections.append(reason)

    def _doc_id(self, doc_code: str) -> str:
        with self._lock:
            return self._doc_ids.setdefault(doc_code, f"LGSP-{len(self._doc_ids) + 1:06d}")

    # --- SOAP -------------------------------------------------------------------------------

    def handle_soap(
        self, version: Literal["1.1", "1.2"], headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        env_ns = SOAP11_ENV if version == "1.1" else SOAP12_ENV
        try:
            return self._soap(version, env_ns, headers, body)
        except _SoapFault as fault:
            self._reject(f"SOAP {version} fault {fault.code}: {fault.reason}")
            return self._fault_response(version, fault, fault.headers)
        except PayloadTooLargeError as exc:
            self._reject(f"SOAP {version}: {exc.message}")
            return (
                413,
                {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"},
                exc.message.encode(),
            )
        except HubError as exc:  # unsafe or malformed XML
            self._reject(f"SOAP {version}: {exc.code}: {exc.message}")
            return self._fault_response(version, _SoapFault("client", exc.message))

    def _soap(
        self, version: Literal["1.1", "1.2"], env_ns: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        content_type = (headers.get("Content-Type") or "").lower()
        expected_type = "text/xml" if version == "1.1" else "application/soap+xml"
        if content_type.split(";")[0].strip() != expected_type:
            raise _SoapFault(
                "client",
                f"SOAP {version} requires Content-Type {expected_type}, got {content_type!r}",
                status=415,
            )
        root = parse_xml(body, max_bytes=self.max_body_bytes)
        if root.tag == f"{{{SOAP11_ENV if version == '1.2' else SOAP12_ENV}}}Envelope":
            raise _SoapFault("client", f"envelope version does not match this SOAP {version} endpoint")
        if root.tag != f"{{{env_ns}}}Envelope":
            raise _SoapFault("client", f"root element {root.tag!r} is not a SOAP {version} Envelope")
        header = root.find(f"{{{env_ns}}}Header")
        soap_body = root.find(f"{{{env_ns}}}Body")
        if soap_body is None or len(soap_body) != 1:
            raise _SoapFault("client", "SOAP Body must contain exactly one element")
        payload = soap_body[0]
        qname = etree.QName(payload)
        if qname.namespace != self.wsdl.namespace or qname.localname not in self.wsdl.actions:
            raise _SoapFault("client", f"unknown operation element {payload.tag!r}")
        operation = qname.localname
        username = self._check_security(header)
        message_id, action = self._check_addressing(header, operation)
        http_action = self._http_action(version, headers)
        if http_action is not None and http_action != action:
            raise _SoapFault("client", f"SOAPAction {http_action!r} does not match wsa:Action {action!r}")
        standalone = etree.fromstring(etree.tostring(payload))
        if not self.schema.validate(standalone):
            error = self.schema.error_log.filter_from_errors()
            first = error[0] if error else None
            text = f"line {first.line}: {first.message}" if first else "schema validation failed"
            raise _SoapFault("client", f"{operation} does not validate against the XSD: {text}")
        fault = self._take_fault(operation)
        if fault is not None:
            outcome = self._apply_fault(fault, soap=True)
            if outcome is not None:
                return self._soap_result(version, operation, message_id, outcome[0], outcome[1], None)
        key = (f"soap{version}", message_id)
        with self._lock:
            if key in self._seen_ids and operation != "GetDocument":
                duplicate = True
            else:
                duplicate = False
                self._seen_ids[key] = b""
        if operation == "GetDocument":
            doc_code = standalone.findtext(f"{{{self.wsdl.namespace}}}DocCode") or ""
            with self._lock:
                document = self._documents.get(doc_code)
            if document is None:
                return self._soap_result(
                    version, operation, message_id, 0, "Không tìm thấy hồ sơ (not found)", None
                )
            return self._soap_result(
                version, operation, message_id, 1, "Thành công", self._doc_id(doc_code), document=document
            )
        if duplicate:
            return self._soap_result(
                version, operation, message_id, 1, "Đã nhận trước đó (duplicate MessageID)", None
            )
        doc_code = standalone.findtext(f".//{{{self.wsdl.namespace}}}DocCode") or ""
        record = SimulatorRecord(
            flavour="soap11" if version == "1.1" else "soap12",
            operation=operation,
            message_id=message_id,
            username=username,
            body=etree.tostring(standalone, encoding="utf-8"),
            received_at=datetime.now(UTC),
            _schema_path=self.wsdl.schema_path,
        )
        with self._lock:
            self._records.append(record)
            if operation == "SyncDocument":
                self._documents[doc_code] = standalone[0]
        return self._soap_result(version, operation, message_id, 1, "Thành công", self._doc_id(doc_code))

    def _http_action(self, version: str, headers: Any) -> str | None:
        if version == "1.1":
            raw = headers.get("SOAPAction")
            return None if raw is None else raw.strip().strip('"')
        for part in (headers.get("Content-Type") or "").split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "action":
                return value.strip().strip('"')
        return None

    def _check_security(self, header: etree._Element | None) -> str:
        token = None if header is None else header.find(f"{{{WSSE_NS}}}Security/{{{WSSE_NS}}}UsernameToken")
        if token is None:
            raise _SoapFault("client", "WS-Security UsernameToken required", subcode="wsse:InvalidSecurity")
        username = token.findtext(f"{{{WSSE_NS}}}Username") or ""
        password_el = token.find(f"{{{WSSE_NS}}}Password")
        if password_el is None:
            raise _SoapFault("client", "UsernameToken has no Password", subcode="wsse:InvalidSecurityToken")
        kind = password_el.get("Type", PASSWORD_TEXT)
        supplied = password_el.text or ""
        if kind == PASSWORD_DIGEST:
            nonce_text = token.findtext(f"{{{WSSE_NS}}}Nonce") or ""
            created = token.findtext(f"{{{WSU_NS}}}Created") or ""
            try:
                nonce = base64.b64decode(nonce_text, validate=True)
                created_at = datetime.fromisoformat(created.replace("Z", "+00:00"))
            except ValueError:
                raise _SoapFault(
                    "client", "bad Nonce or Created", subcode="wsse:InvalidSecurityToken"
                ) from None
            if abs(datetime.now(UTC) - created_at) > self.created_tolerance:
                raise _SoapFault(
                    "client", "UsernameToken Created is stale", subcode="wsse:FailedAuthentication"
                )
            expected = base64.b64encode(
                hashlib.sha1(nonce + created.encode() + self.password.encode()).digest()  # noqa: S324  # WSS UsernameToken Profile 1.0 §3.1 mandates SHA-1
            ).decode()
            with self._lock:
                replay = nonce_text in self._nonces
                self._nonces.add(nonce_text)
            ok = secrets.compare_digest(expected, supplied) and username == self.username and not replay
        else:
            if self.require_digest:
                raise _SoapFault("client", "PasswordDigest required", subcode="wsse:UnsupportedSecurityToken")
            ok = username == self.username and secrets.compare_digest(supplied, self.password)
        if not ok:
            raise _SoapFault("client", "authentication failed", subcode="wsse:FailedAuthentication")
        return username

    def _check_addressing(self, header: etree._Element | None, operation: str) -> tuple[str, str]:
        if header is not None:
            for name in ("MessageID", "Action", "To"):
                if len(header.findall(f"{{{WSA_NS}}}{name}")) > 1:
                    raise _SoapFault(
                        "client", f"wsa:{name} appears more than once", subcode="wsa:InvalidAddressingHeader"
                    )
        message_id = None if header is None else header.findtext(f"{{{WSA_NS}}}MessageID")
        action = None if header is None else header.findtext(f"{{{WSA_NS}}}Action")
        if not message_id:
            raise _SoapFault(
                "client", "wsa:MessageID header required", subcode="wsa:MessageAddressingHeaderRequired"
            )
        expected = self.wsdl.actions[operation]
        if action != expected:
            raise _SoapFault(
                "client",
                f"wsa:Action {action!r} does not match {expected!r}",
                subcode="wsa:ActionNotSupported",
            )
        return message_id.strip(), action

    def _apply_fault(self, fault: FaultSpec, *, soap: bool) -> tuple[int, str] | None:
        """Carry out an injected fault; return an ``MResult`` to answer with, or raise."""
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        if fault.kind in ("timeout", "slow"):
            time.sleep(fault.delay_seconds)
            if fault.kind == "timeout":
                raise _Drop()
            return None
        if fault.kind == "drop":
            raise _Drop()
        if fault.kind == "http_500":
            raise _RawAnswer(
                500,
                {"Content-Type": "text/html", **headers},
                b"<html><body>Internal Server Error</body></html>",
            )
        if fault.kind == "http_503":
            raise _RawAnswer(503, {"Content-Type": "text/plain", **headers}, b"Service Unavailable")
        if fault.kind == "http_429":
            raise _RawAnswer(429, {"Content-Type": "text/plain", **headers}, b"Too Many Requests")
        if fault.kind == "soap_client_fault":
            if soap:
                raise _SoapFault("client", "Dữ liệu không hợp lệ: DocTypeCode không tồn tại (injected)")
            raise _RestReject(400, {"Status": 0, "Message": "Dữ liệu không hợp lệ (injected)"})
        if fault.kind == "soap_server_fault":
            if soap:
                raise _SoapFault("server", "Hệ thống đang bận (injected)", headers=headers)
            raise _RestReject(500, {"Status": 0, "Message": "Hệ thống đang bận (injected)"}, headers)
        if fault.kind == "already_exists":
            return 0, "Hồ sơ đã tồn tại trên hệ thống (already exists)"
        if fault.kind == "reject":
            return 0, "Dữ liệu không hợp lệ: thiếu thông tin bắt buộc (injected)"
        if fault.kind == "expired_token":
            self.expire_tokens()
            raise _RestReject(
                401,
                {"error": "invalid_token", "error_description": "token expired"},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        raise AssertionError(fault.kind)

    def _envelope(self, version: str) -> tuple[etree._Element, etree._Element, etree._Element, str]:
        env_ns = SOAP11_ENV if version == "1.1" else SOAP12_ENV
        envelope = etree.Element(f"{{{env_ns}}}Envelope", nsmap={"soap": env_ns, "wsa": WSA_NS})
        header = etree.SubElement(envelope, f"{{{env_ns}}}Header")
        body = etree.SubElement(envelope, f"{{{env_ns}}}Body")
        content_type = (
            "text/xml; charset=utf-8" if version == "1.1" else "application/soap+xml; charset=utf-8"
        )
        return envelope, header, body, content_type

    def _soap_result(
        self,
        version: str,
        operation: str,
        message_id: str,
        status: int,
        message: str,
        document_id: str | None,
        *,
        document: etree._Element | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        ns = self.wsdl.namespace
        envelope, header, body, content_type = self._envelope(version)
        etree.SubElement(header, f"{{{WSA_NS}}}Action").text = self.wsdl.actions[operation] + "Response"
        etree.SubElement(header, f"{{{WSA_NS}}}RelatesTo").text = message_id
        response = etree.SubElement(body, f"{{{ns}}}{operation}Response", nsmap={"tns": ns})
        result = etree.SubElement(response, f"{{{ns}}}Result")
        etree.SubElement(result, f"{{{ns}}}Status").text = str(status)
        etree.SubElement(result, f"{{{ns}}}Message").text = message
        if document_id is not None:
            etree.SubElement(result, f"{{{ns}}}DocumentId").text = document_id
        if document is not None:
            copy = etree.fromstring(etree.tostring(document))
            response.append(copy)
        return (
            200,
            {"Content-Type": content_type},
            etree.tostring(envelope, xml_declaration=True, encoding="utf-8"),
        )

    def _fault_response(
        self, version: str, fault: _SoapFault, extra: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        envelope, _header, body, content_type = self._envelope(version)
        if version == "1.1":
            element = etree.SubElement(body, f"{{{SOAP11_ENV}}}Fault")
            code = "Client" if fault.code == "client" else "Server"
            if fault.subcode and fault.subcode.startswith("wsse:"):
                code_el = etree.SubElement(element, "faultcode", nsmap={"wsse": WSSE_NS})
                code_el.text = fault.subcode
            else:
                etree.SubElement(element, "faultcode").text = f"soap:{code}"
            etree.SubElement(element, "faultstring").text = fault.reason
            status = 500
        else:
            element = etree.SubElement(body, f"{{{SOAP12_ENV}}}Fault")
            code_el = etree.SubElement(element, f"{{{SOAP12_ENV}}}Code")
            value = "soap:Sender" if fault.code == "client" else "soap:Receiver"
            etree.SubElement(code_el, f"{{{SOAP12_ENV}}}Value").text = value
            if fault.subcode:
                prefix = fault.subcode.split(":", 1)[0]
                ns = WSSE_NS if prefix == "wsse" else WSA_NS
                sub = etree.SubElement(code_el, f"{{{SOAP12_ENV}}}Subcode", nsmap={prefix: ns})
                etree.SubElement(sub, f"{{{SOAP12_ENV}}}Value").text = fault.subcode
            reason = etree.SubElement(element, f"{{{SOAP12_ENV}}}Reason")
            text = etree.SubElement(reason, f"{{{SOAP12_ENV}}}Text")
            text.set("{http://www.w3.org/XML/1998/namespace}lang", "vi")
            text.text = fault.reason
            status = 400 if fault.code == "client" else 500
        headers = {"Content-Type": content_type, **(extra or {})}
        return (
            fault.status or status,
            headers,
            etree.tostring(envelope, xml_declaration=True, encoding="utf-8"),
        )

    # --- REST -------------------------------------------------------------------------------

    def handle_token(self, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return _json(400, {"error": "invalid_request", "error_description": "form body required"})
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return _json(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != self.client_id or not secrets.compare_digest(
            form.get("client_secret", ""), self.client_secret
        ):
            self._reject("token: invalid client credentials")
            return _json(401, {"error": "invalid_client"})
        value = secrets.token_hex(16)
        with self._lock:
            self._tokens[value] = time.monotonic() + self.token_lifetime_seconds
            self.token_count += 1
        return _json(
            200,
            {
                "access_token": value,
                "token_type": "Bearer",
                "expires_in": self.token_lifetime_seconds,
                "scope": "default",
            },
        )

    def handle_rest(self, operation: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            return self._rest(operation, headers, body)
        except _RestReject as exc:
            if exc.status == 401:
                with self._lock:
                    self.unauthorized_count += 1
            self._reject(f"REST {operation}: HTTP {exc.status} {exc.body}")
            status, hdrs, payload = _json(exc.status, exc.body)
            return status, {**hdrs, **exc.headers}, payload

    def _json_problem(self, operation: str, data: dict[str, Any]) -> str | None:
        """Validate a REST body; ``None`` when valid, else the first problem.

        ``xsd``: encode the JSON against the WSDL's XSD with xmlschema (independent of the hub's
        models; about 2 ms per record). ``model``: the hub's pydantic wire models (fast; used
        by the benchmark so the simulator is not the bottleneck).
        """
        if self.rest_validation == "model":
            models: dict[str, type[BaseModel]] = {
                "SyncDocument": MSyncDocument,
                "UpdateDocumentTraces": UpdateDocumentTracesRequest,
            }
            try:
                if operation in models:
                    models[operation].model_validate(data)
            except ValidationError as exc:
                return str(exc.errors()[0]["msg"])
            return None
        import xmlschema

        wrapped = {"Document": data} if operation == "SyncDocument" else data
        try:
            _xmlschema_cache(self.wsdl.schema_path).encode(
                _prune_empty(wrapped), path=operation, namespaces={"": self.wsdl.namespace}
            )
        except (xmlschema.XMLSchemaValidationError, xmlschema.XMLSchemaEncodeError) as exc:
            return str(exc.reason or exc.message)
        return None

    def _rest(self, operation: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        auth = headers.get("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        with self._lock:
            expiry = self._tokens.get(value) if scheme.lower() == "bearer" else None
        if expiry is None or expiry < time.monotonic():
            raise _RestReject(
                401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _RestReject(415, {"Status": 0, "Message": f"Content-Type {content_type!r} not supported"})
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _RestReject(400, {"Status": 0, "Message": f"malformed JSON: {exc}"}) from None
        if operation not in self.wsdl.actions:
            raise _RestReject(404, {"Status": 0, "Message": f"unknown operation {operation!r}"})
        if not isinstance(data, dict):
            raise _RestReject(400, {"Status": 0, "Message": "JSON body must be an object"})
        problem = self._json_problem(operation, data)
        if problem is not None:
            raise _RestReject(400, {"Status": 0, "Message": f"invalid {operation}: {problem}"})
        fault = self._take_fault(operation)
        if fault is not None:
            outcome = self._apply_fault(fault, soap=False)
            if outcome is not None:
                return _json(200, {"Status": outcome[0], "Message": outcome[1]})
        if operation == "GetDocument":
            code = str(data.get("DocCode", "")) if isinstance(data, dict) else ""
            with self._lock:
                document = self._documents_json.get(code)
            if document is None:
                return _json(200, {"Result": {"Status": 0, "Message": "Không tìm thấy hồ sơ (not found)"}})
            return _json(
                200,
                {
                    "Result": {"Status": 1, "Message": "Thành công", "DocumentId": self._doc_id(code)},
                    "Document": document,
                },
            )
        message_id = headers.get("X-Message-ID") or ""
        with self._lock:
            duplicate = bool(message_id) and ("rest", message_id) in self._seen_ids
            self._seen_ids[("rest", message_id)] = b""
        if duplicate:
            return _json(200, {"Status": 1, "Message": "Đã nhận trước đó (duplicate message id)"})
        doc_code = str(data.get("DocCode") or (data.get("Traces") or [{}])[0].get("DocCode", ""))
        record = SimulatorRecord("rest", operation, message_id, None, body, datetime.now(UTC))
        with self._lock:
            self._records.append(record)
            if operation == "SyncDocument":
                self._documents_json[doc_code] = data
        return _json(200, {"Status": 1, "Message": "Thành công", "DocumentId": self._doc_id(doc_code)})


class _RawAnswer(Exception):
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        super().__init__(status)
        self.status, self.headers, self.body = status, headers, body


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return (
        status,
        {"Content-Type": "application/json; charset=utf-8"},
        json.dumps(body, ensure_ascii=False).encode(),
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256
    simulator: LgspSimulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: Headers and body go out in separate writes; with Nagle on, the client's delayed ACK
    #: would stall every keep-alive answer by ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        log.debug("lgsp-simulator %s " + format, self.address_string(), *args)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if headers.get("Connection") == "close":
            self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_GET(self) -> None:  # stdlib naming
        sim = self.server.simulator
        parsed = urlparse(self.path)
        if parsed.path == "/lgsp" and parsed.query.lower() == "wsdl":
            self._send(200, {"Content-Type": "text/xml; charset=utf-8"}, sim.wsdl_path.read_bytes())
        elif parsed.path == "/_sim/stats":
            self._send(*_json(200, sim.stats()))
        else:
            self._send(*_json(404, {"error": "not found"}))

    def do_POST(self) -> None:  # stdlib naming
        sim = self.server.simulator
        path = urlparse(self.path).path
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            self._send(411, {"Content-Type": "text/plain", "Connection": "close"}, b"Content-Length required")
            return
        length = int(length_text)
        if length > sim.max_body_bytes:
            sim._reject(f"{path}: body of {length} bytes over the limit")
            self._send(413, {"Content-Type": "text/plain", "Connection": "close"}, b"Payload Too Large")
            return
        body = self.rfile.read(length)
        try:
            if path in ("/lgsp/soap11", "/lgsp/soap12"):
                version: Literal["1.1", "1.2"] = "1.1" if path.endswith("11") else "1.2"
                answer = sim.handle_soap(version, self.headers, body)
            elif path == "/token":
                answer = sim.handle_token(self.headers, body)
            elif path.startswith(sim.api_prefix + "Document/"):
                answer = sim.handle_rest(path.rsplit("/", 1)[1], self.headers, body)
            elif path == "/_sim/faults":
                sim.inject(FaultSpec(**json.loads(body)))
                answer = _json(200, {"ok": True})
            elif path == "/_sim/reset":
                sim.reset()
                answer = _json(200, {"ok": True})
            else:
                answer = _json(404, {"error": "not found"})
        except _RawAnswer as raw:
            answer = (raw.status, raw.headers, raw.body)
        except _Drop:
            self._drop()
            return
        try:
            self._send(*answer)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def describe(sim: LgspSimulator) -> dict[str, Any]:
    """Addresses of a running simulator (printed by the CLI)."""
    return {
        "soap11": sim.soap11_url,
        "soap12": sim.soap12_url,
        "wsdl": urljoin(sim.url, "/lgsp?wsdl"),
        "token": f"{sim.url}/token",
        "rest_base": sim.url + sim.api_prefix.rstrip("/"),
        "username": sim.username,
        "client_id": sim.client_id,
    }


__all__ = ["FaultSpec", "LgspSimulator", "SimulatorRecord", "describe"]
