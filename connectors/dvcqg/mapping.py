"""Canonical ⇄ DVCQG wire mapping (docs/portal.md §3.3, §3.4, §3.6, §3.7, §9).

Outbound rules:

* times: ``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh, empty string when absent (§3.7);
* booleans: ``IsDeleted`` "True"/"False", the newer flags "0"/"1", ``DuocThanhToanTrucTuyen``
  "1" (paid online) or "3" (§3.6);
* ``TrichYeuHoSo`` cut to under 1000 characters, "Dinhkem" when empty; ``NguoiXuLy`` cut to 50
  characters (Thanh Hóa ``SyncLocalDataToDVCQGService``);
* ``MaDoiTuong`` only for online dossiers (Thanh Hóa, §3.3);
* optional status collapse 5/6/8 → 9 in ``TrangThaiHoSo`` (Thanh Hóa, §3.4; off by default).

What the wire cannot carry (and so does not survive a round trip): ``Contact.address``,
``ResultDocument.sha256``/``signed``, ``portal_account_id`` of non-online dossiers, and the
original status when the collapse option is on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Literal

from connectors.dvcqg.options import DvcqgOptions
from connectors.dvcqg.wire import (
    EMPTY_SUMMARY,
    HANDLER_MAX,
    SUMMARY_MAX,
    WireDatabaseLink,
    WireDocument,
    WireDossier,
    WireFee,
    WireIdentity,
    WirePaper,
    WireProgress,
    WireResult,
    WireSupplement,
)
from schemas.codes import parse_dossier_code
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
from schemas.status import DossierStatus
from schemas.timefmt import from_dvcqg, to_dvcqg

#: Thanh Hóa's collapse of local statuses before sending (§3.4).
_COLLAPSED = {DossierStatus.SUPPLEMENT_REQUESTED, DossierStatus.FINANCIAL_OBLIGATION, DossierStatus.STOPPED}
#: ``DinhDanhCHS`` placeholder number; dropped again on the way in.
_PLACEHOLDER_IDENTITY_NUMBERS = frozenset({"000000001"})


def _true_false(value: bool) -> Literal["True", "False"]:
    return "True" if value else "False"


def _zero_one(value: bool) -> Literal["0", "1"]:
    return "1" if value else "0"


def _opt(value: object) -> str:
    return "" if value is None else str(value)


def _none_if_empty(value: str) -> str | None:
    return value or None


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters (code points, NFC input)."""
    return text if len(text) <= limit else text[:limit]


def wire_summary(summary: str) -> str:
    """``TrichYeuHoSo``: under 1000 characters; "Dinhkem" when empty (§3.3)."""
    text = summary.strip()
    return truncate(text, SUMMARY_MAX) if text else EMPTY_SUMMARY


def wire_status(status: DossierStatus, *, collapse: bool) -> str:
    if collapse and status in _COLLAPSED:
        return str(int(DossierStatus.FINISHED))
    return str(int(status))


# --- canonical → wire ---------------------------------------------------------------------


def _fee_to_wire(fee: Fee) -> WireFee:
    return WireFee(
        name=fee.name,
        code=fee.code or "",
        collection=str(int(fee.collection)),  # type: ignore[arg-type]
        amount=str(int(fee.amount)),
        kind=str(int(fee.kind)),  # type: ignore[arg-type]
    )


def _paper_to_wire(paper: OtherPaper) -> WirePaper:
    return WirePaper(name=paper.name, quantity=str(paper.quantity), kind=paper.kind or "")


def _document_to_wire(doc: SubmittedDocument) -> WireDocument:
    return WireDocument(
        id=doc.id,
        name=doc.name,
        deleted=_true_false(doc.deleted),
        component_code=doc.component_code or "",
        download_url=_opt(doc.download_url),
        digitised="" if doc.digitised is None else _zero_one(doc.digitised),
        reuse=_opt(doc.reuse),  # type: ignore[arg-type]
        from_national_repository=_zero_one(doc.from_national_repository),
        replaced_result_code=doc.replaced_result_code or "",
    )


def _supplement_to_wire(sup: SupplementRequest) -> WireSupplement:
    return WireSupplement(
        id=sup.id,
        requested_by=sup.requested_by,
        content=sup.content,
        requested_at=to_dvcqg(sup.requested_at),
        received_by=sup.received_by or "",
        received_info=sup.received_info or "",
        received_at=to_dvcqg(sup.received_at),
        fulfilled=_zero_one(sup.fulfilled),
        papers=[_paper_to_wire(p) for p in sup.papers],
        fees=[_fee_to_wire(f) for f in sup.fees],
        old_due_at=to_dvcqg(sup.old_due_at),
        new_due_at=to_dvcqg(sup.new_due_at),
    )


def _result_to_wire(res: ResultDocument) -> WireResult:
    return WireResult(
        name=res.name,
        component_code=res.component_code or "",
        id=res.id,
        download_url=_opt(res.download_url),
        result_code=res.result_code or "",
    )


