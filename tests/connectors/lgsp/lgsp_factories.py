"""Test data for the LGSP connector tests: a realistic Ninh Bình dossier, deliveries, settings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connectors.base import Delivery
from connectors.settings import EndpointKind, EndpointSettings
from hub.simulators.lgsp import LgspSimulator
from schemas.dossier import (
    Channel,
    Contact,
    Dossier,
    Fee,
    OtherPaper,
    Owner,
    OwnerType,
    ProcessingStep,
    ReturnMethod,
    SubmittedDocument,
    SupplementRequest,
)
from schemas.messages import DossierProgressPayload, DossierSyncPayload, MessageKind
from schemas.status import DossierStatus
from schemas.timefmt import VN_TZ

HERE = Path(__file__).parent
VARIANT_WSDL = HERE / "wsdl_variant" / "province-hoso.wsdl"


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


def make_dossier(code: str = "000.00.18.H42-250612-0001", **overrides: Any) -> Dossier:
    data: dict[str, Any] = dict(
        code=code,
        agency_code="000.00.18.H42",
        procedure_code="1.003901.H42",
        procedure_name="Cấp giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm",
        field_code="NN-ATTP",
        field_name="Quản lý chất lượng nông lâm sản và thủy sản",
        channel=Channel.ONLINE,
        receipt_number="BN-0001",
        owner=Owner(name="Nguyễn Thị Hoà", type=OwnerType.CITIZEN, id_number="037190001234"),
        contact=Contact(
            email="hoa.nguyen@example.vn",
            phone="0912345678",
            address="Số 5, đường Lê Hồng Phong, phường Đông Thành, Ninh Bình",
            other="Hộ kinh doanh",
        ),
        summary="Đề nghị cấp giấy chứng nhận ATTP cho cơ sở chế biến miến",
        status=DossierStatus.PROCESSING,
        submitted_at=vn(2025, 6, 12, 7, 45, 10),
        received_at=vn(2025, 6, 12, 8, 5, 0),
        due_at=vn(2025, 6, 26, 17, 0, 0),
        return_method=ReturnMethod.POSTAL,
        processing_agency="Chi cục Quản lý chất lượng nông lâm sản và thủy sản",
        note="Hồ sơ nộp trực tuyến",
        paid_online=True,
        documents=[
            SubmittedDocument(
                id="TL-1",
                name="Đơn đề nghị cấp giấy chứng nhận",
                component_code="TP1",
                download_url="https://hub.ninhbinh.example/files/TL-1",
            ),
            SubmittedDocument(id="TL-2", name="Bản thuyết minh cơ sở vật chất", deleted=True),
        ],
        fees=[Fee(name="Phí thẩm định cấp giấy chứng nhận", amount=Decimal(700000))],
        other_papers=[OtherPaper(name="Giấy chứng nhận đăng ký kinh doanh", quantity=1, kind="BS")],
        supplements=[
            SupplementRequest(
                id="BS-1",
                requested_by="Trần Văn Nam",
                content="Bổ sung giấy xác nhận tập huấn kiến thức ATTP",
                requested_at=vn(2025, 6, 16, 9, 30, 0, 123000),
                received_by="Lê Thu Trang",
                received_info="Đã nhận bản sao",
                received_at=vn(2025, 6, 18, 10, 0, 0),
                fulfilled=True,
                papers=[OtherPaper(name="Giấy xác nhận tập huấn", quantity=1)],
                fees=[],
                old_due_at=vn(2025, 6, 26, 17, 0, 0),
                new_due_at=vn(2025, 6, 30, 17, 0, 0),
            )
        ],
    )
    data.update(overrides)
    return Dossier(**data)


def make_steps() -> list[ProcessingStep]:
    return [
        ProcessingStep(
            handler="Lê Thu Trang",
            position="Chuyên viên một cửa",
            department="Bộ phận Một cửa",
            at=vn(2025, 6, 12, 8, 5, 0),
            content="Tiếp nhận hồ sơ",
            status=DossierStatus.RECEIVED,
        ),
        ProcessingStep(
            handler="Trần Văn Nam",
            position="Phó Chi cục trưởng",
            department="Phòng Chế biến",
            at=vn(2025, 6, 13, 14, 30, 5),
            content="Thẩm định hồ sơ",
            status=DossierStatus.PROCESSING,
            started_at=vn(2025, 6, 13, 8, 0, 0),
            step_due_at=vn(2025, 6, 20, 17, 0, 0),
        ),
    ]


def sync_delivery(
    dossier: Dossier | None = None, message_id: str = "msg-0001", endpoint: str = "lgsp"
) -> Delivery:
    dossier = dossier or make_dossier()
    payload = DossierSyncPayload(dossier=dossier, revision=3).model_dump(mode="json")
    return Delivery(
        message_id=message_id,
        endpoint=endpoint,
        kind=MessageKind.DOSSIER_SYNC.value,
        payload=payload,
        dossier_code=dossier.code,
    )


def progress_delivery(message_id: str = "msg-0002") -> Delivery:
    dossier = make_dossier()
    payload = DossierProgressPayload(
        dossier_code=dossier.code, steps=make_steps(), dossier=dossier, revision=4
    ).model_dump(mode="json")
    return Delivery(
        message_id=message_id,
        endpoint="lgsp",
        kind=MessageKind.DOSSIER_PROGRESS.value,
        payload=payload,
        dossier_code=dossier.code,
    )


def soap_settings(sim: LgspSimulator, version: str = "1.1", **options: Any) -> EndpointSettings:
    return EndpointSettings(
        kind=EndpointKind.LGSP_SOAP,
        url=sim.soap11_url if version == "1.1" else sim.soap12_url,
        username=sim.username,
        password=SecretStr(sim.password),
        timeout_seconds=options.pop("timeout_seconds", 5),
        options={"soap_version": version, **options},
    )


def rest_settings(sim: LgspSimulator, **options: Any) -> EndpointSettings:
    return EndpointSettings(
        kind=EndpointKind.LGSP_REST,
        url=sim.url,
        client_id=sim.client_id,
        client_secret=SecretStr(sim.client_secret),
        timeout_seconds=options.pop("timeout_seconds", 5),
        options=options,
    )
