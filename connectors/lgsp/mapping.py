"""Canonical dossier ⇄ LGSP wire records (docs/portal.md §4.2 value rules, §9 correspondence).

Value rules (OpenCPS ``OpenCPSConverter``, §4.2):

* dates ``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`` in UTC; read back as Asia/Ho_Chi_Minh aware datetimes;
* ``Status`` 2 when processing is finished (DVCQG 9 or 10), otherwise 1; the exact national
  code 1–10 travels in the hub extension ``NationalStatus``;
* ``ReturnedType`` 0 in person / 1 by post; ``IsReturned`` true once the result is handed over;
* ``DocFees[].FeeType`` is always 4;
* ``Attachments[]`` carry inline base64 on the LGSP. The canonical dossier holds download URLs,
  not bytes, and a connector must not make a delivery depend on a second fetch, so by default
  ``Base64`` stays empty and the hub's download URL goes in ``Url``. A caller that has the bytes
  (or a province that insists on inline content) passes ``attachment_loader``.

Not carried by the LGSP record (lost on a round trip): owner identities (``DinhDanhCHS``), the
portal account id, the VNeID flag, fax, the digitisation flags, fee codes/kinds, result
documents and processing steps (steps travel separately as ``MDocumentTraces``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from connectors.lgsp.models import (
    MAttachment,
    MDocFee,
    MDocPaper,
    MDocumentTraces,
    MSupplementary,
    MSyncDocument,
    UpdateDocumentTracesRequest,
)
from schemas.codes import parse_dossier_code
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
from schemas.errors import InvalidInputError
from schemas.status import DossierStatus
from schemas.timefmt import VN_TZ

#: Supplies inline bytes for an attachment, or ``None`` to send only its URL.
AttachmentLoader = Callable[[SubmittedDocument], bytes | None]

_FINISHED = (DossierStatus.FINISHED, DossierStatus.RETURNED)
#: ``FeeType`` of the OpenCPS LGSP feed (§4.2).
LGSP_FEE_TYPE = 4


def format_lgsp_datetime(value: datetime) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`` in UTC (§4.2); sub-millisecond digits are truncated."""
    if value.tzinfo is None:
        raise InvalidInputError(
            "naive datetime cannot be sent to the LGSP",
            message_vi="không thể gửi thời gian không có múi giờ lên LGSP",
        )
    utc = value.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def _fmt(value: datetime | None) -> str | None:
    return None if value is None else format_lgsp_datetime(value)


def parse_lgsp_datetime(value: str) -> datetime:
    """Parse the §4.2 format; the result is aware, in Vietnam time."""
    try:
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        raise InvalidInputError(
            f"time {value!r} is not yyyy-MM-dd'T'HH:mm:ss.SSS'Z'",
            message_vi=f"thời gian {value!r} không đúng định dạng yyyy-MM-dd'T'HH:mm:ss.SSS'Z'",
        ) from None
    return parsed.replace(tzinfo=UTC).astimezone(VN_TZ)


def _parse(value: str | None) -> datetime | None:
    return None if value is None else parse_lgsp_datetime(value)


def _blank_to_none(value: str | None) -> str | None:
    return value if value else None


def _approval_step(dossier: Dossier) -> ProcessingStep | None:
    for step in reversed(dossier.steps):
        if step.status is DossierStatus.FINISHED:
            return step
    return None


def _fee(fee: Fee) -> MDocFee:
    return MDocFee(FeeName=fee.name, FeeType=LGSP_FEE_TYPE, Price=int(fee.amount))


def _canonical_fee(fee: MDocFee) -> Fee:
    return Fee(name=fee.FeeName, amount=fee.Price)


def _canonical_paper(paper: MDocPaper) -> OtherPaper:
    return OtherPaper(name=paper.PaperName, quantity=paper.Amount, kind=paper.PaperType)


def _paper(paper: OtherPaper) -> MDocPaper:
    return MDocPaper(PaperName=paper.name, Amount=paper.quantity, PaperType=paper.kind)


#: ``SupplementRequest`` field → ``MSupplementary`` field (§9), values as they are ...
_SUPPLEMENT_FIELDS = {
    "id": "SupplementaryId",
    "requested_by": "SendUser",
    "content": "SendComment",
    "received_by": "ReceivedUser",
    "received_info": "ReceivedComment",
    "fulfilled": "IsReceived",
}
#: ... and its times, in the §4.2 format on the wire.
_SUPPLEMENT_TIMES = {
    "requested_at": "SendDate",
    "received_at": "ReceivedDate",
    "old_due_at": "OldDateAppointed",
    "new_due_at": "NewDateAppointed",
}


