"""zeep client for the LGSP SOAP flavour, built once from a local WSDL.

* The WSDL (and its XSD imports) is read from disk when the client is built; nothing is
  fetched over the network at run time (a URL in ``wsdl_path`` is refused). The service
  address comes from configuration, not from the WSDL's ``soap:address``.
* Any WSDL with the same operations and message shapes can be dropped in: the service and
  port are chosen by name, or by SOAP version when no name is configured, and operation
  names are configurable (docs/portal.md §4.4: provinces publish no common WSDL).
* HTTP goes through the hub's injected ``httpx.AsyncClient`` (zeep's ``AsyncTransport``
  seam); the client's default headers are not touched.
* XML from the partner is parsed with DTDs, entities and external references forbidden and
  without libxml2's "huge tree" mode.
* Every request carries WS-Addressing 1.0 headers (``MessageID`` = the hub message's stable id,
  so the partner can de-duplicate redeliveries; ``Action``; ``To``) and a WS-Security
  UsernameToken (OASIS WSS UsernameToken Profile 1.0, PasswordText or PasswordDigest).

Error mapping (the connector seam, ``connectors/base.py``): SOAP ``Client``/``Sender`` faults →
:class:`~schemas.errors.SoapFaultError` (permanent); ``Server``/``Receiver`` faults →
:class:`~schemas.errors.EndpointBusyError` (retryable, with ``Retry-After``); WS-Security
authentication faults → :class:`~schemas.errors.RemoteAuthenticationError`. HTTP statuses and
transport failures map through :mod:`connectors.http_errors` (408, 425, 429, 5xx retryable;
401/403 refused credentials; timeouts :class:`~schemas.errors.EndpointTimeoutError`), except
that HTTP 400 and 500, which carry SOAP faults (SOAP 1.1 §6.2, SOAP 1.2 Part 2 §7.5.1), are
first read for a fault; any other 4xx is a :class:`~schemas.errors.SoapFaultError`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlparse

import httpx
from lxml import etree
from zeep import AsyncClient, Settings
from zeep.exceptions import DTDForbidden, EntitiesForbidden, Fault, ValidationError, XMLParseError
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import TransportError as ZeepTransportError
from zeep.exceptions import XMLSyntaxError as ZeepXMLSyntaxError
from zeep.helpers import serialize_object
from zeep.transports import AsyncTransport
from zeep.wsdl.bindings.soap import Soap11Binding, Soap12Binding, SoapBinding
from zeep.wsdl.messages.base import SerializedMessage
from zeep.wsse.username import UsernameToken
from zeep.xsd import Element as XsdElement

from connectors.base import excerpt
from connectors.http import parse_retry_after
from connectors.http_errors import (
    REASON_CHARS,
    Remote,
    busy_error,
    classify_status,
    describe,
    map_transport_errors,
)
from connectors.xmlsafety import parse_xml
from schemas.errors import (
    ConfigurationError,
    EndpointBusyError,
    HubError,
    InvalidInputError,
    PayloadTooLargeError,
    RemoteAuthenticationError,
    SoapFaultError,
    TransportError,
    UnsafeXmlError,
)
from schemas.masking import mask_pii

WSA_NS = "http://www.w3.org/2005/08/addressing"
SoapVersion = Literal["1.1", "1.2"]

#: Roles the connector needs, and the operation names of the bundled WSDL.
DEFAULT_OPERATIONS: dict[str, str] = {
    "sync": "SyncDocument",
    "traces": "UpdateDocumentTraces",
    "lookup": "GetDocument",
}
_CLIENT_FAULTS = frozenset({"Client", "Sender", "VersionMismatch", "MustUnderstand", "DataEncodingUnknown"})
_SERVER_FAULTS = frozenset({"Server", "Receiver"})
#: WS-Security fault codes (WSS SOAP Message Security 1.0 §12): credentials refused.
_AUTH_FAULTS = (
    "FailedAuthentication",
    "InvalidSecurityToken",
    "InvalidSecurity",
    "UnsupportedSecurityToken",
    "FailedCheck",
)
#: Statuses a SOAP fault is answered with (SOAP 1.1 §6.2: 500; SOAP 1.2 Part 2 §7.5.1: 400, 500):
#: zeep reads the body for one. Any other status is classified by its code alone.
_FAULT_STATUSES = frozenset({400, 500})
ENDPOINT = Remote("LGSP SOAP endpoint", "dịch vụ SOAP của LGSP")

log = logging.getLogger(__name__)


def bundled_wsdl_path() -> Path:
    """The hub's own LGSP WSDL (``schemas/wsdl/lgsp-motcua.wsdl``, package data)."""
    import schemas

    return Path(schemas.__file__).resolve().parent / "wsdl" / "lgsp-motcua.wsdl"


