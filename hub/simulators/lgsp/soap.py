"""The LGSP's SOAP 1.1/1.2 endpoints: envelope, WS-Security and WS-Addressing checks, answers and faults.

Checked by hand, sharing nothing with the hub's client: the SOAP 1.1 / 1.2 envelope and its
HTTP binding (Content-Type, ``SOAPAction`` / ``action``), WS-Addressing ``MessageID``/``Action``
(each at most once), a WS-Security UsernameToken with PasswordText or PasswordDigest (UsernameToken
Profile 1.0 §3.1, ``Created`` freshness, nonce replay), and the Body against the XSD (lxml).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from lxml import etree

from connectors.xmlsafety import parse_xml
from hub.simulators.faults import Fault
from hub.simulators.lgsp.contract import LgspContract
from hub.simulators.lgsp.faults import (
    CLIENT_FAULT_REASON,
    MRESULT_FAULTS,
    SERVER_FAULT_REASON,
    LgspFault,
    retry_after_headers,
)
from hub.simulators.lgsp.state import LgspState, SimulatorRecord
from schemas.errors import HubError, PayloadTooLargeError

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

SoapVersion = Literal["1.1", "1.2"]
#: (HTTP status, headers, body) of an answer.
Answer = tuple[int, dict[str, str], bytes]


class SoapFault(Exception):
    """A request the LGSP answers with a SOAP fault."""

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


@dataclass(frozen=True)
class SoapCall:
    """A request that passed every check: what to process."""

    version: SoapVersion
    operation: str
    message_id: str
    username: str
    element: etree._Element
    """The Body's operation element, detached from the envelope."""


@dataclass(frozen=True)
class SoapCredentials:
    username: str
    password: str
    require_digest: bool = False
    created_tolerance: timedelta = timedelta(seconds=300)


