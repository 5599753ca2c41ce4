"""Result papers served by the hub: store a file, give it a download URL, attach it to a dossier.

The portals fetch ``DuongDanTepTinKetQua`` from the hub (docs/portal.md §3.3,
``DanhSachGiayToKetQua``), so a result paper is stored first and then attached through
:meth:`hub.services.intake.IntakeService.attach_result`, which routes it to the portals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from hub.services.intake import IntakeResult, IntakeService
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
) -> AttachedResult:
    """Store ``data`` for ``dossier_code`` and attach it as a result paper (id defaults to the file's)."""
    stored = files.save(data, filename=filename, media_type=media_type, dossier_code=dossier_code)
    url = files.url_for(stored.id)
    document = ResultDocument(
        id=result_id or stored.id,
        name=name,
        result_code=result_code,
        component_code=component_code,
        download_url=url,
        sha256=stored.sha256,
        signed=signed,
    )
    outcome = intake.attach_result(
        dossier_code, ResultAttach(result=document), actor=actor, idempotency_key=idempotency_key
    )
    return AttachedResult(stored=stored, download_url=url, document=document, intake=outcome)
