"""LGSP connectors (SOAP and REST) behind the hub's :class:`connectors.base.Connector` seam.

Message kinds: ``dossier.sync`` → ``SyncDocument`` (``MSyncDocument``), ``dossier.progress`` →
``UpdateDocumentTraces`` (``MDocumentTraces``) (docs/portal.md §4.2, §9). Both answer
``MResult{Status, Message}``: a status in ``success_statuses`` (default ``[1]``) is a delivery;
a message saying the record already exists ("đã tồn tại", the duplicate marker of §3.8) is a
delivery too, because redeliveries of the same message are expected (at-least-once); anything
else is a :class:`~schemas.errors.BusinessRejectionError`.

Options (``EndpointSettings.options``) are validated once, when the connector is built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlparse

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import Delivery, DeliveryReceipt
from connectors.http_errors import describe
from connectors.lgsp.mapping import from_sync_document, to_sync_document, to_traces
from connectors.lgsp.models import LookupResult, MResult
from connectors.lgsp.rest import LgspRestClient, OAuth2ClientCredentials, RestReply
from connectors.lgsp.soap import (
    DEFAULT_OPERATIONS,
    LgspSoapClient,
    SoapClientConfig,
    SoapReply,
    bundled_wsdl_path,
)
from connectors.settings import EndpointKind, EndpointSettings
from schemas.dossier import Dossier
from schemas.errors import BusinessRejectionError, ConfigurationError, InvalidInputError
from schemas.masking import mask_pii
from schemas.messages import DossierProgressPayload, DossierSyncPayload, MessageKind

#: "Already exists" markers seen in portal answers (docs/portal.md §3.8).
DEFAULT_DUPLICATE_MARKERS = ("đã tồn tại", "already exists")


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organ_level1_id: str | None = None
    """``OrganInchargeIdLevel1``; defaults to the dossier's receiving agency code."""
    success_statuses: list[int] = Field(default_factory=lambda: [1])
    duplicate_markers: list[str] = Field(default_factory=lambda: list(DEFAULT_DUPLICATE_MARKERS))
    max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)


class LgspSoapOptions(_Options):
    wsdl_path: str | None = None
    """A province's own WSDL; defaults to the bundled ``schemas/wsdl/lgsp-motcua.wsdl``."""
    soap_version: Literal["1.1", "1.2"] = "1.1"
    service_name: str | None = None
    port_name: str | None = None
    operations: dict[str, str] = Field(default_factory=dict)
    """Role → operation overrides; roles ``sync``, ``traces``, ``lookup`` (see ``DEFAULT_OPERATIONS``)."""
    password_digest: bool = True


class LgspRestOptions(_Options):
    context: str = "motcua"
    version: str = "1.0.0"
    token_url: str | None = None
    """Defaults to ``{url}/token`` (§4.1)."""
    sync_path: str = "Document/SyncDocument"
    traces_path: str = "Document/UpdateDocumentTraces"
    lookup_path: str = "Document/GetDocument"
    token_skew_seconds: float = Field(default=30, ge=0)
    scope: str | None = None
    message_id_header: str = "X-Message-ID"


_OptT = TypeVar("_OptT", bound=_Options)
_PayloadT = TypeVar("_PayloadT", bound=BaseModel)
_ClientT = TypeVar("_ClientT", LgspSoapClient, LgspRestClient)