def _identities_to_wire(owner: Owner, options: DvcqgOptions) -> list[WireIdentity]:
    identities = [
        WireIdentity(kind=str(int(i.kind)), number=i.number)  # type: ignore[arg-type]
        for i in owner.identities
    ]
    if not identities and options.identity_fallback is not None:
        kind, number = options.identity_fallback
        identities.append(WireIdentity(kind=kind, number=number))  # type: ignore[arg-type]
    return identities


def dossier_to_wire(
    dossier: Dossier,
    *,
    national_procedure_code: str,
    options: DvcqgOptions,
    procedure_name: str | None = None,
    field_code: str | None = None,
    field_name: str | None = None,
) -> WireDossier:
    """The ``DongBoHoSoMC`` record for ``dossier`` (§3.3).

    ``national_procedure_code`` is the ``MaTTHC`` the mapping table yields (§5.3); the
    procedure and field names fall back to catalogue values when the dossier has none.
    """
    owner, contact = dossier.owner, dossier.contact
    online = dossier.channel is Channel.ONLINE
    return WireDossier(
        code=dossier.code,
        procedure_code=national_procedure_code,
        procedure_name=dossier.procedure_name or procedure_name or "",
        field_code=dossier.field_code or field_code or "",
        field_name=dossier.field_name or field_name or "",
        channel=str(int(dossier.channel)),  # type: ignore[arg-type]
        receipt_number=dossier.receipt_number or "",
        owner_name=owner.name,
        owner_id_number=owner.id_number or "",
        owner_type=str(int(owner.type)),  # type: ignore[arg-type]
        portal_account_id=(owner.portal_account_id or "") if online else "",
        other_info=contact.other or "",
        email=contact.email or "",
        fax=contact.fax or "",
        phone=contact.phone or "",
        summary=wire_summary(dossier.summary),
        received_at=to_dvcqg(dossier.received_at),
        due_at=to_dvcqg(dossier.due_at),
        status=wire_status(dossier.status, collapse=options.collapse_statuses),  # type: ignore[arg-type]
        returned_at=to_dvcqg(dossier.returned_at),
        return_info=dossier.return_info or "",
        return_method=str(int(dossier.return_method)),  # type: ignore[arg-type]
        finished_at=to_dvcqg(dossier.finished_at),
        processing_agency=dossier.processing_agency or "",
        note=dossier.note or "",
        documents=[_document_to_wire(d) for d in dossier.documents],
        fees=[_fee_to_wire(f) for f in dossier.fees],
        other_papers=[_paper_to_wire(p) for p in dossier.other_papers],
        supplements=[_supplement_to_wire(s) for s in dossier.supplements],
        results=[_result_to_wire(r) for r in dossier.results],
        submission_place=options.noi_nop_ho_so,
        has_digitised_components=_zero_one(dossier.has_digitised_components),
        verified_with_vneid=_zero_one(owner.verified_with_vneid),
        paid_online="1" if dossier.paid_online else "3",
        refused_at=to_dvcqg(dossier.refused_at),
        submitted_at=to_dvcqg(dossier.submitted_at),
        identities=_identities_to_wire(owner, options),
        database_links=[WireDatabaseLink(code=c) for c in options.csdl_codes],
    )


def step_to_wire(dossier_code: str, step: ProcessingStep) -> WireProgress:
    """One ``CapNhatTienDoHoSoMC`` record (§3.4); ``NguoiXuLy`` cut to 50 characters."""
    return WireProgress(
        code=dossier_code,
        handler=truncate(step.handler, HANDLER_MAX),
        position=step.position or "",
        at=to_dvcqg(step.at),
        department=step.department or "",
        content=step.content or step.status.label_vi,
        status=str(int(step.status)),  # type: ignore[arg-type]
        started_at=to_dvcqg(step.started_at),
        step_due_at=to_dvcqg(step.step_due_at),
    )


def chunked(items: Iterable[WireProgress], size: int) -> Iterator[list[WireProgress]]:
    """Progress goes out in chunks (Thanh Hóa sends 10 per call, §3.4)."""
    chunk: list[WireProgress] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- wire → canonical ---------------------------------------------------------------------


def _fee_from_wire(fee: WireFee) -> Fee:
    return Fee(
        name=fee.name,
        code=_none_if_empty(fee.code),
        collection=FeeCollection(int(fee.collection)),
        amount=Decimal(fee.amount),
        kind=FeeKind(int(fee.kind)),
    )


def _paper_from_wire(paper: WirePaper) -> OtherPaper:
    return OtherPaper(name=paper.name, quantity=int(paper.quantity), kind=_none_if_empty(paper.kind))


