"""The records of the one-stop procedure (docs/reports.md §7).

* ``GET /reports/tracking-book?from&to|period[&agency][&format=pdf|csv|xlsx][&sign=true]``: the
  tracking book of a period ("Sổ theo dõi hồ sơ"), one row per dossier received in it.
* ``GET /dossiers/{code}/control-slip.pdf[?sign=true]``: a dossier's control slip ("Phiếu kiểm
  soát quá trình giải quyết hồ sơ").

They name applicants (never their ID numbers): the people who handle dossiers and operators
read them, not the portals. ``sign=true`` adds the agency signature through the signing gate:
only the clerk listed on ``[signing] result_agency_key`` (403 for anyone else, audited).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from hub.api.deps import IntakeDep, app_service, get_db, get_settings, require_role
from hub.api.errors import error_responses
from hub.api.routes.reports import FILE_RESPONSES, XLSX, ReportDays, attachment, file_name
from hub.auth.keys import Principal
from hub.reports.formats import FileFormat
from hub.reports.record_service import RecordService
from schemas.codes import AgencyCode

router = APIRouter(prefix="/api/v1", tags=["reports"], responses=error_responses(401, 403, 404, 422))

Reader = Annotated[
    Principal,
    Depends(
        require_role(
            "officer",
            "clerk",
            "technician",
            note="applicants' names, no ID numbers; sign=true: the clerk on the agency key",
        )
    ),
]
Sign = Annotated[bool, Query(description="Add the agency signature (the clerk on the agency key)")]

PDF = "application/pdf"


def get_records(request: Request) -> RecordService:
    """The app's records service (the layout and calendar files are read once)."""
    return app_service(request, "records", lambda: RecordService(get_db(request), get_settings(request)))


RecordsDep = Annotated[RecordService, Depends(get_records)]


async def _signed(
    request: Request, records: RecordService, principal: Principal, pdf: bytes, number: str, code: str | None
) -> bytes:
    from hub.api.routes.signing import get_signing_gate

    return await records.sign(get_signing_gate(request), principal, pdf, number, dossier_code=code)


@router.get(
    "/reports/tracking-book",
    summary="The tracking book of a period (Sổ theo dõi hồ sơ) as PDF, CSV or XLSX",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def tracking_book(
    request: Request,
    principal: Reader,
    records: RecordsDep,
    window: ReportDays,
    agency: Annotated[AgencyCode | None, Query(description="Only this receiving agency")] = None,
    format: FileFormat = FileFormat.PDF,
    sign: Sign = False,
) -> Response:
    book = await run_in_threadpool(records.book, window, agency_code=agency)
    name = file_name("so-theo-doi-ho-so", window, format.value)
    if format is FileFormat.CSV:
        return attachment(records.book_csv(book), "text/csv; charset=utf-8", name)
    if format is FileFormat.XLSX:
        return attachment(await run_in_threadpool(records.book_xlsx, book), XLSX, name)
    body = await run_in_threadpool(records.book_pdf, book)
    if sign:
        number = f"Sổ theo dõi hồ sơ {window.first:%d/%m/%Y}-{window.last:%d/%m/%Y}"
        body = await _signed(request, records, principal, body, number, None)
    return attachment(body, PDF, name)


@router.get(
    "/dossiers/{code}/control-slip.pdf",
    summary="A dossier's control slip (Phiếu kiểm soát quá trình giải quyết hồ sơ) as PDF",
    response_class=Response,
    responses={200: {"content": {PDF: {}}}},
)
async def control_slip(
    request: Request, code: str, principal: Reader, records: RecordsDep, intake: IntakeDep, sign: Sign = False
) -> Response:
    dossier = await run_in_threadpool(intake.get_dossier, code)
    body = await run_in_threadpool(records.slip_pdf, dossier)
    if sign:
        body = await _signed(
            request, records, principal, body, f"Phiếu kiểm soát {dossier.code}", dossier.code
        )
    return attachment(body, PDF, f"phieu-kiem-soat-{dossier.code}.pdf")