def _options(model: type[_OptT], kind: EndpointKind, name: str, settings: EndpointSettings) -> _OptT:
    """The options of endpoint ``name``, which must be of ``kind``, validated by ``model``."""
    if settings.kind is not kind:
        raise ConfigurationError(f"endpoint {name} is {settings.kind}, not {kind}")
    try:
        return model.model_validate(settings.options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(
            f"endpoints.{name}.options invalid for {settings.kind}: {problems}",
            message_vi=f"cấu hình endpoints.{name}.options không hợp lệ: {problems}",
        ) from None


def _payload(model: type[_PayloadT], delivery: Delivery) -> _PayloadT:
    try:
        return model.model_validate(delivery.payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise InvalidInputError(
            f"{delivery.kind} payload invalid at {where}: {first['msg']}",
            message_vi=f"dữ liệu {delivery.kind} không hợp lệ tại {where}: {first['msg']}",
            details={"message_id": delivery.message_id},
        ) from None


def _unsupported(delivery: Delivery) -> InvalidInputError:
    return InvalidInputError(
        f"LGSP connectors do not deliver message kind {delivery.kind!r}",
        message_vi=f"kết nối LGSP không hỗ trợ loại thông điệp {delivery.kind!r}",
        details={"kind": delivery.kind},
    )


def classify_result(
    result: MResult,
    options: _Options,
    *,
    operation: str,
    status_code: int | None,
    request_summary: str,
) -> DeliveryReceipt:
    """``MResult`` → receipt, or :class:`BusinessRejectionError` (§4.2, §3.8 duplicate rule).

    The summary is masked where it is stored (the receipt and :func:`describe` mask and bound).
    """
    summary = f"{operation} MResult Status={result.Status} Message={result.Message}"
    if result.Status in options.success_statuses:
        return DeliveryReceipt(
            status_code=status_code,
            request_summary=request_summary,
            response_summary=summary,
            remote_reference=result.DocumentId,
        )
    lowered = result.Message.casefold()
    if any(marker.casefold() in lowered for marker in options.duplicate_markers):
        return DeliveryReceipt(
            status_code=status_code,
            request_summary=request_summary,
            response_summary="duplicate acknowledged: " + summary,
            remote_reference=result.DocumentId,
        )
    raise describe(
        BusinessRejectionError(
            f"LGSP rejected {operation}: Status={result.Status} {mask_pii(result.Message)}",
            message_vi=f"LGSP từ chối {operation}: {mask_pii(result.Message)}",
            details={"lgsp_status": result.Status},
        ),
        status_code=status_code,
        request_summary=request_summary,
        response_summary=summary,
    )


def _result(body: dict[str, Any], operation: str) -> MResult:
    try:
        return MResult.model_validate(body.get("Result", body))
    except ValidationError as exc:
        raise BusinessRejectionError(
            f"LGSP answer to {operation} has no valid MResult",
            message_vi=f"phản hồi {operation} của LGSP không có MResult hợp lệ",
        ) from exc


@dataclass(frozen=True, slots=True)
class _WireRequest:
    """What one delivery becomes on the LGSP, before SOAP or REST framing."""

    role: Literal["sync", "traces"]
    record: BaseModel
    summary: str


def _wire_request(delivery: Delivery, organ_level1_id: str | None) -> _WireRequest:
    """``dossier.sync`` → ``MSyncDocument``; ``dossier.progress`` → ``MDocumentTraces`` (§4.2)."""
    if delivery.kind == MessageKind.DOSSIER_SYNC:
        sync = _payload(DossierSyncPayload, delivery)
        record = to_sync_document(sync.dossier, organ_level1_id=organ_level1_id)
        summary = f"DocCode={record.DocCode} revision={sync.revision} Status={record.Status}"
        return _WireRequest("sync", record, summary)
    if delivery.kind == MessageKind.DOSSIER_PROGRESS:
        progress = _payload(DossierProgressPayload, delivery)
        traces = to_traces(progress.dossier, progress.steps, organ_level1_id=organ_level1_id)
        summary = f"DocCode={progress.dossier.code} traces={len(traces.Traces)} revision={progress.revision}"
        return _WireRequest("traces", traces, summary)
    raise _unsupported(delivery)


class _LgspConnector(Generic[_ClientT, _OptT]):
    """What the SOAP and the REST connector share: the endpoint's name, its client and options,
    and how an answer's ``MResult`` becomes a receipt."""

    def __init__(self, name: str, client: _ClientT, options: _OptT) -> None:
        self.name = name
        self.client: _ClientT = client
        self.options = options

    def _receipt(self, reply: SoapReply | RestReply, operation: str) -> DeliveryReceipt:
        return classify_result(
            _result(reply.body, operation),
            self.options,
            operation=operation,
            status_code=reply.status_code,
            request_summary=reply.request_summary,
        )


class LgspSoapConnector(_LgspConnector[LgspSoapClient, LgspSoapOptions]):
    """``dossier.sync`` / ``dossier.progress`` over SOAP 1.1 or 1.2 (zeep)."""

    async def deliver(self, delivery: Delivery) -> DeliveryReceipt:
        request = _wire_request(delivery, self.options.organ_level1_id)
        body = request.record.model_dump(exclude_none=True)
        if request.role == "sync":
            body = {"Document": body}
        reply = await self.client.call(
            request.role, body, message_id=delivery.message_id, summary=request.summary
        )
        return self._receipt(reply, reply.operation)

    async def lookup(self, dossier_code: str, *, message_id: str) -> Dossier | None:
        """``GetDocument``: the LGSP's copy of a dossier, or ``None`` when it has none."""
        reply = await self.client.call(
            "lookup", {"DocCode": dossier_code}, message_id=message_id, summary=f"DocCode={dossier_code}"
        )
        return _lookup_result(reply.body, self.options)

    async def aclose(self) -> None:
        await self.client.aclose()


def _lookup_result(body: dict[str, Any], options: _Options) -> Dossier | None:
    try:
        answer = LookupResult.model_validate(body)
    except ValidationError as exc:
        raise BusinessRejectionError(
            f"LGSP GetDocument answer is not a valid record: {exc.errors()[0]['msg']}",
            message_vi="phản hồi tra cứu hồ sơ của LGSP không hợp lệ",
        ) from exc
    if answer.Document is None or answer.Result.Status not in options.success_statuses:
        return None
    return from_sync_document(answer.Document)


class LgspRestConnector(_LgspConnector[LgspRestClient, LgspRestOptions]):
    """``dossier.sync`` / ``dossier.progress`` as JSON over the WSO2-fronted LGSP API."""

    async def deliver(self, delivery: Delivery) -> DeliveryReceipt:
        request = _wire_request(delivery, self.options.organ_level1_id)
        path = self.options.sync_path if request.role == "sync" else self.options.traces_path
        body = request.record.model_dump_json(exclude_none=True)
        reply = await self.client.post(
            path, body.encode("utf-8"), message_id=delivery.message_id, summary=request.summary
        )
        return self._receipt(reply, path)

    async def lookup(self, dossier_code: str, *, message_id: str) -> Dossier | None:
        reply = await self.client.post(
            self.options.lookup_path,
            json.dumps({"DocCode": dossier_code}).encode("utf-8"),
            message_id=message_id,
            summary=f"DocCode={dossier_code}",
        )
        return _lookup_result(reply.body, self.options)

    async def aclose(self) -> None:
        """The injected HTTP client belongs to the hub."""


def _timeout(settings: EndpointSettings) -> httpx.Timeout:
    return httpx.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds)


def build_lgsp_soap_connector(
    name: str, settings: EndpointSettings, http: httpx.AsyncClient
) -> LgspSoapConnector:
    """Build the SOAP connector (zeep client loaded once from the configured local WSDL)."""
    options = _options(LgspSoapOptions, EndpointKind.LGSP_SOAP, name, settings)
    unknown = set(options.operations) - set(DEFAULT_OPERATIONS)
    if unknown:
        raise ConfigurationError(
            f"endpoints.{name}.options.operations: unknown roles {', '.join(sorted(unknown))};"
            f" expected {', '.join(DEFAULT_OPERATIONS)}"
        )
    wsdl_path = bundled_wsdl_path()
    if options.wsdl_path is not None:
        if urlparse(options.wsdl_path).scheme not in ("", "file"):
            raise ConfigurationError(
                f"endpoints.{name}.options.wsdl_path must be a local file; refusing to fetch"
                f" {options.wsdl_path} at run time (vendor the province's WSDL instead)",
                message_vi="wsdl_path phải là tệp cục bộ; không tải WSDL qua mạng khi chạy",
            )
        wsdl_path = Path(
            urlparse(options.wsdl_path).path if options.wsdl_path.startswith("file:") else options.wsdl_path
        )
    config = SoapClientConfig(
        address=settings.url,
        wsdl_path=wsdl_path,
        soap_version=options.soap_version,
        service_name=options.service_name,
        port_name=options.port_name,
        operations={**DEFAULT_OPERATIONS, **options.operations},
        username=settings.username,
        password=settings.password.get_secret_value() if settings.password else None,
        password_digest=options.password_digest,
        timeout_seconds=settings.timeout_seconds,
        connect_timeout_seconds=settings.connect_timeout_seconds,
        max_response_bytes=options.max_response_bytes,
    )
    return LgspSoapConnector(name, LgspSoapClient(config, http), options)


def build_lgsp_rest_connector(
    name: str, settings: EndpointSettings, http: httpx.AsyncClient
) -> LgspRestConnector:
    """Build the REST connector (OAuth2 client credentials, WSO2 ``/{context}/{version}`` paths)."""
    options = _options(LgspRestOptions, EndpointKind.LGSP_REST, name, settings)
    if not settings.client_id or settings.client_secret is None:
        raise ConfigurationError(
            f"endpoints.{name} (lgsp_rest) needs client_id and client_secret",
            message_vi=f"endpoints.{name} (lgsp_rest) cần client_id và client_secret",
        )
    base = settings.url.rstrip("/")
    timeout = _timeout(settings)
    auth = OAuth2ClientCredentials(
        http,
        options.token_url or f"{base}/token",
        settings.client_id,
        settings.client_secret.get_secret_value(),
        timeout=timeout,
        skew_seconds=options.token_skew_seconds,
        scope=options.scope,
    )
    api_base = f"{base}/{options.context.strip('/')}/{options.version.strip('/')}"
    client = LgspRestClient(
        http,
        api_base,
        auth,
        timeout=timeout,
        message_id_header=options.message_id_header,
        max_response_bytes=options.max_response_bytes,
    )
    return LgspRestConnector(name, client, options)