def hardened_settings() -> Settings:
    """zeep settings: strict, no DTD, no entities, no external references, no huge trees."""
    return Settings(
        strict=True,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
        xml_huge_tree=False,
        raw_response=False,
    )


@dataclass(slots=True)
class HttpExchange:
    """What the transport saw of one call (zeep hides HTTP details from its callers)."""

    status_code: int | None = None
    retry_after: float | None = None
    request_bytes: int = 0
    response_body: bytes = b""


# zeep ships ``py.typed`` but leaves these unannotated: typed handles for mypy --strict.
_zeep_client = cast(Callable[..., Any], AsyncClient)
_username_token = cast(Callable[..., Any], UsernameToken)
_serialize = cast(Callable[[Any, type], Any], serialize_object)


class HubAsyncTransport(AsyncTransport):
    """zeep ``AsyncTransport`` on an injected ``httpx.AsyncClient``.

    ``AsyncTransport.__init__`` is deliberately not called: it would replace the shared
    client's default headers and open a second, synchronous client for WSDL downloads.
    """

    def __init__(self, client: httpx.AsyncClient, *, timeout: httpx.Timeout, max_response_bytes: int):
        self._close_session = False
        self.cache = None
        self.client = client
        self.wsdl_client = None
        self.operation_timeout = None
        self.load_timeout = None
        self.logger = log
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes

    def _load_remote_data(self, url: str) -> bytes:
        parsed = urlparse(url)
        if parsed.scheme == "file":
            return Path(parsed.path).read_bytes()
        raise ConfigurationError(
            f"the LGSP WSDL must be a local file; refusing to fetch {url} at run time",
            message_vi=f"WSDL của LGSP phải là tệp cục bộ; không tải {url} khi chạy",
        )

    async def post(
        self,
        address: str | httpx.URL,
        message: bytes,
        headers: dict[str, str],
        exchange: HttpExchange | None = None,
    ) -> httpx.Response:
        if exchange is not None:
            exchange.request_bytes = len(message)
        with map_transport_errors(ENDPOINT):
            response = await self.client.post(
                address, content=message, headers=headers, timeout=self._timeout
            )
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if exchange is not None:
            exchange.status_code = status
            exchange.retry_after = retry_after
            exchange.response_body = response.content
        if len(response.content) > self._max_response_bytes:
            raise describe(
                PayloadTooLargeError(
                    f"LGSP SOAP response of {len(response.content)} bytes exceeds {self._max_response_bytes}",
                    message_vi="phản hồi SOAP của LGSP vượt quá kích thước cho phép",
                ),
                status_code=status,
            )
        if status not in _FAULT_STATUSES:
            error = classify_status(
                status,
                ENDPOINT,
                retry_after=retry_after,
                response=response.content,
                rejection=SoapFaultError,
                detail="check the endpoint address",
            )
            if error is not None:
                raise error
        return response

    async def post_xml(self, address: str, envelope: etree._Element, headers: dict[str, str]) -> Any:
        message = etree.tostring(envelope, encoding="utf-8", xml_declaration=True)
        # zeep's ``process_reply`` reads only ``status_code``, ``content``, ``headers.get`` and
        # ``encoding``, which the httpx response has; zeep's ``new_response`` would copy it into
        # a ``requests.Response`` and run httpx's cookie extraction (~0.07 ms per call) for nothing.
        return await self.post(address, message, headers)


@dataclass(frozen=True, slots=True)
class SoapClientConfig:
    address: str
    wsdl_path: Path
    soap_version: SoapVersion = "1.1"
    service_name: str | None = None
    port_name: str | None = None
    operations: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_OPERATIONS))
    username: str | None = None
    password: str | None = None
    password_digest: bool = True
    timeout_seconds: float = 30
    connect_timeout_seconds: float = 5
    max_response_bytes: int = 10 * 1024 * 1024


