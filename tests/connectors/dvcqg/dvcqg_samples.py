"""Sample dossiers for the DVCQG connector tests (every field and nested array filled)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.dossier import (
    Channel,
    Contact,
    Dossier,
    Fee,
    FeeCollection,
    FeeKind,
    Identity,
    IdentityKind,
    OtherPaper,
    Owner,
    OwnerType,
    ProcessingStep,
    ResultDocument,
    ReturnMethod,
    SubmittedDocument,
    SupplementRequest,
)
from schemas.messages import DossierProgressPayload, DossierSyncPayload
from schemas.status import DossierStatus
from schemas.timefmt import VN_TZ

T0 = datetime(2025, 6, 12, 8, 5, 0, tzinfo=VN_TZ)
CODE = "000.00.18.H42-250612-0001"
HUB = "http://127.0.0.1:8080/files"


def _plain_fields(code: str) -> dict[str, Any]:
    return {
        "code": code,
        "agency_code": "000.00.18.H42",
        "procedure_code": "1.003901.H42",
        "procedure_name": "Cấp giấy chứng nhận cơ sở đủ điều kiện",
        "field_code": "NN-TT",
        "field_name": "Trồng trọt",
        "channel": Channel.ONLINE,
        "owner": Owner(name="Nguyễn Thị Hoà", id_number="037190001234"),
        "summary": "Đề nghị cấp giấy chứng nhận cơ sở đủ điều kiện sản xuất giống cây trồng",
        "status": DossierStatus.PROCESSING,
        "received_at": T0,
        "due_at": T0 + timedelta(days=10),
        "processing_agency": "Sở Nông nghiệp và Môi trường tỉnh Ninh Bình",
    }


def plain_dossier(code: str = CODE) -> Dossier:
    """The dossier of :func:`full_dossier` with only its main fields (the connector benchmark's message)."""
    return Dossier.model_validate(_plain_fields(code))


def full_dossier(code: str = CODE, **changes: Any) -> Dossier:
    """An online dossier with every canonical field the DVCQG record carries."""
    fields: dict[str, Any] = {
        **_plain_fields(code),
        "receipt_number": "BN-2025-0001",
        "owner": Owner(
            name="Nguyễn Thị Hoà",
            type=OwnerType.CITIZEN,
            id_number="037190001234",
            identities=[Identity(kind=IdentityKind.CCCD, number="037190001234")],
            portal_account_id="TECHID-42",
            verified_with_vneid=True,
        ),
        "contact": Contact(
            email="hoa.nguyen@example.vn", phone="0912345678", fax="02293871234", other="Xóm 3, Gia Viễn"
        ),
        "submitted_at": T0 - timedelta(hours=20),
        "return_method": ReturnMethod.POSTAL,
        "return_info": "Gửi qua bưu chính công ích",
        "note": "Hồ sơ nộp trực tuyến",
        "paid_online": True,
        "has_digitised_components": True,
        "documents": [
            SubmittedDocument(
                id="TL-1",
                name="Đơn đề nghị cấp giấy chứng nhận.pdf",
                component_code="TP-01",
                download_url=f"{HUB}/TL-1",
                digitised=True,
                reuse=1,
                from_national_repository=True,
                replaced_result_code="KQ-OLD-7",
            ),
            SubmittedDocument(
                id="TL-2",
                name="Bản thuyết minh điều kiện cơ sở.pdf",
                component_code="TP-02",
                download_url=f"{HUB}/TL-2",
                deleted=True,
                digitised=False,
                reuse=0,
                from_national_repository=False,
            ),
        ],
        "fees": [
            Fee(
                name="Phí thẩm định",
                code="PHI-TD",
                collection=FeeCollection.AT_RECEIPT,
                amount=Decimal(1500000),
                kind=FeeKind.APPRAISAL,
            )
        ],
        "other_papers": [OtherPaper(name="Bản sao giấy đăng ký kinh doanh", quantity=2, kind="BS")],
        "supplements": [
            SupplementRequest(
                id="BS-1",
                requested_by="Trần Văn Bình",
                content="Bổ sung bản vẽ mặt bằng",
                requested_at=T0 + timedelta(days=2),
                received_by="Lê Thị Cúc",
                received_info="Đã nhận bản vẽ",
                received_at=T0 + timedelta(days=3, hours=2),
                fulfilled=True,
                papers=[OtherPaper(name="Bản vẽ mặt bằng", quantity=1)],
                fees=[
                    Fee(
                        name="Lệ phí bổ sung",
                        collection=FeeCollection.AT_SUPPLEMENT,
                        amount=Decimal(50000),
                        kind=FeeKind.ORDINARY,
                    )
                ],
                old_due_at=T0 + timedelta(days=10),
                new_due_at=T0 + timedelta(days=12),
            )
        ],
        "results": [],
    }
    fields.update(changes)
    return Dossier.model_validate(fields)


def finished_dossier(code: str = CODE) -> Dossier:
    """The same dossier after the result was handed over (status 10, result papers)."""
    return full_dossier(
        code,
        status=DossierStatus.RETURNED,
        finished_at=T0 + timedelta(days=9),
        returned_at=T0 + timedelta(days=9, hours=3),
        results=[
            ResultDocument(
                id="KQ-1",
                name="Giấy chứng nhận cơ sở đủ điều kiện.pdf",
                component_code="TP-KQ",
                result_code="KQ-1.003901",
                download_url=f"{HUB}/KQ-1",
            )
        ],
    )


def steps(count: int = 3) -> list[ProcessingStep]:
    """Processing steps; the first handler name is longer than the 50-character wire limit."""
    out = [
        ProcessingStep(
            handler="Nguyễn Văn Tiếp Nhận — Trung tâm Phục vụ hành chính công tỉnh Ninh Bình",
            position="Chuyên viên",
            department="Bộ phận Một cửa",
            at=T0,
            content="Tiếp nhận hồ sơ",
            status=DossierStatus.RECEIVED,
        )
    ]
    for i in range(1, count):
        out.append(
            ProcessingStep(
                handler=f"Cán bộ thụ lý {i}",
                position="Chuyên viên",
                department="Phòng Trồng trọt",
                at=T0 + timedelta(days=i),
                content=f"Thẩm định hồ sơ bước {i}",
                status=DossierStatus.PROCESSING,
                started_at=T0 + timedelta(days=i - 1),
                step_due_at=T0 + timedelta(days=i + 1),
            )
        )
    return out


def sync_payload(dossier: Dossier, revision: int = 1) -> dict[str, Any]:
    return DossierSyncPayload(dossier=dossier, revision=revision).model_dump(mode="json")


def progress_payload(dossier: Dossier, step_list: list[ProcessingStep], revision: int = 2) -> dict[str, Any]:
    return DossierProgressPayload(
        dossier_code=dossier.code, steps=step_list, dossier=dossier, revision=revision
    ).model_dump(mode="json")


def dossier_code(n: int) -> str:
    return f"000.00.18.H42-250612-{n:04d}"