def _supplement(sup: SupplementRequest) -> MSupplementary:
    return MSupplementary(
        **{wire: getattr(sup, name) for name, wire in _SUPPLEMENT_FIELDS.items()},
        **{wire: _fmt(getattr(sup, name)) for name, wire in _SUPPLEMENT_TIMES.items()},
        Papers=[_paper(p) for p in sup.papers],
        Fees=[_fee(f) for f in sup.fees],
    )


def _canonical_supplement(sup: MSupplementary) -> SupplementRequest:
    return SupplementRequest(
        **{name: getattr(sup, wire) for name, wire in _SUPPLEMENT_FIELDS.items()},
        **{name: _parse(getattr(sup, wire)) for name, wire in _SUPPLEMENT_TIMES.items()},
        papers=[_canonical_paper(p) for p in sup.Papers],
        fees=[_canonical_fee(f) for f in sup.Fees],
    )


def to_sync_document(
    dossier: Dossier,
    *,
    attachment_loader: AttachmentLoader | None = None,
    organ_level1_id: str | None = None,
) -> MSyncDocument:
    """Build ``MSyncDocument`` from the canonical dossier (§4.2, §9)."""
    finished = dossier.status in _FINISHED
    approval = _approval_step(dossier) if finished else None
    attachments = [
        MAttachment(
            AttachmentId=doc.id,
            AttachmentName=doc.name,
            IsDeleted=doc.deleted,
            Base64=attachment_loader(doc) if attachment_loader is not None else None,
            Url=str(doc.download_url) if doc.download_url is not None else None,
            IsVerified=False,
            ComponentCode=doc.component_code,
        )
        for doc in dossier.documents
    ]
    latest_request = max((s.requested_at for s in dossier.supplements), default=None)
    return MSyncDocument(
        DocCode=dossier.code,
        DocTypeCode=dossier.procedure_code,
        DocTypeName=_blank_to_none(dossier.procedure_name),
        CitizenName=dossier.owner.name,
        CitizenInfo=_blank_to_none(dossier.contact.other),
        ApplicantsId=dossier.owner.id_number,
        ApplicantsType=int(dossier.owner.type),
        Address=_blank_to_none(dossier.contact.address),
        Email=dossier.contact.email,
        Phone=dossier.contact.phone,
        Compendium=_blank_to_none(dossier.summary),
        DateReceived=format_lgsp_datetime(dossier.received_at),
        DateAppointed=_fmt(dossier.due_at),
        IsSuccess=finished,
        SuccessDate=_fmt(dossier.finished_at) if finished else None,
        ApproverName=approval.handler if approval else None,
        ApproverPosition=approval.position if approval else None,
        SuccessNote=_blank_to_none(approval.content) if approval else None,
        IsReturned=dossier.status is DossierStatus.RETURNED,
        ReturnedDate=_fmt(dossier.returned_at),
        ReturnNote=_blank_to_none(dossier.return_info),
        ReturnedType=int(dossier.return_method),
        FinishedDate=_fmt(dossier.finished_at),
        Status=2 if finished else 1,
        ProcessingOrganName=_blank_to_none(dossier.processing_agency),
        HasSupplementary=bool(dossier.supplements),
        RequireSupplementaryDate=_fmt(latest_request),
        Note=_blank_to_none(dossier.note),
        Attachments=attachments,
        DocFees=[_fee(f) for f in dossier.fees],
        DocPapers=[_paper(p) for p in dossier.other_papers],
        Supplementaries=[_supplement(sup) for sup in dossier.supplements],
        OrganInchargeIdLevel1=organ_level1_id or dossier.agency_code,
        OrganInchargeName=_blank_to_none(dossier.processing_agency),
        NationalStatus=int(dossier.status),
        Channel=int(dossier.channel),
        ReceivingAgencyCode=dossier.agency_code,
        FieldCode=dossier.field_code,
        FieldName=_blank_to_none(dossier.field_name),
        ReceiptNumber=dossier.receipt_number,
        SubmittedDate=_fmt(dossier.submitted_at),
        RefusedDate=_fmt(dossier.refused_at),
        PaidOnline=dossier.paid_online,
    )