def message_id_uri(message_id: str) -> str:
    """WS-Addressing ``MessageID`` is an absolute IRI: wrap bare ids in a URN."""
    if ":" in message_id:
        return message_id
    try:
        return uuid.UUID(message_id).urn
    except ValueError:
        return f"urn:motcua-hub:message:{message_id}"


@dataclass(frozen=True, slots=True)
class SoapReply:
    """A decoded SOAP answer as plain data (no zeep objects)."""

    operation: str
    body: dict[str, Any]
    status_code: int | None
    request_summary: str


class LgspSoapClient:
    """One zeep client per endpoint, built at start-up and reused for every call."""

    def __init__(self, config: SoapClientConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        if not config.wsdl_path.is_file():
            raise ConfigurationError(
                f"LGSP WSDL {config.wsdl_path} does not exist",
                message_vi=f"không tìm thấy tệp WSDL {config.wsdl_path}",
            )
        timeout = httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds)
        self._transport = HubAsyncTransport(
            http, timeout=timeout, max_response_bytes=config.max_response_bytes
        )
        wsse: Any = None
        if config.username is not None:
            wsse = _username_token(config.username, config.password or "", use_digest=config.password_digest)
        try:
            self._zeep: Any = _zeep_client(
                str(config.wsdl_path), transport=self._transport, settings=hardened_settings(), wsse=wsse
            )
        except (ZeepError, etree.XMLSyntaxError, OSError) as exc:
            raise ConfigurationError(f"cannot load LGSP WSDL {config.wsdl_path}: {exc}") from exc
        self._binding = self._select_binding()
        missing = [op for op in config.operations.values() if op not in self._binding._operations]
        if missing:
            raise ConfigurationError(
                f"LGSP WSDL {config.wsdl_path.name} binding {self._binding.name.localname} lacks "
                f"operations {', '.join(missing)}",
                message_vi="WSDL của LGSP thiếu thao tác cần thiết: " + ", ".join(missing),
            )
        # WS-Addressing: the Action is the portType's wsam:Action when declared, else the
        # soapAction (WS-Addressing 1.0 Metadata §4.4). zeep would add its own headers (with a
        # random MessageID) for operations carrying wsam:Action; the hub adds them itself, with
        # the message's stable id, so zeep's automatic ones are switched off.
        self._actions: dict[str, str] = {}
        for op_name, operation in self._binding._operations.items():
            self._actions[op_name] = str(operation.abstract.wsa_action or operation.soapaction or "")
            operation.abstract.wsa_action = None
        self._wsse = wsse
        self._declared: dict[int, _Declared] = {}
        #: Parsed once: httpx re-parses a ``str`` address on every request (~8 µs).
        try:
            self._url = httpx.URL(config.address)
        except httpx.InvalidURL as exc:
            raise ConfigurationError(
                f"LGSP SOAP address {config.address!r} is not a valid URL: {exc}",
                message_vi=f"địa chỉ dịch vụ SOAP của LGSP không hợp lệ: {config.address!r}",
            ) from exc
        #: The same binding, untyped: zeep leaves these methods unannotated.
        self._zeep_binding: Any = cast(Any, self._binding)
        self._soap_version: SoapVersion = "1.2" if isinstance(self._binding, Soap12Binding) else "1.1"
        envelope_ns = str(self._zeep_binding.nsmap["soap-env"])
        self._body_tag = f"{{{envelope_ns}}}Body"
        self._fault_tag = f"{{{envelope_ns}}}Fault"

    @property
    def soap_version(self) -> SoapVersion:
        return self._soap_version

    def _select_binding(self) -> SoapBinding:
        wanted: type[SoapBinding] = Soap12Binding if self.config.soap_version == "1.2" else Soap11Binding
        services = self._zeep.wsdl.services
        if self.config.service_name is not None:
            if self.config.service_name not in services:
                raise ConfigurationError(
                    f"LGSP WSDL has no service {self.config.service_name!r}; it has {', '.join(services)}"
                )
            candidates = [services[self.config.service_name]]
        else:
            candidates = list(services.values())
        for service in candidates:
            for port_name, port in service.ports.items():
                if self.config.port_name is not None and port_name != self.config.port_name:
                    continue
                if type(port.binding) is wanted:
                    binding: SoapBinding = port.binding
                    return binding
        raise ConfigurationError(
            f"LGSP WSDL has no SOAP {self.config.soap_version} port"
            + (f" named {self.config.port_name!r}" if self.config.port_name else ""),
            message_vi=f"WSDL của LGSP không có cổng SOAP {self.config.soap_version}",
        )

    def operation_name(self, role: str) -> str:
        return self.config.operations[role]

    def soap_action(self, role: str) -> str:
        """The ``wsa:Action`` of the operation playing ``role``."""
        return self._actions[self.operation_name(role)]

    def _addressing_headers(self, role: str, message_id: str) -> list[etree._Element]:
        headers = []
        for name, value in (
            ("Action", self.soap_action(role)),
            ("MessageID", message_id_uri(message_id)),
            ("To", self.config.address),
        ):
            element = etree.Element(f"{{{WSA_NS}}}{name}", nsmap={"wsa": WSA_NS})
            element.text = value
            headers.append(element)
        return headers

    def _envelope(
        self, role: str, body: dict[str, Any], message_id: str
    ) -> tuple[Any, bytes, dict[str, str]]:
        """zeep operation, serialised envelope (WS-A headers + fresh UsernameToken) and HTTP headers.

        The steps of zeep's ``SoapBinding._create`` without the service-proxy lookup, zeep's own
        WS-Addressing plugin (switched off, see ``__init__``) and the empty plugin chain.
        """
        operation = self._binding._operations[self.config.operations[role]]
        soap_headers = self._addressing_headers(role, message_id)
        if _plain_body_ok(operation.input):
            serialized = self._serialize_plain(operation, soap_headers, body)
        else:
            serialized = operation.create(_soapheaders=soap_headers, **body)
        self._zeep_binding._set_http_headers(serialized, operation)
        envelope, headers = serialized.content, serialized.headers
        if self._wsse is not None:
            envelope, headers = self._wsse.apply(envelope, headers)
        message = etree.tostring(envelope, encoding="utf-8", xml_declaration=True)
        return operation, message, headers

    def build_envelope(self, role: str, body: dict[str, Any], message_id: str) -> bytes:
        """Serialise a request exactly as :meth:`call` sends it (golden tests, profiling)."""
        return self._envelope(role, body, message_id)[1]

    def _serialize_plain(
        self, operation: Any, soap_headers: list[etree._Element], body: dict[str, Any]
    ) -> Any:
        """zeep's ``SoapMessage.serialize`` rendering the plain dict directly.

        zeep first turns the keyword arguments into ``CompoundValue`` objects and then renders
        them; its renderer reads dicts just as well, so that copy is skipped. Names the schema
        does not declare are refused first (zeep's object building did that with a TypeError);
        required elements are still checked by zeep's renderer (``ValidationError``).
        """
        body_element = operation.input.body
        _check_names(self._declared, body_element, body, [body_element.qname.localname])
        envelope_ns = self._zeep_binding.nsmap["soap-env"]
        nsmap = {"soap-env": envelope_ns, **self._zeep.wsdl.types._prefix_map_custom}
        envelope = etree.Element(f"{{{envelope_ns}}}Envelope", nsmap=nsmap)
        if soap_headers:
            header = etree.SubElement(envelope, f"{{{envelope_ns}}}Header")
            header.extend(soap_headers)
        soap_body = etree.SubElement(envelope, f"{{{envelope_ns}}}Body")
        body_element.render(soap_body, body)
        action = operation.soapaction
        return SerializedMessage(
            path=None, headers={"SOAPAction": f'"{action}"' if action else '""'}, content=envelope
        )

    async def call(self, role: str, body: dict[str, Any], *, message_id: str, summary: str) -> SoapReply:
        """Invoke the operation for ``role``; return the answer as plain dicts or raise a HubError."""
        operation = self.operation_name(role)
        exchange = HttpExchange()
        request_summary = f"SOAP {self._soap_version} {operation} MessageID={message_id} {summary}"
        try:
            operation_obj, message, headers = self._envelope(role, body, message_id)
            response = await self._transport.post(self._url, message, headers, exchange)
            plain = self._mresult_reply(role, response)
            if plain is None:
                result = self._zeep_binding.process_reply(self._zeep, operation_obj, response)
                plain = _serialize(result, dict)
        except HubError as exc:
            _describe(exc, exchange, request_summary, keep_existing=True)
            raise
        except Fault as fault:
            raise map_fault(fault, exchange, request_summary) from fault
        except ZeepTransportError as exc:
            raise _unusable_answer(exchange, request_summary, str(exc)) from exc
        except (XMLParseError, ZeepXMLSyntaxError, etree.XMLSyntaxError) as exc:
            # Not a SOAP envelope (a proxy page, a truncated answer): classified by HTTP status.
            raise _unusable_answer(exchange, request_summary, f"not a usable SOAP envelope: {exc}") from exc
        except ValidationError as exc:
            raise describe(
                InvalidInputError(
                    f"{operation} request does not match the WSDL: {exc}",
                    message_vi=f"yêu cầu {operation} không khớp WSDL: {exc}",
                ),
                request_summary=request_summary,
            ) from exc
        except (DTDForbidden, EntitiesForbidden) as exc:
            raise _describe(
                UnsafeXmlError(
                    f"LGSP SOAP answer refused by the hardened parser: {type(exc).__name__}",
                    message_vi="phản hồi SOAP của LGSP chứa DTD/thực thể bị cấm",
                ),
                exchange,
                request_summary,
            ) from exc
        except ZeepError as exc:
            name = type(exc).__name__
            raise _describe(
                SoapFaultError(f"LGSP SOAP call {operation} failed: {name}: {mask_pii(str(exc))}"),
                exchange,
                request_summary,
            ) from exc
        if not isinstance(plain, dict) or "Result" not in plain:
            plain = {"Result": plain}
        return SoapReply(
            operation=operation,
            body=plain,
            status_code=exchange.status_code,
            request_summary=request_summary,
        )

    def _mresult_reply(self, role: str, response: httpx.Response) -> dict[str, Any] | None:
        """A plain 200 ``MResult`` answer read straight from the tree, or ``None`` for zeep to handle.

        ``SyncDocument``/``UpdateDocumentTraces`` answer ``MResult{Status, Message}`` only
        (docs/portal.md §4.2): parsed with the hub's hardened parser (no DTD, no entities) and
        read without zeep's typed deserialisation; the pydantic ``MResult`` checks the types.
        Faults, other statuses, MTOM and anything unparsable go through zeep's ``process_reply``,
        so their classification is unchanged.
        """
        if role not in _MRESULT_ROLES or response.status_code != 200:
            return None
        if "multipart" in response.headers.get("Content-Type", ""):
            return None
        try:
            root = parse_xml(response.content, max_bytes=self.config.max_response_bytes)
        except HubError:
            return None
        body = root.find(self._body_tag)
        if body is None or len(body) != 1 or body[0].tag == self._fault_tag:
            return None
        plain = _plain(body[0])
        if isinstance(plain, dict) and len(plain) == 1:
            # zeep's unwrapping of a response element with a single child (document/literal wrapped).
            (plain,) = plain.values()
        return plain if isinstance(plain, dict) else None

    async def aclose(self) -> None:
        """The injected HTTP client belongs to the hub; nothing else to release."""


