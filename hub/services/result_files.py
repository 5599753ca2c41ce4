"""Result papers served by the hub: store a file, give it a download URL, attach it to a dossier.

The portals fetch ``DuongDanTepTinKetQua`` from the hub (docs/portal.md §3.3,
``DanhSachGiayToKetQua``), so a result paper is stored first and then attached through
:meth:`hub.services.intake.IntakeService.attach_result`, which routes it to the portals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from hub.services.intake import AgencyScope, IntakeResult, IntakeService
from hub.storage.files import FileStore, StoredFileInfo
from schemas.changes import ResultAttach
from schemas.dossier import ResultDocument


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
) -> AttachedResult:
    """Store ``data`` for ``dossier_code`` and attach it as a result paper (id defaults to the file's).

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