def _status_of(doc: MSyncDocument) -> DossierStatus:
    if doc.NationalStatus is not None:
        return DossierStatus(doc.NationalStatus)
    if doc.IsReturned:
        return DossierStatus.RETURNED
    return DossierStatus.FINISHED if doc.Status == 2 else DossierStatus.PROCESSING


def from_sync_document(doc: MSyncDocument) -> Dossier:
    """Rebuild a canonical dossier from an LGSP record (for lookups and round-trip checks)."""
    agency = doc.ReceivingAgencyCode or doc.OrganInchargeIdLevel1 or parse_dossier_code(doc.DocCode).agency
    try:
        return Dossier(
            code=doc.DocCode,
            agency_code=agency,
            procedure_code=doc.DocTypeCode,
            procedure_name=doc.DocTypeName,
            field_code=doc.FieldCode,
            field_name=doc.FieldName,
            channel=Channel(doc.Channel) if doc.Channel is not None else Channel.IN_PERSON,
            receipt_number=doc.ReceiptNumber,
            owner=Owner(name=doc.CitizenName, type=OwnerType(doc.ApplicantsType), id_number=doc.ApplicantsId),
            contact=Contact(email=doc.Email, phone=doc.Phone, address=doc.Address, other=doc.CitizenInfo),
            summary=doc.Compendium or "",
            status=_status_of(doc),
            submitted_at=_parse(doc.SubmittedDate),
            received_at=parse_lgsp_datetime(doc.DateReceived),
            due_at=_parse(doc.DateAppointed),
            refused_at=_parse(doc.RefusedDate),
            finished_at=_parse(doc.FinishedDate) or _parse(doc.SuccessDate),
            returned_at=_parse(doc.ReturnedDate),
            return_method=ReturnMethod(doc.ReturnedType),
            return_info=doc.ReturnNote,
            processing_agency=doc.ProcessingOrganName or doc.OrganInchargeName,
            note=doc.Note,
            paid_online=bool(doc.PaidOnline),
            documents=[
                SubmittedDocument(
                    id=a.AttachmentId,
                    name=a.AttachmentName,
                    component_code=a.ComponentCode,
                    download_url=a.Url,
                    deleted=a.IsDeleted,
                )
                for a in doc.Attachments
            ],
            fees=[_canonical_fee(f) for f in doc.DocFees],
            other_papers=[_canonical_paper(p) for p in doc.DocPapers],
            supplements=[_canonical_supplement(s) for s in doc.Supplementaries],
        )
    except ValidationError as exc:
        raise InvalidInputError(
            f"LGSP record {doc.DocCode!r} does not make a valid dossier: {exc.errors()[0]['msg']}",
            message_vi=f"bản ghi LGSP {doc.DocCode!r} không tạo được hồ sơ hợp lệ",
        ) from exc


#: ``ProcessingStep`` field → ``MDocumentTraces`` field (§4.2), values as they are ...
_STEP_FIELDS = {"handler": "UserName", "position": "UserPosition", "content": "Comment"}
#: ... and its times, in the §4.2 format on the wire.
_STEP_TIMES = {"at": "DateCreated", "started_at": "StartDate", "step_due_at": "DeadlineDate"}


def to_traces(
    dossier: Dossier,
    steps: Sequence[ProcessingStep],
    *,
    organ_level1_id: str | None = None,
    document_id: str | None = None,
) -> UpdateDocumentTracesRequest:
    """``MDocumentTraces`` records for processing steps (§4.2; DVCQG §3.4 correspondence, §9)."""
    return UpdateDocumentTracesRequest(
        Traces=[
            MDocumentTraces(
                **{wire: getattr(step, name) for name, wire in _STEP_FIELDS.items()},
                **{wire: _fmt(getattr(step, name)) for name, wire in _STEP_TIMES.items()},
                DocumentId=document_id,
                DocCode=dossier.code,
                Status=int(step.status),
                OrganizationInchargeIdLevel1=organ_level1_id or dossier.agency_code,
                OrganizationInchargeName=step.department or _blank_to_none(dossier.processing_agency),
            )
            for step in steps
        ]
    )


def from_traces(request: UpdateDocumentTracesRequest) -> list[ProcessingStep]:
    """Rebuild canonical processing steps from ``MDocumentTraces`` records."""
    return [
        ProcessingStep(
            **{name: getattr(t, wire) for name, wire in _STEP_FIELDS.items()},
            **{name: _parse(getattr(t, wire)) for name, wire in _STEP_TIMES.items()},
            department=t.OrganizationInchargeName,
            status=DossierStatus(t.Status),
        )
        for t in request.Traces
    ]
