"""Intake API for the department's one-stop software (role ``source``; admin passes).

Handlers only translate HTTP to :class:`hub.services.intake.IntakeService` calls: the
service checks the procedure's rules (docs/portal.md §2.3) and writes the change and its
outbound messages in one transaction. The write routes are ``async`` and run that call in
intake's own threads (:mod:`hub.api.offload`). ``Idempotency-Key`` makes a retried request return the
first answer without creating anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Header, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import (
    DatabaseDep,
    FilesDep,
    IntakeDep,
    IntakeGroups,
    SettingsDep,
    allow_reveal,
    get_services,
    require_role,
)
from hub.api.errors import error_responses
from hub.api.limits import reject_control_characters, require_json
from hub.api.offload import WriteThreads
from hub.api.routes.verification import get_verification_policy
from hub.auth.keys import Principal
from hub.dlq.models import MessageSummary
from hub.lookup.qr import lookup_url, qr_png, qr_svg
from hub.services.intake import (
    MAX_BATCH_CHANGES,
    BatchResult,
    IntakeBatch,
    IntakeCall,
    IntakeResult,
    IntakeService,
    SingleChange,
)
from hub.services.privacy import audit_reveal, masked_dossier, masked_view
from hub.services.result_files import inspect_result_paper, store_and_attach
from hub.services.result_papers import ResultPapers
from hub.services.results import (
    IssuedResult,
    ResultAttachment,
    ResultSigningService,
    SignedDraft,
    SignedResult,
)
from schemas.changes import DossierUpsert, DueDateChange, ResultAttach, StatusChange, StepAdd
from schemas.codes import AgencyCode
from schemas.dossier import Dossier
from schemas.errors import FeatureNotConfiguredError
from schemas.text import VnName
from schemas.timefmt import now_vn
from signing.settings import ABBREVIATION_PATTERN
from signing.verification import VerificationPolicy

router = APIRouter(
    prefix="/api/v1", tags=["intake"], responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422)
)

Writer = Annotated[Principal, Depends(require_role("source"))]
Reader = Annotated[Principal, Depends(require_role("source", "officer", "clerk", "technician"))]
#: Officers handle the dossier and may need to call or identify the applicant; technicians and
#: the source software (which holds its own copy) never do.
Officer = Annotated[Principal, Depends(require_role("officer"))]
Clerk = Annotated[Principal, Depends(require_role("clerk"))]
OfficerReveal = Annotated[bool, Depends(allow_reveal("officer"))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Repeat a request safely: the same key returns the first answer.",
    ),
]
JSON_ONLY = [Depends(require_json)]


async def _caller(principal: Writer, idempotency_key: IdempotencyKey = None) -> IntakeCall:
    """What every intake command takes besides its body (:class:`IntakeCall`)."""
    return IntakeCall(actor=principal.name, idempotency_key=idempotency_key, scope=principal.agency_scope)


WriterCall = Annotated[IntakeCall, Depends(_caller)]


@dataclass(frozen=True)
class IntakeWrite:
    """What an intake write route hands to the service: the service, the threads its writes
    run in and their group commit (:mod:`hub.api.offload`), and the call (:class:`IntakeCall`).
    One dependency, not four: FastAPI resolves each dependency of each request anew."""

    intake: IntakeService
    writes: WriteThreads
    groups: IntakeGroups
    call: IntakeCall

    async def single(self, change: SingleChange) -> IntakeResult:
        """``change`` through the group commit; with an ``Idempotency-Key`` alone (the key
        is claimed and remembered in the change's own transaction)."""
        if self.call.get("idempotency_key") is None:
            return await self.groups.write((self.call["actor"], self.call.get("scope")), change)
        return await self.writes.run(self.intake.apply_alone, change, **self.call)


async def _intake_write(
    request: Request, principal: Writer, idempotency_key: IdempotencyKey = None
) -> IntakeWrite:
    services = get_services(request)
    return IntakeWrite(
        services.intake, services.writes, services.groups, await _caller(principal, idempotency_key)
    )


WriterWrite = Annotated[IntakeWrite, Depends(_intake_write)]


class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agency_code: AgencyCode
    day: Annotated[date | None, Field(ge=date(2000, 1, 1), le=date(2099, 12, 31))] = None
    """Receipt day (Vietnam time); today when omitted. Codes carry ``YYMMDD``, so 2000–2099."""
    platform_owner: Annotated[str | None, Field(pattern=r"^[0-9]{2}$")] = None
    """``AA`` digits for the Circular 04/2025 centralised form."""


class CodeAllocation(BaseModel):
    code: str


class StoredResult(BaseModel):
    result: IntakeResult
    file_id: str
    download_url: str
    sha256: str
    size: int
    media_type: str


@router.post(
    "/dossiers",
    summary="Create or update a dossier",
    dependencies=JSON_ONLY,
    responses={201: {"model": IntakeResult}},
)
async def upsert_dossier(command: DossierUpsert, response: Response, write: WriterWrite) -> IntakeResult:
    result = await write.single(SingleChange(command))
    response.status_code = 201 if result.created else 200
    return result


@router.post(
    "/dossiers/batch",
    summary="Apply many changes in one transaction (all or none)",
    description=(
        "Up to "
        f"{MAX_BATCH_CHANGES} changes — `upsert`, `status`, `step` or `result`, each the body of the "
        "single route plus `op` (and `code` where the single route takes it from the path) — "
        "applied in order in one transaction, with the same rules and answers as the single "
        "routes. If one fails, none is stored: the error names it in `details.item` (0-based) "
        "and its message starts with `change <item>:`. A batch over the bound answers 422 "
        "(`changes` too long), a body over `api.max_body_bytes` 413. `Idempotency-Key` covers "
        "the whole batch. Late entries (changes with `late_entry`: work done by hand during an "
        "outage, docs/architecture.md) of one dossier are applied in real-time order."
    ),
    dependencies=JSON_ONLY,
)
async def apply_batch(batch: IntakeBatch, write: WriterWrite) -> BatchResult:
    return await write.writes.run(write.intake.apply_batch, batch, **write.call)


@router.get(
    "/dossiers/{code}",
    summary="Read a dossier as the hub stores it (ID and phone numbers masked)",
    description=(
        "The owner's ID numbers and the phone number are masked (`*********345`, `091*****78`). "
        "An officer or admin may ask for them in clear with `?reveal=pii`; each such answer is "
        "audited (docs/security.md §3)."
    ),
    response_model=Dossier,
)
def get_dossier(
    code: str, intake: IntakeDep, db: DatabaseDep, principal: Reader, reveal: OfficerReveal
) -> Response:
    dossier = intake.get_dossier(code)
    if not reveal:
        return JSONResponse(masked_dossier(dossier))
    audit_reveal(db, actor=principal.name, kind="dossier", target=dossier.code, route="GET dossier")
    return JSONResponse(dossier.model_dump(mode="json"))


@router.post("/dossiers/{code}/status", summary="Change a dossier's status", dependencies=JSON_ONLY)
async def change_status(code: str, change: StatusChange, write: WriterWrite) -> IntakeResult:
    return await write.single(SingleChange(change, code))


@router.post(
    "/dossiers/{code}/due-date",
    summary="Move the due date (Mẫu 04 apology or extension), recorded with the old and new dates",
    dependencies=JSON_ONLY,
)
async def redate(code: str, change: DueDateChange, write: WriterWrite) -> IntakeResult:
    return await write.writes.run(write.intake.redate, code, change, **write.call)


@router.post("/dossiers/{code}/steps", summary="Record a processing step", dependencies=JSON_ONLY)
async def add_step(code: str, command: StepAdd, write: WriterWrite) -> IntakeResult:
    return await write.writes.run(write.intake.add_step, code, command, **write.call)


@router.post("/dossiers/{code}/results", summary="Attach a result paper by URL", dependencies=JSON_ONLY)
async def attach_result(code: str, command: ResultAttach, write: WriterWrite) -> IntakeResult:
    return await write.writes.run(write.intake.attach_result, code, command, **write.call)


@router.post(
    "/dossiers/{code}/results/upload",
    summary="Upload a result file; the hub serves it at the returned download URL",
    status_code=201,
)
def upload_result(
    code: str,
    file: Annotated[UploadFile, File(description="The result paper (PDF, usually signed)")],
    name: Annotated[VnName, Form(description="Name of the result paper (TenGiayTo)")],
    intake: IntakeDep,
    caller: WriterCall,
    files: FilesDep,
    db: DatabaseDep,
    policy: Annotated[VerificationPolicy, Depends(get_verification_policy)],
    result_id: Annotated[str | None, Form(max_length=100)] = None,
    result_code: Annotated[str | None, Form(max_length=100)] = None,
    component_code: Annotated[str | None, Form(max_length=100)] = None,
    signed: Annotated[
        bool, Form(description="Claims a valid signature; the hub's verifier decides what is stored")
    ] = False,
    signer: Annotated[
        str | None,
        Form(
            max_length=64,
            description="Username of the officer who is to sign this unsigned PDF draft "
            "(an enabled account with the officer role); omitted: any officer may take it",
        ),
    ] = None,
) -> StoredResult:
    for field_name, value in (
        ("name", name),
        ("result_id", result_id),
        ("result_code", result_code),
        ("component_code", component_code),
        ("filename", file.filename),
        ("signer", signer),
    ):
        reject_control_characters(field_name, value)
    dossier = intake.get_dossier(code)
    data = file.file.read()
    paper = inspect_result_paper(data, file.content_type, claimed_signed=signed, policy=policy)
    papers = ResultPapers(db)
    assignee = papers.upload_signer(signer, media_type=paper.media_type, signed=paper.signed)
    attached = store_and_attach(
        files,
        intake,
        dossier.code,
        data,
        filename=file.filename or name,
        media_type=paper.media_type,
        name=name,
        result_id=result_id,
        result_code=result_code,
        component_code=component_code,
        signed=paper.signed,
        also=papers.upload_hook(
            dossier.code, name, media_type=paper.media_type, signed=paper.signed, signer=assignee
        ),
        **caller,
    )
    return StoredResult(
        result=attached.intake,
        file_id=attached.stored.id,
        download_url=attached.download_url,
        sha256=attached.stored.sha256,
        size=attached.stored.size,
        media_type=attached.stored.media_type,
    )


class SignResultRequest(BaseModel):
    """The officer's signature on a stored draft result (then the clerk seals it)."""

    model_config = ConfigDict(extra="forbid")

    file_id: Annotated[str, Field(min_length=1, max_length=64)]
    key_id: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    """A personal key listed for the caller; default ``[signing] result_officer_key``."""
    reason: Annotated[str | None, Field(max_length=500)] = None


class SealResultRequest(BaseModel):
    """The clerk's agency seal on an officer-signed result, which is then attached."""

    model_config = ConfigDict(extra="forbid")

    file_id: Annotated[str, Field(min_length=1, max_length=64)]
    name: VnName
    """``TenGiayTo`` of the result paper."""
    key_id: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    """A seal key listed for the caller; default ``[signing] result_agency_key``."""
    result_code: Annotated[str | None, Field(max_length=100)] = None
    component_code: Annotated[str | None, Field(max_length=100)] = None

    def attachment(self) -> ResultAttachment:
        return ResultAttachment(
            name=self.name,
            key_id=self.key_id,
            result_code=self.result_code,
            component_code=self.component_code,
        )


def _results(request: Request) -> ResultSigningService:
    service = get_services(request).results
    if service is None:
        raise FeatureNotConfiguredError(
            "server-held signing keys are not configured (signing.keys, signing.result_*_key)",
            message_vi="chưa cấu hình khóa ký số của đơn vị trên hệ thống",
        )
    return service


@router.post(
    "/dossiers/{code}/results/sign",
    summary="The competent person signs a stored draft result (Decree 30, first signature)",
    status_code=201,
    dependencies=JSON_ONLY,
)
def sign_result(code: str, command: SignResultRequest, request: Request, principal: Officer) -> SignedDraft:
    return _results(request).sign_personal(
        principal, code, command.file_id, key_id=command.key_id, reason=command.reason
    )


@router.post(
    "/dossiers/{code}/results/seal",
    summary="The clerk seals an officer-signed result already numbered and dated (Decree 30, agency "
    "signature) and attaches it",
    status_code=201,
    dependencies=JSON_ONLY,
)
def seal_result(code: str, command: SealResultRequest, request: Request, principal: Clerk) -> SignedResult:
    return _results(request).seal_and_attach(principal, code, command.file_id, **command.attachment())


# --- issuance: number, date, seal (Decree 30/2020 Art. 14, 15, 17; docs/signing.md §13) ------------


class IssueResultRequest(SealResultRequest):
    """The clerk issues an officer-signed result: register number and date, then the seal."""

    document_type: Annotated[str | None, Field(pattern=ABBREVIATION_PATTERN)] = None
    """Abbreviation of the document type in the symbol (``GCN``, ``QĐ``); default
    ``[signing.issuance] document_type``."""


@router.post(
    "/dossiers/{code}/results/issue",
    summary="The clerk issues an officer-signed result: number and date filled in, then sealed and attached",
    status_code=201,
    dependencies=JSON_ONLY,
)
def issue_result(code: str, command: IssueResultRequest, request: Request, principal: Clerk) -> IssuedResult:
    return _results(request).issue_and_attach(
        principal, code, command.file_id, document_type=command.document_type, **command.attachment()
    )


@router.get("/dossiers/{code}/deliveries", summary="Delivery state of each outbound message")
def deliveries(code: str, intake: IntakeDep, _principal: Reader) -> list[MessageSummary]:
    intake.get_dossier(code)
    return [masked_view(summary) for summary in intake.delivery_state(code)]


def _lookup_target(code: str, intake: IntakeDep, settings: SettingsDep) -> str:
    dossier = intake.get_dossier(code)
    return lookup_url(settings.api.public_base_url, dossier.code)


QR_RESPONSES: dict[int | str, dict[str, object]] = {200: {"description": "QR code opening the lookup page"}}


@router.get("/dossiers/{code}/qr.png", summary="QR code of the lookup page (PNG)", responses=QR_RESPONSES)
def qr_code_png(_principal: Reader, target: Annotated[str, Depends(_lookup_target)]) -> Response:
    return Response(qr_png(target), media_type="image/png", headers={"X-Lookup-Url": target})


@router.get("/dossiers/{code}/qr.svg", summary="QR code of the lookup page (SVG)", responses=QR_RESPONSES)
def qr_code_svg(_principal: Reader, target: Annotated[str, Depends(_lookup_target)]) -> Response:
    return Response(qr_svg(target), media_type="image/svg+xml", headers={"X-Lookup-Url": target})


@router.post("/dossier-codes", summary="Allocate the next dossier code", dependencies=JSON_ONLY)
def allocate_code(request: CodeRequest, intake: IntakeDep, principal: Writer) -> CodeAllocation:
    day = request.day or now_vn().date()
    code = intake.next_dossier_code(
        request.agency_code, day, platform_owner=request.platform_owner, scope=principal.agency_scope
    )
    return CodeAllocation(code=code)
