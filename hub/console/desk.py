"""The officer's signing desk, the clerk's issuance queue and the verification report (issue 11).

``/console/signing`` (officer): drafts waiting for a signature, each with a preview of its
pages; sign one with the server-held key bound to the account, or select several and sign them
as a batch job whose page refreshes until it ends (``/console/signing/jobs/{id}``).
``/console/issuance`` (clerk): papers the officer signed, waiting for their number, date and
seal; issue one. ``/console/verification/{file_id}`` (officer, clerk): the hub verifier's report
of a stored paper in Vietnamese or English (Circular 15/2025 §2.3.4 fields).

Thin handlers over :class:`hub.services.signing_desk.SigningDesk`, which signs through
:class:`hub.services.results.ResultSigningService` (authority checks, audit, placement: the
API's ``/results/sign`` and ``/results/issue`` path). The officer's own USB token uses the
API's external-signing flow with the ``hub token-sign`` helper (docs/signing.md §14).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Unpack

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.accounts.sessions import ActiveSession
from hub.api.deps import app_service, get_db, get_services, get_settings
from hub.api.errors import http_status_for
from hub.api.limits import client_address
from hub.api.routes.verification import get_verification_policy
from hub.auth.keys import Principal
from hub.console.i18n import MESSAGES
from hub.console.pages import Outcome, error_text, job_page, lang_of, page, problem_page
from hub.console.policy import console_page, get_console
from hub.db.account_tables import AccountRole
from hub.db.models import ApiRole
from hub.services.results import SignedDraft
from hub.services.signing_batches import BatchJobs
from hub.services.signing_desk import PagePreviews, SigningDesk, console_principal
from schemas.errors import FeatureNotConfiguredError, HubError
from signing.settings import KeyPurpose

router = APIRouter(include_in_schema=False)

#: Officers sign drafts; clerks issue what officers signed; both read previews and reports.
OFFICER = console_page("officer")
CLERK = console_page("clerk")
READER = console_page("officer", "clerk")
#: Only an admin assigns a draft to another officer.
ADMIN = console_page("admin")
Officer = Annotated[ActiveSession, Depends(OFFICER)]
Admin = Annotated[ActiveSession, Depends(ADMIN)]
PageNumber = Annotated[int, Query(alias="page", ge=1, le=100_000)]
Clerk = Annotated[ActiveSession, Depends(CLERK)]
Reader = Annotated[ActiveSession, Depends(READER)]


def _desk(request: Request) -> SigningDesk:
    services = get_services(request)
    if services.results is None or services.signing is None:
        raise FeatureNotConfiguredError(
            "server-held signing keys are not configured (signing.keys, signing.result_*_key)",
            message_vi="Chưa cấu hình khóa ký số của đơn vị trên hệ thống",
        )
    return SigningDesk(
        get_db(request), services.files, services.intake, services.results, services.signing.grants
    )


def _previews(request: Request) -> PagePreviews:
    return app_service(
        request, "page_previews", lambda: PagePreviews(get_settings(request).data_dir / "previews")
    )


def _jobs(request: Request) -> BatchJobs:
    return BatchJobs(get_db(request))


def problem(
    request: Request, active: ActiveSession, exc: HubError, *, back: str = "/console/"
) -> HTMLResponse:
    """A refused request as a page with the error's status and message (never a 500), and a
    link back to the page it came from."""
    label = {"/console/signing": "page.console.signing", "/console/issuance": "page.console.issuance"}
    return problem_page(request, active, exc, back=back, back_label=label.get(back, "home.title"))


async def _signers(request: Request) -> dict[str, str]:
    """``user:<username>`` → the account's display name (who signed, as the clerk reads it)."""
    accounts = await run_in_threadpool(get_console(request).accounts.list)
    return {f"user:{account.username}": account.display_name for account in accounts}


def _viewer(active: ActiveSession) -> str | None:
    """Whose drafts the account sees: an officer her own and the unassigned ones; an admin
    who is not an officer every waiting draft (``None``), to assign them."""
    roles = active.account.roles
    if AccountRole.ADMIN in roles and AccountRole.OFFICER not in roles:
        return None
    return active.account.username


async def _officers(request: Request) -> list[tuple[str, str]]:
    """``(username, display name)`` of the enabled officer accounts (the assignment choices)."""
    accounts = await run_in_threadpool(get_console(request).accounts.list)
    return [
        (a.username, a.display_name) for a in accounts if AccountRole.OFFICER in a.roles and not a.disabled
    ]


def _principal(active: ActiveSession, acting_as: ApiRole) -> Principal:
    """The principal the signed-in account signs as (:func:`console_principal`)."""
    return console_principal(active.account.username, active.account.role_names, acting_as)


def _back(request: Request, path: str) -> str:
    return f"{path}?lang=en" if lang_of(request) == "en" else path


# --- the officer's desk -----------------------------------------------------------------------


@router.get("/console/signing", name="console.signing")
async def desk(request: Request, active: Officer, page_number: PageNumber = 1) -> HTMLResponse:
    return await _desk_page(request, active, number=page_number)


