"""``/api/v1/signing``: sign documents with a server-held key, batch-sign stored files, and the
external (officer's own token) prepare/complete flow.

* ``POST /documents`` — multipart ``file`` (PDF) or form field ``file_id`` (a stored file) +
  form fields ``key_id`` and ``options``
  (JSON :class:`signing.models.SignOptions`); answers the signed PDF. The certificate check
  outcome and any warning (e.g. revocation unchecked) are in ``X-Signing-*`` headers.
* ``POST /batch`` — JSON ``{file_ids, key_id, options}``: signs stored files, stores each signed
  PDF as a new file, answers per-file outcomes.
* ``POST /external/prepare`` — multipart ``file``, ``certificate`` (PEM/DER), optional ``chain``
  files and ``options``: answers what the officer's tool must sign.
* ``POST /external/{request_id}/complete`` — JSON ``{signature_b64}`` or ``{cms_b64}``: answers the
  signed PDF.

Who may use which key, the seal order and the audit row of every attempt are
:class:`hub.services.signing_authority.SigningGate`'s (docs/signing.md §10.5): a caller not
listed on the key, or in the wrong role for its purpose, gets 403. Transport only here; the
signing itself is :class:`signing.facade.SigningFacade`.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import FormData, UploadFile

from hub.api.deps import get_db, get_services, get_settings, get_telemetry, require_role
from hub.api.routes.verification import get_verification_policy
from hub.auth.keys import Principal
from hub.services.signing_authority import SigningGate
from schemas.errors import InvalidInputError, PayloadTooLargeError
from signing.external import ExternalSigningRequest
from signing.facade import SigningFacade, StoredSignResult
from signing.models import SignOptions

__all__ = ["get_signing_facade", "get_signing_gate", "require_signer", "router"]

router = APIRouter(prefix="/api/v1/signing", tags=["signing"])

#: Officers sign personally, clerks apply the seal; which key each may use is the key's
#: ``principals`` list (admins pass this check but are listed on no key).
require_signer = require_role("officer", "clerk")

_DEFAULT_LIMIT = 20 * 1024 * 1024


def get_signing_facade(request: Request) -> SigningFacade:
    """``Services.signing``, built from the settings at first use when the app has none."""
    services = get_services(request)
    if services.signing is None:
        settings = get_settings(request)
        services.signing = SigningFacade.from_settings(settings.signing, Path(settings.data_dir))
    return services.signing


def get_signing_gate(request: Request) -> SigningGate:
    """The facade behind the authority and audit checks (one per request; cheap)."""
    return SigningGate(
        get_signing_facade(request),
        get_db(request),
        get_verification_policy(request),
        metrics=get_telemetry(request).metrics,
    )


FacadeDep = Annotated[SigningFacade, Depends(get_signing_facade)]
GateDep = Annotated[SigningGate, Depends(get_signing_gate)]
Signer = Annotated[Principal, Depends(require_signer)]


def _limit(request: Request) -> int:
    settings = getattr(request.app.state, "settings", None)
    return int(settings.api.max_body_bytes) if settings is not None else _DEFAULT_LIMIT


def _options(raw: object) -> SignOptions:
    if raw is None or raw == "":
        return SignOptions()
    if not isinstance(raw, str):
        raise InvalidInputError("'options' must be a JSON string", message_vi="Trường 'options' phải là JSON")
    try:
        return SignOptions.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise InvalidInputError(
            "invalid signing options",
            message_vi="Tùy chọn ký không hợp lệ",
            details={"reason": str(exc)[:300]},
        ) from None


async def _file(form: FormData, name: str, limit: int, *, required: bool = True) -> bytes | None:
    upload = form.get(name)
    if not isinstance(upload, UploadFile):
        if required:
            raise InvalidInputError(
                f"multipart field {name!r} (a file) is required",
                message_vi=f"Thiếu tệp trong trường '{name}' của biểu mẫu",
            )
        return None
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLargeError(
            f"{name} larger than {limit} bytes",
            message_vi=f"Tệp vượt giới hạn {limit} byte",
            details={"limit": limit},
        )
    return data


def _pdf_response(data: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(content=data, media_type="application/pdf", headers=headers or {})


def _ascii(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode()


@router.post("/documents", summary="Sign an uploaded PDF with a server-held key", response_class=Response)
async def sign_document(request: Request, facade: FacadeDep, gate: GateDep, principal: Signer) -> Response:
    limit = _limit(request)
    async with request.form(max_files=1, max_fields=10) as form:
        file_id = form.get("file_id")
        data = await _file(form, "file", limit, required=not isinstance(file_id, str))
        key_id = form.get("key_id")
        options = _options(form.get("options"))
    if not isinstance(key_id, str) or not key_id:
        raise InvalidInputError("form field 'key_id' is required", message_vi="Thiếu trường 'key_id'")
    dossier_code = None
    if data is None:  # a stored document instead of an upload
        assert isinstance(file_id, str)
        files = request.app.state.services.files
        data = await facade.read_stored(files, file_id, limit)
        dossier_code = files.get(file_id)[0].dossier_code
    signed, result = await gate.sign_document(
        principal,
        data,
        key_id,
        options,
        dossier_code=dossier_code,
        file_id=file_id if isinstance(file_id, str) else None,
    )
    headers = {
        "X-Signing-Field": _ascii(result.field_name),
        "X-Signing-Time": result.signed_at.isoformat(),
        "X-Signing-Level": result.level.value,
    }
    if result.certificate is not None:
        headers["X-Signing-Revocation"] = result.certificate.revocation_status
    if result.warnings:
        headers["X-Signing-Warnings"] = ",".join(w.code for w in result.warnings)
    return _pdf_response(signed, headers)


class BatchRequest(BaseModel):
    file_ids: list[str] = Field(min_length=1, max_length=1000)
    key_id: str = Field(min_length=1, max_length=100)
    options: SignOptions = Field(default_factory=SignOptions)


@router.post("/batch", summary="Batch-sign stored files; signed PDFs are stored as new files")
async def sign_batch(
    body: BatchRequest,
    request: Request,
    gate: GateDep,
    principal: Signer,
) -> StoredSignResult:
    files = request.app.state.services.files
    return await gate.sign_stored(principal, files, body.file_ids, body.key_id, body.options)


@router.post("/external/prepare", summary="Prepare a PDF for signing in the officer's own tool")
async def external_prepare(request: Request, gate: GateDep, principal: Signer) -> ExternalSigningRequest:
    limit = _limit(request)
    async with request.form(max_files=6, max_fields=10) as form:
        data = await _file(form, "file", limit)
        cert = await _file(form, "certificate", 64 * 1024)
        chain = [
            await upload.read(64 * 1024 + 1)
            for upload in form.getlist("chain")
            if isinstance(upload, UploadFile)
        ]
        options = _options(form.get("options"))
    assert data is not None
    assert cert is not None
    return await gate.prepare_external(principal, data, cert, options, chain)


class CompleteRequest(BaseModel):
    signature_b64: str | None = Field(default=None, max_length=8192)
    cms_b64: str | None = Field(default=None, max_length=200_000)


def _b64(value: str | None, what: str) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(
            f"{what} is not valid base64", message_vi=f"{what} không phải base64 hợp lệ"
        ) from None


@router.post(
    "/external/{request_id}/complete",
    summary="Embed the officer's signature and return the signed PDF",
    response_class=Response,
)
async def external_complete(
    request_id: str,
    body: CompleteRequest,
    gate: GateDep,
    principal: Signer,
) -> Response:
    signed = await gate.complete_external(
        principal,
        request_id,
        signature=_b64(body.signature_b64, "signature_b64"),
        cms_der=_b64(body.cms_b64, "cms_b64"),
    )
    return _pdf_response(signed)