def _document_from_wire(doc: WireDocument) -> SubmittedDocument:
    return SubmittedDocument.model_validate(
        {
            "id": doc.id,
            "name": doc.name,
            "component_code": _none_if_empty(doc.component_code),
            "download_url": _none_if_empty(doc.download_url),
            "deleted": doc.deleted == "True",
            "digitised": None if doc.digitised == "" else doc.digitised == "1",
            "reuse": None if doc.reuse == "" else int(doc.reuse),
            "from_national_repository": doc.from_national_repository == "1",
            "replaced_result_code": _none_if_empty(doc.replaced_result_code),
        }
    )


def _supplement_from_wire(sup: WireSupplement) -> SupplementRequest:
    return SupplementRequest(
        id=sup.id,
        requested_by=sup.requested_by,
        content=sup.content,
        requested_at=from_dvcqg(sup.requested_at),
        received_by=_none_if_empty(sup.received_by),
        received_info=_none_if_empty(sup.received_info),
        received_at=from_dvcqg(sup.received_at),
        fulfilled=sup.fulfilled == "1",
        papers=[_paper_from_wire(p) for p in sup.papers],
        fees=[_fee_from_wire(f) for f in sup.fees],
        old_due_at=from_dvcqg(sup.old_due_at),
        new_due_at=from_dvcqg(sup.new_due_at),
    )


def _result_from_wire(res: WireResult) -> ResultDocument:
    return ResultDocument.model_validate(
        {
            "id": res.id,
            "name": res.name,
            "component_code": _none_if_empty(res.component_code),
            "result_code": _none_if_empty(res.result_code),
            "download_url": _none_if_empty(res.download_url),
        }
    )


def wire_to_dossier(wire: WireDossier, *, agency_code: str | None = None) -> Dossier:
    """The canonical dossier of a wire record (inbound pushes, ``TraCuuHoSo`` answers).

    ``agency_code`` defaults to the receiving agency encoded in ``MaHoSo`` (Circular 01/2018
    Art. 19; Circular 04/2025 Art. 23). Raises ``pydantic.ValidationError`` or
    :class:`schemas.errors.InvalidInputError` on values the canonical model refuses.
    """
    agency = agency_code or parse_dossier_code(wire.code).agency
    identities = [
        Identity(kind=IdentityKind(int(i.kind)), number=i.number)
        for i in wire.identities
        if i.number not in _PLACEHOLDER_IDENTITY_NUMBERS
    ]
    owner = Owner(
        name=wire.owner_name,
        type=OwnerType(int(wire.owner_type)),
        id_number=_none_if_empty(wire.owner_id_number),
        identities=identities,
        portal_account_id=_none_if_empty(wire.portal_account_id),
        verified_with_vneid=wire.verified_with_vneid == "1",
    )
    contact = Contact(
        email=_none_if_empty(wire.email),
        phone=_none_if_empty(wire.phone),
        fax=_none_if_empty(wire.fax),
        other=_none_if_empty(wire.other_info),
    )
    return Dossier(
        code=wire.code,
        agency_code=agency,
        procedure_code=wire.procedure_code,
        procedure_name=_none_if_empty(wire.procedure_name),
        field_code=_none_if_empty(wire.field_code),
        field_name=_none_if_empty(wire.field_name),
        channel=Channel(int(wire.channel)),
        receipt_number=_none_if_empty(wire.receipt_number),
        owner=owner,
        contact=contact,
        summary="" if wire.summary == EMPTY_SUMMARY else wire.summary,
        status=DossierStatus(int(wire.status)),
        submitted_at=from_dvcqg(wire.submitted_at),
        received_at=from_dvcqg(wire.received_at),
        due_at=from_dvcqg(wire.due_at),
        refused_at=from_dvcqg(wire.refused_at),
        finished_at=from_dvcqg(wire.finished_at),
        returned_at=from_dvcqg(wire.returned_at),
        return_method=ReturnMethod(int(wire.return_method)),
        return_info=_none_if_empty(wire.return_info),
        processing_agency=_none_if_empty(wire.processing_agency),
        note=_none_if_empty(wire.note),
        paid_online=wire.paid_online == "1",
        has_digitised_components=wire.has_digitised_components == "1",
        documents=[_document_from_wire(d) for d in wire.documents],
        fees=[_fee_from_wire(f) for f in wire.fees],
        other_papers=[_paper_from_wire(p) for p in wire.other_papers],
        supplements=[_supplement_from_wire(s) for s in wire.supplements],
        results=[_result_from_wire(r) for r in wire.results],
    )


def wire_to_step(wire: WireProgress) -> ProcessingStep:
    return ProcessingStep(
        handler=wire.handler,
        position=_none_if_empty(wire.position),
        department=_none_if_empty(wire.department),
        at=from_dvcqg(wire.at),
        content=wire.content,
        status=DossierStatus(int(wire.status)),
        started_at=from_dvcqg(wire.started_at),
        step_due_at=from_dvcqg(wire.step_due_at),
    )