async def _desk_page(
    request: Request, active: ActiveSession, *, number: int = 1, **outcome: Unpack[Outcome]
) -> HTMLResponse:
    viewer = _viewer(active)
    try:
        desk = _desk(request)
        documents, paging = await run_in_threadpool(lambda: desk.signature_page(viewer, page=number))
    except HubError as exc:
        return problem(request, active, exc, back="/console/signing")
    keys = desk.keys_of(active.account.username, KeyPurpose.PERSONAL)
    return page(
        request,
        "desk.html",
        active=active,
        documents=documents if keys or viewer is None else [],
        paging=paging,
        keys=keys,
        me=active.account.username,
        **outcome,
    )


@router.get("/console/signing/documents/{file_id}", name="console.signing_document")
async def desk_document(request: Request, file_id: str, active: Officer) -> HTMLResponse:
    return await _document_page(request, file_id, active)


async def _document_page(
    request: Request, file_id: str, active: ActiveSession, *, notice: str | None = None
) -> HTMLResponse:
    try:
        desk = _desk(request)
        can_assign = AccountRole.ADMIN in active.account.roles
        viewer = None if can_assign else _viewer(active)
        document = await run_in_threadpool(desk.draft, file_id, viewer)
        pages = await _page_count(request, desk, file_id)
    except HubError as exc:
        return problem(request, active, exc, back="/console/signing")
    return page(
        request,
        "desk_document.html",
        active=active,
        document=document,
        pages=pages,
        keys=desk.keys_of(active.account.username, KeyPurpose.PERSONAL),
        officers=await _officers(request) if can_assign else [],
        can_assign=can_assign,
        notice=notice,
    )


