"""The hub's connector to the National Public Service Portal (docs/portal.md §3).

Message kinds (``schemas.messages``):

* ``dossier.sync`` → ``DongBoHoSoMC``. A dossier the connector has not seen accepted is sent
  as a create (``isUpdating`` "False"), otherwise as an update ("True"); a create answered with
  "đã tồn tại" is re-sent as an update (Thanh Hóa ``SyncLocalDataToDVCQGService``, §3.8).
* ``dossier.progress`` → ``CapNhatTienDoHoSoMC`` in chunks (default 10, §3.4). OpenCPS sends
  progress only after the dossier record was accepted (§3.2); the hub's per-dossier FIFO already
  orders sync before progress, and the connector also checks: a dossier not known to have been
  accepted is looked up with ``TraCuuHoSo`` and created first when the portal does not have it.

The message's stable id travels in an HTTP header (``X-Message-Id`` by default) so the portal
can de-duplicate at-least-once deliveries; sub-calls get ``<id>:<suffix>``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import httpx
from pydantic import ValidationError

from connectors.base import Delivery, DeliveryReceipt
from connectors.dvcqg.catalog import ProcedureCatalog
from connectors.dvcqg.client import SERVICE_PROGRESS, SERVICE_SYNC, DvcqgClient
from connectors.dvcqg.mapping import chunked, dossier_to_wire, step_to_wire
from connectors.dvcqg.options import DvcqgOptions
from connectors.dvcqg.responses import Outcome, PortalAnswer
from connectors.dvcqg.wire import WireDossier
from connectors.settings import EndpointKind, EndpointSettings
from schemas.dossier import Dossier
from schemas.errors import ConfigurationError, HubError, InvalidInputError
from schemas.messages import DossierProgressPayload, DossierSyncPayload, MessageKind

logger = logging.getLogger(__name__)


def _invalid_payload(kind: str, exc: ValidationError) -> InvalidInputError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:10]
    )
    return InvalidInputError(
        f"{kind} payload does not fit the canonical schema: {problems}",
        message_vi=f"Dữ liệu {kind} không đúng cấu trúc chuẩn: {problems}",
        request_summary=f"{kind} (not sent)",
    )


class DvcqgConnector:
    """Implements :class:`connectors.base.Connector` for the DVCQG adapter."""

    def __init__(
        self, name: str, client: DvcqgClient, catalog: ProcedureCatalog, options: DvcqgOptions
    ) -> None:
        self.name = name
        self.client = client
        self.catalog = catalog
        self.options = options
        self._known: OrderedDict[str, None] = OrderedDict()

    # --- memory of accepted dossiers --------------------------------------------------------

    def is_known(self, dossier_code: str) -> bool:
        """True when this process saw the portal accept ``dossier_code``."""
        return dossier_code in self._known

    def _remember(self, dossier_code: str) -> None:
        if self.options.known_dossiers_capacity == 0:
            return
        self._known[dossier_code] = None
        self._known.move_to_end(dossier_code)
        while len(self._known) > self.options.known_dossiers_capacity:
            self._known.popitem(last=False)

    # --- Connector protocol -----------------------------------------------------------------

    async def deliver(self, delivery: Delivery) -> DeliveryReceipt:
        if delivery.kind == MessageKind.DOSSIER_SYNC:
            return await self._deliver_sync(delivery)
        if delivery.kind == MessageKind.DOSSIER_PROGRESS:
            return await self._deliver_progress(delivery)
        raise InvalidInputError(
            f"the DVCQG connector does not handle message kind {delivery.kind!r}",
            message_vi=f"kết nối Cổng DVCQG không xử lý loại thông điệp {delivery.kind!r}",
            request_summary=f"{delivery.kind} (not sent)",
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- helpers ----------------------------------------------------------------------------

    def _headers(self, delivery: Delivery, suffix: str | None = None) -> dict[str, str]:
        headers = dict(delivery.headers)
        message_id = delivery.message_id if suffix is None else f"{delivery.message_id}:{suffix}"
        headers[self.options.message_id_header] = message_id
        return headers

    async def wire_record(self, dossier: Dossier) -> WireDossier:
        """The ``DongBoHoSoMC`` record, with the national ``MaTTHC`` and catalogue names."""
        national = self.catalog.national_code(dossier.procedure_code)
        name = field_code = field_name = None
        if self.options.enrich_from_catalog and not (
            dossier.procedure_name and dossier.field_code and dossier.field_name
        ):
            try:
                info = await self.catalog.procedure(national)
            except HubError as exc:
                # Names are optional on the wire; a catalogue outage must not block delivery.
                logger.warning("LayThuTuc %s failed (%s); sending without catalogue names", national, exc)
                info = None
            if info is not None:
                name = info.name
                if info.main_field is not None:
                    field_code, field_name = info.main_field.code, info.main_field.name
        try:
            return dossier_to_wire(
                dossier,
                national_procedure_code=national,
                options=self.options,
                procedure_name=name,
                field_code=field_code,
                field_name=field_name,
            )
        except ValidationError as exc:
            raise _invalid_payload(MessageKind.DOSSIER_SYNC.value, exc) from None

    async def _sync_record(
        self, delivery: Delivery, record: WireDossier, *, suffix: str | None = None
    ) -> tuple[PortalAnswer, str]:
        """Create-or-update one record; returns the final answer and what was done."""
        code = record.code
        updating = self.is_known(code)
        if not updating and self.options.lookup_before_create:
            updating = bool(await self.client.lookup_raw(code))
        mode = "update" if updating else "create"
        summary = f"{SERVICE_SYNC} isUpdating={updating} MaHoSo={code} TrangThaiHoSo={record.status}"
        answer = await self.client.sync_dossiers(
            [record], updating=updating, headers=self._headers(delivery, suffix), request_summary=summary
        )
        if answer.outcome is Outcome.DUPLICATE and not updating:
            logger.info("DVCQG already has %s; re-sending as an update", code)
            mode = "create→update"
            summary = f"{SERVICE_SYNC} isUpdating=True MaHoSo={code} TrangThaiHoSo={record.status}"
            retry_suffix = "update" if suffix is None else f"{suffix}:update"
            answer = await self.client.sync_dossiers(
                [record],
                updating=True,
                headers=self._headers(delivery, retry_suffix),
                request_summary=summary,
            )
        self._remember(code)
        return answer, f"{summary} ({mode})"

    @staticmethod
    def _receipt(answer: PortalAnswer, request_summary: str, reference: str) -> DeliveryReceipt:
        response = f"error_code={answer.error_code} message={answer.message}".strip()
        return DeliveryReceipt(
            status_code=answer.status_code,
            request_summary=request_summary,
            response_summary=response if answer.error_code is not None or answer.message else answer.summary,
            remote_reference=reference,
        )

    # --- message kinds ----------------------------------------------------------------------

    async def _deliver_sync(self, delivery: Delivery) -> DeliveryReceipt:
        try:
            payload = DossierSyncPayload.model_validate(delivery.payload)
        except ValidationError as exc:
            raise _invalid_payload(delivery.kind, exc) from None
        record = await self.wire_record(payload.dossier)
        answer, summary = await self._sync_record(delivery, record)
        return self._receipt(answer, summary, record.code)

    async def _deliver_progress(self, delivery: Delivery) -> DeliveryReceipt:
        try:
            payload = DossierProgressPayload.model_validate(delivery.payload)
        except ValidationError as exc:
            raise _invalid_payload(delivery.kind, exc) from None
        code = payload.dossier.code
        if payload.dossier_code.strip().upper() != code:
            raise InvalidInputError(
                f"progress for {payload.dossier_code!r} carries dossier {code!r}",
                message_vi=f"tiến độ của hồ sơ {payload.dossier_code!r} lại kèm hồ sơ {code!r}",
                request_summary=f"{delivery.kind} (not sent)",
            )
        summaries: list[str] = []
        if not self.is_known(code):
            # Progress is accepted only for a dossier the portal has (OpenCPS, §3.2).
            if await self.client.lookup_raw(code):
                self._remember(code)
            else:
                record = await self.wire_record(payload.dossier)
                _, summary = await self._sync_record(delivery, record, suffix="sync")
                summaries.append(summary)
        try:
            records = [step_to_wire(code, step) for step in payload.steps]
        except ValidationError as exc:
            raise _invalid_payload(delivery.kind, exc) from None
        chunks = list(chunked(records, self.options.progress_chunk_size))
        answer: PortalAnswer | None = None
        for index, chunk in enumerate(chunks, start=1):
            suffix = None if len(chunks) == 1 else f"{index}/{len(chunks)}"
            summary = f"{SERVICE_PROGRESS} MaHoSo={code} steps={len(chunk)} chunk={index}/{len(chunks)}"
            answer = await self.client.push_progress(
                chunk, headers=self._headers(delivery, suffix), request_summary=summary
            )
            summaries.append(summary)
        assert answer is not None  # steps has min_length=1
        return self._receipt(answer, "; ".join(summaries), code)


def build_dvcqg_connector(
    name: str, settings: EndpointSettings, http: httpx.AsyncClient | None = None
) -> DvcqgConnector:
    """Factory used by the hub's connector registry (``EndpointKind.DVCQG``)."""
    if settings.kind is not EndpointKind.DVCQG:
        raise ConfigurationError(f"endpoint {name!r} is of kind {settings.kind.value}, not dvcqg")
    options = DvcqgOptions.from_mapping(settings.options)
    missing = [
        key
        for key, value in (
            ("username", settings.username),
            ("password", settings.password),
            ("options.madonvi", options.madonvi),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(
            f"endpoint {name!r} (dvcqg) needs {', '.join(missing)}",
            message_vi=f"kết nối {name!r} (Cổng DVCQG) thiếu cấu hình {', '.join(missing)}",
        )
    password = settings.password.get_secret_value() if settings.password is not None else ""
    client = DvcqgClient(
        settings.url,
        username=settings.username or "",
        password=password,
        options=options,
        http=http,
        timeout=httpx.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds),
    )
    catalog = ProcedureCatalog(
        client, procedure_map=options.procedure_map, ttl_seconds=options.catalog_ttl_seconds
    )
    return DvcqgConnector(name, client, catalog, options)
