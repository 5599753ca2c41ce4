"""``POST /api/v1/verification``: verify the signatures of an uploaded PDF.

Send the PDF as ``multipart/form-data`` (field ``file``) or as a raw ``application/pdf`` body.
The answer is the JSON :class:`signing.verification.VerificationReport`; with
``?format=text&lang=vi|en`` it is the human-readable report of Circular 15/2025 §2.3.4
(Vietnamese by default). Bad input answers 4xx with the hub's error body, never 500:
413 above the size limit, 422 for a non-PDF, broken, encrypted or unsigned PDF.

Only transport concerns live here; the verification itself is :mod:`signing.verification`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.datastructures import UploadFile
from starlette.types import Message

from hub.api.deps import require_role
from hub.api.limits import body_too_large, read_body
from hub.auth.keys import Principal
from hub.services.signing_keys import policy_from_settings
from schemas.errors import InvalidInputError
from signing.report import Lang, render_report
from signing.verification import VerificationPolicy, VerificationReport, verify_pdf

__all__ = ["get_verification_policy", "policy_from_settings", "require_verifier", "router"]

router = APIRouter(prefix="/api/v1/verification", tags=["verification"])

#: Officers, clerks (văn thư checking incoming documents) and technicians may verify.
require_verifier = require_role("officer", "clerk", "technician")

#: Room for multipart boundaries and headers on top of the PDF size limit.
_MULTIPART_OVERHEAD = 64 * 1024


def get_verification_policy(request: Request) -> VerificationPolicy:
    """``app.state.verification_policy`` if the app set one, else built once from settings."""
    policy = getattr(request.app.state, "verification_policy", None)
    if isinstance(policy, VerificationPolicy):
        return policy
    settings = getattr(request.app.state, "settings", None)
    policy = policy_from_settings(
        settings.signing if settings is not None else None,
        max_pdf_bytes=settings.api.max_body_bytes if settings is not None else None,
    )
    request.app.state.verification_policy = policy
    return policy


async def _pdf_from_request(request: Request, limit: int) -> tuple[bytes, str | None]:
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        body = await read_body(request, limit + _MULTIPART_OVERHEAD)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        form_request = Request(request.scope, receive=replay)
        async with form_request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidInputError(
                    "multipart upload must carry the PDF in a file field named 'file'",
                    message_vi="Cần gửi tệp PDF trong trường 'file' của biểu mẫu",
                )
            data = await upload.read(limit + 1)
            if len(data) > limit:
                raise body_too_large(len(data), limit)
            return data, upload.filename
    if content_type.startswith(("application/pdf", "application/octet-stream")):
        return await read_body(request, limit), None
    raise InvalidInputError(
        "send the PDF as multipart/form-data (field 'file') or as an application/pdf body",
        message_vi="Cần gửi tệp PDF dạng multipart/form-data (trường 'file') hoặc application/pdf",
        details={"content_type": content_type or None},
    )


@router.post(
    "",
    summary="Verify the digital signatures of a PDF (Circular 15/2025 §2.3.4 report)",
    response_model=None,
)
async def verify_upload(
    request: Request,
    policy: Annotated[VerificationPolicy, Depends(get_verification_policy)],
    _principal: Annotated[Principal, Depends(require_verifier)],
    output_format: Annotated[
        Literal["json", "text"], Query(alias="format", description="json (default) or text")
    ] = "json",
    lang: Annotated[Lang, Query(description="text report language")] = "vi",
) -> Response:
    data, file_name = await _pdf_from_request(request, policy.max_pdf_bytes)
    report = await anyio.to_thread.run_sync(lambda: verify_pdf(data, policy, file_name=file_name))
    if output_format == "text":
        return PlainTextResponse(render_report(report, lang), media_type="text/plain; charset=utf-8")
    return JSONResponse(report.model_dump(mode="json"))


@router.get("/schema", summary="JSON schema of the verification report (stable field names)")
async def report_schema(_principal: Annotated[Principal, Depends(require_verifier)]) -> JSONResponse:
    return JSONResponse(VerificationReport.model_json_schema())