class SoapEndpoint:
    """Both SOAP versions of the LGSP document service."""

    def __init__(
        self, contract: LgspContract, state: LgspState, credentials: SoapCredentials, max_body_bytes: int
    ) -> None:
        self.contract = contract
        self.state = state
        self.credentials = credentials
        self.max_body_bytes = max_body_bytes

    # --- checks ---------------------------------------------------------------------------

    def check(self, version: SoapVersion, headers: Any, body: bytes) -> SoapCall:
        """Everything the LGSP verifies before acting; raises :class:`SoapFault` or a hub XML error."""
        env_ns = SOAP11_ENV if version == "1.1" else SOAP12_ENV
        content_type = (headers.get("Content-Type") or "").lower()
        expected_type = "text/xml" if version == "1.1" else "application/soap+xml"
        if content_type.split(";")[0].strip() != expected_type:
            raise SoapFault(
                "client",
                f"SOAP {version} requires Content-Type {expected_type}, got {content_type!r}",
                status=415,
            )
        root = parse_xml(body, max_bytes=self.max_body_bytes)
        if root.tag == f"{{{SOAP11_ENV if version == '1.2' else SOAP12_ENV}}}Envelope":
            raise SoapFault("client", f"envelope version does not match this SOAP {version} endpoint")
        if root.tag != f"{{{env_ns}}}Envelope":
            raise SoapFault("client", f"root element {root.tag!r} is not a SOAP {version} Envelope")
        header = root.find(f"{{{env_ns}}}Header")
        soap_body = root.find(f"{{{env_ns}}}Body")
        if soap_body is None or len(soap_body) != 1:
            raise SoapFault("client", "SOAP Body must contain exactly one element")
        payload = soap_body[0]
        qname = etree.QName(payload)
        if qname.namespace != self.contract.namespace or qname.localname not in self.contract.actions:
            raise SoapFault("client", f"unknown operation element {payload.tag!r}")
        operation = qname.localname
        username = self._check_security(header)
        message_id, action = self._check_addressing(header, operation)
        http_action = self._http_action(version, headers)
        if http_action is not None and http_action != action:
            raise SoapFault("client", f"SOAPAction {http_action!r} does not match wsa:Action {action!r}")
        standalone = etree.fromstring(etree.tostring(payload))
        problem = self.contract.body_problem(standalone)
        if problem is not None:
            raise SoapFault("client", f"{operation} does not validate against the XSD: {problem}")
        return SoapCall(version, operation, message_id, username, standalone)

    def _http_action(self, version: str, headers: Any) -> str | None:
        if version == "1.1":
            raw = headers.get("SOAPAction")
            return None if raw is None else str(raw).strip().strip('"')
        for part in (headers.get("Content-Type") or "").split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "action":
                return value.strip().strip('"')
        return None

    def _check_security(self, header: etree._Element | None) -> str:
        creds = self.credentials
        token = None if header is None else header.find(f"{{{WSSE_NS}}}Security/{{{WSSE_NS}}}UsernameToken")
        if token is None:
            raise SoapFault("client", "WS-Security UsernameToken required", subcode="wsse:InvalidSecurity")
        username = token.findtext(f"{{{WSSE_NS}}}Username") or ""
        password_el = token.find(f"{{{WSSE_NS}}}Password")
        if password_el is None:
            raise SoapFault("client", "UsernameToken has no Password", subcode="wsse:InvalidSecurityToken")
        kind = password_el.get("Type", PASSWORD_TEXT)
        supplied = password_el.text or ""
        if kind == PASSWORD_DIGEST:
            nonce_text = token.findtext(f"{{{WSSE_NS}}}Nonce") or ""
            created = token.findtext(f"{{{WSU_NS}}}Created") or ""
            try:
                nonce = base64.b64decode(nonce_text, validate=True)
                created_at = datetime.fromisoformat(created.replace("Z", "+00:00"))
            except ValueError:
                raise SoapFault(
                    "client", "bad Nonce or Created", subcode="wsse:InvalidSecurityToken"
                ) from None
            if abs(datetime.now(UTC) - created_at) > creds.created_tolerance:
                raise SoapFault(
                    "client", "UsernameToken Created is stale", subcode="wsse:FailedAuthentication"
                )
            expected = base64.b64encode(
                hashlib.sha1(nonce + created.encode() + creds.password.encode()).digest()  # noqa: S324  # WSS UsernameToken Profile 1.0 §3.1 mandates SHA-1
            ).decode()
            with self.state.lock:
                replay = nonce_text in self.state.nonces
                self.state.nonces.add(nonce_text)
            ok = secrets.compare_digest(expected, supplied) and username == creds.username and not replay
        else:
            if creds.require_digest:
                raise SoapFault("client", "PasswordDigest required", subcode="wsse:UnsupportedSecurityToken")
            ok = username == creds.username and secrets.compare_digest(supplied, creds.password)
        if not ok:
            raise SoapFault("client", "authentication failed", subcode="wsse:FailedAuthentication")
        return username

    def _check_addressing(self, header: etree._Element | None, operation: str) -> tuple[str, str]:
        if header is not None:
            for name in ("MessageID", "Action", "To"):
                if len(header.findall(f"{{{WSA_NS}}}{name}")) > 1:
                    raise SoapFault(
                        "client", f"wsa:{name} appears more than once", subcode="wsa:InvalidAddressingHeader"
                    )
        message_id = None if header is None else header.findtext(f"{{{WSA_NS}}}MessageID")
        action = None if header is None else header.findtext(f"{{{WSA_NS}}}Action")
        if not message_id:
            raise SoapFault(
                "client", "wsa:MessageID header required", subcode="wsa:MessageAddressingHeaderRequired"
            )
        expected = self.contract.actions[operation]
        if action != expected:
            raise SoapFault(
                "client",
                f"wsa:Action {action!r} does not match {expected!r}",
                subcode="wsa:ActionNotSupported",
            )
        return message_id.strip(), action

    # --- answers --------------------------------------------------------------------------

    def refuse(self, version: SoapVersion, exc: Exception) -> Answer:
        """The answer to a refused request (recorded as a rejection, never stored)."""
        if isinstance(exc, SoapFault):
            self.state.reject(f"SOAP {version} fault {exc.code}: {exc.reason}")
            return self.fault_answer(version, exc, exc.headers)
        if isinstance(exc, PayloadTooLargeError):
            self.state.reject(f"SOAP {version}: {exc.message}")
            return (
                413,
                {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"},
                exc.message.encode(),
            )
        if isinstance(exc, HubError):  # unsafe or malformed XML
            self.state.reject(f"SOAP {version}: {exc.code}: {exc.message}")
            return self.fault_answer(version, SoapFault("client", exc.message))
        raise exc

    def answer(self, call: SoapCall, fault: Fault | None) -> Answer:
        """Carry out a protocol fault, or process the call."""
        try:
            outcome = self._protocol_fault(fault)
        except SoapFault as exc:
            return self.refuse(call.version, exc)
        if outcome is not None:
            return self.result(call.version, call.operation, call.message_id, outcome[0], outcome[1], None)
        return self._process(call)

    def _protocol_fault(self, fault: Fault | None) -> tuple[int, str] | None:
        if fault is None:
            return None
        if fault.kind == LgspFault.SOAP_CLIENT_FAULT:
            raise SoapFault("client", CLIENT_FAULT_REASON)
        if fault.kind == LgspFault.SOAP_SERVER_FAULT:
            raise SoapFault("server", SERVER_FAULT_REASON, headers=retry_after_headers(fault))
        if fault.kind == LgspFault.EXPIRED_TOKEN:
            with self.state.lock:
                self.state.tokens.clear()
        return MRESULT_FAULTS.get(fault.kind)

    def _process(self, call: SoapCall) -> Answer:
        version, operation, message_id = call.version, call.operation, call.message_id
        ns = self.contract.namespace
        if operation == "GetDocument":
            self.state.first_time(f"soap{version}", message_id)
            doc_code = call.element.findtext(f"{{{ns}}}DocCode") or ""
            with self.state.lock:
                document = self.state.documents.get(doc_code)
            if document is None:
                return self.result(
                    version, operation, message_id, 0, "Không tìm thấy hồ sơ (not found)", None
                )
            return self.result(
                version,
                operation,
                message_id,
                1,
                "Thành công",
                self.state.doc_id(doc_code),
                document=document,
            )
        if not self.state.first_time(f"soap{version}", message_id):
            return self.result(
                version, operation, message_id, 1, "Đã nhận trước đó (duplicate MessageID)", None
            )
        doc_code = call.element.findtext(f".//{{{ns}}}DocCode") or ""
        self.state.accept(
            SimulatorRecord(
                flavour="soap11" if version == "1.1" else "soap12",
                operation=operation,
                message_id=message_id,
                username=call.username,
                body=etree.tostring(call.element, encoding="utf-8"),
                received_at=datetime.now(UTC),
                _contract=self.contract,
            )
        )
        if operation == "SyncDocument":
            with self.state.lock:
                self.state.documents[doc_code] = call.element[0]
        return self.result(version, operation, message_id, 1, "Thành công", self.state.doc_id(doc_code))

    def _envelope(self, version: str) -> tuple[etree._Element, etree._Element, etree._Element, str]:
        env_ns = SOAP11_ENV if version == "1.1" else SOAP12_ENV
        envelope = etree.Element(f"{{{env_ns}}}Envelope", nsmap={"soap": env_ns, "wsa": WSA_NS})
        header = etree.SubElement(envelope, f"{{{env_ns}}}Header")
        body = etree.SubElement(envelope, f"{{{env_ns}}}Body")
        content_type = (
            "text/xml; charset=utf-8" if version == "1.1" else "application/soap+xml; charset=utf-8"
        )
        return envelope, header, body, content_type

    def result(
        self,
        version: str,
        operation: str,
        message_id: str,
        status: int,
        message: str,
        document_id: str | None,
        *,
        document: etree._Element | None = None,
    ) -> Answer:
        """An ``{operation}Response`` carrying an ``MResult`` (and the document, for GetDocument)."""
        ns = self.contract.namespace
        envelope, header, body, content_type = self._envelope(version)
        etree.SubElement(header, f"{{{WSA_NS}}}Action").text = self.contract.actions[operation] + "Response"
        etree.SubElement(header, f"{{{WSA_NS}}}RelatesTo").text = message_id
        response = etree.SubElement(body, f"{{{ns}}}{operation}Response", nsmap={"tns": ns})
        result = etree.SubElement(response, f"{{{ns}}}Result")
        etree.SubElement(result, f"{{{ns}}}Status").text = str(status)
        etree.SubElement(result, f"{{{ns}}}Message").text = message
        if document_id is not None:
            etree.SubElement(result, f"{{{ns}}}DocumentId").text = document_id
        if document is not None:
            response.append(etree.fromstring(etree.tostring(document)))
        return (
            200,
            {"Content-Type": content_type},
            etree.tostring(envelope, xml_declaration=True, encoding="utf-8"),
        )

    def fault_answer(self, version: str, fault: SoapFault, extra: dict[str, str] | None = None) -> Answer:
        """A SOAP 1.1 ``Fault`` (HTTP 500) or SOAP 1.2 ``Fault`` (400 Sender / 500 Receiver)."""
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