def _plain_body_ok(message: Any) -> bool:
    """Document/literal input whose body is one schema element (the bundled WSDL's shape)."""
    return isinstance(message.body, XsdElement) and not message._is_body_wrapped


#: Per schema element: its declared child elements, attribute names, open content (xsd:any).
_Declared = tuple[dict[str, Any], frozenset[str], bool] | None


def _declared(cache: dict[int, _Declared], element: Any) -> _Declared:
    """What ``element``'s complex type declares, computed once per element of the client's WSDL.

    Keyed by ``id``: the cache lives on the client, which keeps its WSDL (and so every element)
    alive, so ids cannot be reused while the cache exists.
    """
    key = id(element)
    if key not in cache:
        elements = getattr(element.type, "elements", None)
        if elements is None:
            cache[key] = None
        else:
            declared = {name: child for name, child in elements if isinstance(child, XsdElement)}
            attributes = frozenset(name for name, _ in getattr(element.type, "attributes", []))
            cache[key] = (declared, attributes, len(declared) != len(elements))
    return cache[key]


def _check_names(cache: dict[int, _Declared], element: Any, value: Any, path: list[str]) -> None:
    """Refuse keys the schema element's complex type does not declare (recursively)."""
    known = _declared(cache, element)
    if known is None or value is None:
        return
    declared, attributes, open_content = known
    for item in value if isinstance(value, list) else (value,):
        if not isinstance(item, dict):
            continue
        for key, child_value in item.items():
            child = declared.get(key)
            if child is None:
                if key in attributes or open_content:
                    continue
                where = "/".join(path)
                raise InvalidInputError(
                    f"request field {where}/{key} is not declared by the WSDL",
                    message_vi=f"trường {where}/{key} không có trong WSDL",
                    details={"field": f"{where}/{key}"},
                )
            _check_names(cache, child, child_value, [*path, key])