@router.post("/console/signing/documents/{file_id}/assign", name="console.signing_assign")
async def desk_assign(
    request: Request,
    file_id: str,
    active: Admin,
    signer: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse:
    """An admin assigns a waiting draft to one officer (empty: to no one); audited."""
    try:
        desk = _desk(request)
        await run_in_threadpool(
            lambda: desk.assign(
                file_id,
                signer.strip() or None,
                actor=f"user:{active.account.username}",
                client=client_address(request),
            )
        )
    except HubError as exc:
        return problem(request, active, exc, back="/console/signing")
    return await _document_page(request, file_id, active, notice="desk.assigned")


async def _page_count(request: Request, desk: SigningDesk, file_id: str) -> int:
    info, path = await run_in_threadpool(desk.pdf_file, file_id)
    return len(await run_in_threadpool(_previews(request).pages, info, path))


@router.post("/console/signing/documents/{file_id}/sign", name="console.signing_sign")
async def desk_sign(
    request: Request,
    file_id: str,
    active: Officer,
    key_id: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    return await _signed_page(request, active, lambda desk, principal: desk.sign(principal, file_id, key_id))


@router.post("/console/signing/documents/{file_id}/token", name="console.signing_token_prepare")
async def desk_token_prepare(
    request: Request,
    file_id: str,
    active: Officer,
    certificate: Annotated[str, Form(max_length=20_000)] = "",
) -> HTMLResponse:
    """Her own USB token, step 1: prepare the draft for her certificate; the page shows what
    ``hub token-sign sign`` must sign and takes the signature back."""
    principal = _principal(active, ApiRole.OFFICER)
    try:
        desk = _desk(request)
        document = await run_in_threadpool(desk.draft, file_id, _viewer(active))
        prepared = await run_in_threadpool(desk.prepare_token, principal, file_id, certificate)
    except HubError as exc:
        return problem(request, active, exc, back="/console/signing")
    return page(request, "desk_token.html", active=active, document=document, prepared=prepared)


@router.post("/console/signing/token/{request_id}/complete", name="console.signing_token_complete")
async def desk_token_complete(
    request: Request,
    request_id: str,
    active: Officer,
    signature: Annotated[str, Form(max_length=20_000)] = "",
) -> HTMLResponse:
    """Her own USB token, step 2: the signature her token made, embedded and stored."""
    return await _signed_page(
        request, active, lambda desk, principal: desk.complete_token(principal, request_id, signature)
    )


async def _signed_page(
    request: Request, active: ActiveSession, sign: Callable[[SigningDesk, Principal], SignedDraft]
) -> HTMLResponse:
    """Run one of the officer's signatures (blocking, in a worker thread) as her console
    principal and show the signed paper; a refusal is a problem page back to her desk."""
    principal = _principal(active, ApiRole.OFFICER)
    try:
        desk = _desk(request)
        signed = await run_in_threadpool(sign, desk, principal)
    except HubError as exc:
        return problem(request, active, exc, back="/console/signing")
    return page(request, "desk_signed.html", active=active, signed=signed)


@router.post("/console/signing/batch", name="console.signing_batch")
async def desk_batch(request: Request, active: Officer) -> Response:
    form = await request.form()
    file_ids = [value for value in form.getlist("file_id") if isinstance(value, str)][:200]
    key_id = form.get("key_id")
    principal = _principal(active, ApiRole.OFFICER)
    try:
        desk = _desk(request)
        job = await run_in_threadpool(
            lambda: _jobs(request).start(
                desk,
                principal,
                active.account.username,
                key_id if isinstance(key_id, str) else "",
                file_ids,
            )
        )
    except HubError as exc:
        return await _desk_page(request, active, status=http_status_for(exc), error=error_text(request, exc))
    return RedirectResponse(_back(request, f"/console/signing/jobs/{job.id}"), status_code=303)


@router.get("/console/signing/jobs/{job_id}", name="console.signing_job")
async def desk_job(request: Request, job_id: str, active: Officer) -> HTMLResponse:
    try:
        job = _jobs(request).get(job_id, active.account.username)
    except HubError as exc:
        return problem(request, active, exc, back="/console/signing")
    return job_page(request, active, "desk_job.html", job, running=job.state.value == "running")


@router.post("/console/signing/jobs/{job_id}/cancel", name="console.signing_job_cancel")
async def desk_job_cancel(request: Request, job_id: str, active: Officer) -> Response:
    try:
        _jobs(request).cancel(job_id, active.account.username)
    except HubError as exc:
        return problem(request, active, exc, back="/console/signing")
    return RedirectResponse(_back(request, f"/console/signing/jobs/{job_id}"), status_code=303)


# --- the clerk's queue ------------------------------------------------------------------------


@router.get("/console/issuance", name="console.issuance")
async def issuance(request: Request, active: Clerk, page_number: PageNumber = 1) -> HTMLResponse:
    try:
        desk = _desk(request)
        documents, paging = await run_in_threadpool(lambda: desk.issuance_page(page=page_number))
    except HubError as exc:
        return problem(request, active, exc, back="/console/issuance")
    keys = desk.keys_of(active.account.username, KeyPurpose.SEAL)
    return page(
        request,
        "issuance.html",
        active=active,
        documents=documents if keys else [],
        paging=paging,
        keys=keys,
        signers=await _signers(request),
    )


@router.get("/console/issuance/documents/{file_id}", name="console.issuance_document")
async def issuance_document(request: Request, file_id: str, active: Clerk) -> HTMLResponse:
    try:
        desk = _desk(request)
        document = await run_in_threadpool(desk.approved, file_id)
        pages = await _page_count(request, desk, file_id)
    except HubError as exc:
        return problem(request, active, exc, back="/console/issuance")
    issuance_settings = get_settings(request).signing.issuance
    return page(
        request,
        "issuance_document.html",
        active=active,
        document=document,
        pages=pages,
        keys=desk.keys_of(active.account.username, KeyPurpose.SEAL),
        signers=await _signers(request),
        document_type=issuance_settings.document_type if issuance_settings else "",
    )


@router.post("/console/issuance/documents/{file_id}/issue", name="console.issuance_issue")
async def issuance_issue(
    request: Request,
    file_id: str,
    active: Clerk,
    name: Annotated[str, Form(max_length=500)] = "",
    key_id: Annotated[str, Form(max_length=100)] = "",
    document_type: Annotated[str, Form(max_length=20)] = "",
) -> HTMLResponse:
    principal = _principal(active, ApiRole.CLERK)
    try:
        desk = _desk(request)
        issued = await run_in_threadpool(
            lambda: desk.issue(
                principal,
                file_id,
                name=name,
                key_id=key_id or None,
                document_type=document_type.strip() or None,
            )
        )
        pages = await _page_count(request, desk, issued.file_id)
    except HubError as exc:
        return problem(request, active, exc, back="/console/issuance")
    return page(request, "issuance_done.html", active=active, issued=issued, pages=pages)


# --- previews and the verification report -----------------------------------------------------


@router.get("/console/files/{file_id}/pages/{number}.png", name="console.page_preview")
async def page_preview(request: Request, file_id: str, number: int, active: Reader) -> Response:
    try:
        desk = _desk(request)
        info, path = await run_in_threadpool(desk.pdf_file, file_id)
        data = await run_in_threadpool(_previews(request).page, info, path, number)
    except HubError as exc:
        return problem(request, active, exc)
    return Response(
        data,
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/console/verification/{file_id}", name="console.verification")
async def verification(request: Request, file_id: str, active: Reader) -> HTMLResponse:
    from signing.report import render_report
    from signing.verification import verify_pdf

    policy = get_verification_policy(request)
    try:
        desk = _desk(request)
        info, path = await run_in_threadpool(desk.pdf_file, file_id)
        report = await run_in_threadpool(verify_pdf, path.read_bytes(), policy)
    except HubError as exc:
        return problem(request, active, exc)
    lang = lang_of(request)
    return page(
        request,
        "verification.html",
        active=active,
        info=info,
        report=report,
        text=render_report(report.model_copy(update={"file_name": info.filename}), lang),
        verdict_text=_verdict(report.verdict.value, lang),
    )


def _verdict(value: str, lang: str) -> str:
    return MESSAGES[lang].get(f"verify.{value}", value)
