"""Result papers served by the hub: store a file, give it a download URL, attach it to a dossier.

The portals fetch ``DuongDanTepTinKetQua`` from the hub (docs/portal.md §3.3,
``DanhSachGiayToKetQua``), so a result paper is stored first and then attached through
:meth:`hub.services.intake.IntakeService.attach_result`, which routes it to the portals.

An uploaded paper is judged by its content, not by what the client declares
(:func:`inspect_result_paper`, docs/signing.md §10.6): PDF, PNG or JPEG by magic bytes; a PDF
must parse (page tree included); and it is marked ``signed`` only when the hub's verifier
finds at least one signature and judges them valid (Circular 15/2025 §2.3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from hub.services.intake import AgencyScope, IntakeResult, IntakeService
from hub.storage.files import FileStore, StoredFileInfo
from schemas.changes import ResultAttach
from schemas.dossier import ResultDocument
from schemas.errors import InvalidInputError, UnsupportedMediaTypeError


@dataclass(frozen=True, slots=True)
class AttachedResult:
    stored: StoredFileInfo
    download_url: str
    document: ResultDocument
    intake: IntakeResult


def store_and_attach(
    files: FileStore,
    intake: IntakeService,
    dossier_code: str,
    data: bytes | BinaryIO | Iterable[bytes],
    *,
    filename: str,
    media_type: str,
    name: str,
    actor: str,
    result_id: str | None = None,
    result_code: str | None = None,
    component_code: str | None = None,
    signed: bool = False,
    idempotency_key: str | None = None,
    scope: AgencyScope = None,
    also: Callable[[Session, StoredFileInfo], None] | None = None,
) -> AttachedResult:
    """Store ``data`` for ``dossier_code`` and attach it as a result paper (id defaults to the file's);
    ``also`` writes more rows about the stored file in the attachment's transaction.

    A repeat under the same ``idempotency_key`` must name the same content (its SHA-256), not
    the file id each attempt stores, and gets the first answer and file. A file this call stored
    is removed when the attachment fails or an earlier request answers it: nothing is left behind.
    """
    stored = files.save(data, filename=filename, media_type=media_type, dossier_code=dossier_code)

    def document_for(file: StoredFileInfo) -> ResultDocument:
        return ResultDocument(
            id=result_id or file.id,
            name=name,
            result_code=result_code,
            component_code=component_code,
            download_url=files.url_for(file.id),
            sha256=file.sha256,
            signed=signed,
        )

    document = document_for(stored)
    upload = {
        "code": dossier_code,
        "upload": {
            **document.model_dump(mode="json", exclude={"id", "download_url"}),
            "id": result_id,
            "filename": stored.filename,
            "media_type": stored.media_type,
        },
    }
    try:
        outcome = intake.attach_result(
            dossier_code,
            ResultAttach(result=document),
            actor=actor,
            idempotency_key=idempotency_key,
            scope=scope,
            idempotency_body=upload if idempotency_key else None,
            also=None if also is None else lambda session: also(session, stored),
        )
    except BaseException:
        if stored.fresh:
            files.discard(stored.id)
        raise
    if idempotency_key and outcome.duplicate and stored.fresh:
        # an earlier request with this key stored the same content: answer with its file
        files.discard(stored.id)
        stored = files.first_copy(stored)
        document = document_for(stored)
    return AttachedResult(
        stored=stored, download_url=files.url_for(stored.id), document=document, intake=outcome
    )


#: Result paper types the hub serves, by their leading bytes (ISO 32000-1 §7.5.2 ``%PDF-``,
#: PNG signature RFC 2083 §12.11, JPEG SOI marker).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


@dataclass(frozen=True, slots=True)
class ResultPaper:
    """What the content of an uploaded result paper is, as the hub found it."""

    media_type: str
    signed: bool
    verdict: str | None = None


def sniff_media_type(data: bytes) -> str | None:
    head = data[:16]
    return next((media for magic, media in _MAGIC if head.startswith(magic)), None)


def inspect_result_paper(
    data: bytes, declared_media_type: str | None, *, claimed_signed: bool, policy: Any
) -> ResultPaper:
    """Sniff, parse and verify an uploaded result paper (blocking: call from a worker thread).

    Refuses (415) content that is not a PDF, PNG or JPEG or that contradicts the declared type,
    (422) a PDF that does not parse, and (422) a ``signed`` claim the verifier does not confirm.
    ``policy`` is the :class:`signing.verification.VerificationPolicy` to judge signatures by.
    """
    from signing.service import open_pdf  # the PDF stack loads only for uploads
    from signing.verification import Verdict, verify_pdf

    media_type = sniff_media_type(data)
    declared = (declared_media_type or "").split(";")[0].strip().lower()
    if media_type is None or (declared not in _GENERIC_TYPES and declared != media_type):
        raise UnsupportedMediaTypeError(
            f"a result paper must be a PDF, PNG or JPEG file matching its declared type "
            f"(declared {declared or 'none'}, content {media_type or 'unknown'})",
            message_vi="Giấy tờ kết quả phải là tệp PDF, PNG hoặc JPEG đúng với kiểu đã khai báo",
            details={"declared": declared or None, "detected": media_type},
        )
    verdict: str | None = None
    if media_type == "application/pdf":
        open_pdf(data)  # InvalidPdfError (422) for a broken, encrypted or page-less PDF
        try:
            report = verify_pdf(data, policy)
        except InvalidInputError as exc:
            if exc.code != "unsigned_pdf":
                raise
        else:
            verdict = report.verdict.value
            if report.signature_count > 0 and report.verdict is Verdict.VALID:
                return ResultPaper(media_type, True, verdict)
    if claimed_signed:
        raise InvalidInputError(
            "the paper is declared signed but the hub's verifier finds no valid signature",
            message_vi="Giấy tờ được khai là đã ký số nhưng hệ thống không xác thực được chữ ký số hợp lệ",
            details={"reason": "signature_not_verified", "verdict": verdict},
        )
    return ResultPaper(media_type, False, verdict)