_MRESULT_ROLES = frozenset({"sync", "traces"})
_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def _plain(element: etree._Element) -> Any:
    """Element → plain data: text for leaves, dicts by local name (lists for repeats), None for nil."""
    if element.get(_XSI_NIL) in ("true", "1"):
        return None
    children = [child for child in element if isinstance(child.tag, str)]
    if not children:
        return element.text or ""
    out: dict[str, Any] = {}
    for child in children:
        name = etree.QName(child).localname
        value = _plain(child)
        if name in out:
            previous = out[name]
            out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[name] = value
    return out


_ErrorT = TypeVar("_ErrorT", bound=HubError)


def _describe(
    error: _ErrorT, exchange: HttpExchange, request_summary: str, *, keep_existing: bool = False
) -> _ErrorT:
    """Attach what the transport saw of this call to ``error`` (bounded, masked)."""
    return describe(
        error,
        status_code=exchange.status_code,
        request_summary=request_summary,
        response_summary=exchange.response_body or None,
        keep_existing=keep_existing,
    )


def _local(code: str | None) -> str:
    if not code:
        return ""
    local = code.rsplit("}", 1)[-1].rsplit(":", 1)[-1]
    return local.split(".", 1)[0]


def map_fault(fault: Fault, exchange: HttpExchange, request_summary: str) -> HubError:
    """SOAP 1.1 ``Client``/``Server``, SOAP 1.2 ``Sender``/``Receiver`` → hub errors."""
    subcodes = [str(getattr(s, "text", s)) for s in (fault.subcodes or [])]
    code = str(fault.code) if fault.code else ""
    kind = _local(code)
    details = {"fault_code": code, "fault_subcodes": subcodes, "fault_string": mask_pii(fault.message or "")}
    reason = mask_pii(fault.message or "")
    text = f"SOAP fault {code or '(no code)'}: {reason}"
    if any(marker in part for part in (code, *subcodes) for marker in _AUTH_FAULTS):
        return _describe(
            RemoteAuthenticationError(
                f"LGSP refused the WS-Security credentials: {text}",
                message_vi=f"LGSP từ chối thông tin xác thực WS-Security: {reason}",
                details=details,
            ),
            exchange,
            request_summary,
        )
    if not code:
        # zeep's "Unknown fault occured": an error status whose body holds no SOAP Fault.
        return _unusable_answer(exchange, request_summary, "answer without a SOAP Fault")
    if kind in _SERVER_FAULTS:
        return _describe(
            EndpointBusyError(
                f"LGSP server fault (retryable): {text}",
                message_vi=f"lỗi phía máy chủ LGSP (sẽ thử lại): {reason}",
                retry_after=exchange.retry_after,
                details=details,
            ),
            exchange,
            request_summary,
        )
    return _describe(
        SoapFaultError(
            f"LGSP rejected the request: {text}",
            message_vi=f"LGSP từ chối yêu cầu: {reason}",
            details=details,
        ),
        exchange,
        request_summary,
    )


def _unusable_answer(exchange: HttpExchange, request_summary: str, text: str) -> HubError:
    """An answer zeep could not use: an error status without a SOAP Fault, or a garbled 2xx."""
    if exchange.status_code is None:
        return busy_error(
            ENDPOINT,
            text,
            status_code=None,
            retry_after=exchange.retry_after,
            request_summary=request_summary,
            response=exchange.response_body,
        )
    error = classify_status(
        exchange.status_code,
        ENDPOINT,
        retry_after=exchange.retry_after,
        request_summary=request_summary,
        response=exchange.response_body,
        rejection=SoapFaultError,
        detail=f"check the endpoint address: {text}",
    )
    if error is not None:
        return error
    # zeep's "invalid XML" answer to a 2xx: a garbled reply; the redelivery carries the same MessageID.
    why = excerpt(text, REASON_CHARS)
    return _describe(
        TransportError(
            f"LGSP SOAP endpoint answered HTTP {exchange.status_code} with an unusable body: {why}",
            message_vi="phản hồi SOAP của LGSP không đọc được",
        ),
        exchange,
        request_summary,
    )
