"""The officer's signing desk and the clerk's issuance queue (issue 11; docs/console.md).

What waits for whom is the paper's state in ``result_papers``
(:mod:`hub.services.result_papers`), set by the services in the transaction of the audit row
that records each change:

* a **draft** is an unsigned PDF result paper uploaded for a dossier
  (``POST /dossiers/{code}/results/upload``); it may be assigned to one officer (``signer`` at
  upload, or an admin's reassignment on the draft's page);
* it **waits for an officer** who holds a ``personal`` key bound to their account
  (``principals = ["user:<username>"]``, docs/security.md §10): her desk lists the drafts
  assigned to her first, then the unassigned ones (any officer may take one), never a draft
  assigned to another officer; the key chosen decides whose signature it carries;
* an **approved** paper (the officer's signature, ``*.approved.pdf``) waits for the clerk
  until it is **issued** (number, date, seal).

Signing and issuing go through :class:`hub.services.results.ResultSigningService`, the same
path as the API's ``/results/sign`` and ``/results/issue``: key authority, seal order,
number places, register, audit. The console account signs as principal ``user:<username>``
(its only identity, so an API key's name never grants a console account a key), with the
role the account holds; an account without the role is refused by the service (403,
audited), admins included (separation of duties, docs/signing.md §10.5).

Previews are PNG renderings of the pages (``pdftoppm`` of poppler-utils), cached by the
file's SHA-256 under ``data_dir/previews``.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from hub.auth.keys import Principal
from hub.db.models import ApiRole, AuditEntry
from hub.db.session import Database
from hub.services.intake import IntakeService
from hub.services.result_papers import PaperPage, ResultPaper, ResultPapers, not_waiting
from hub.services.results import IssuedResult, ResultSigningService, SignedDraft
from hub.storage.files import FileStore, StoredFileInfo
from schemas.errors import InvalidInputError, NotFoundError
from schemas.text import VnName
from signing.external import ExternalSigningRequest
from signing.facade import KeyGrant
from signing.settings import ABBREVIATION_PATTERN, KeyPurpose

__all__ = [
    "DeskDocument",
    "PagePreviews",
    "SigningDesk",
    "console_principal",
]

PDF = "application/pdf"
#: Pages rendered for a preview (a result paper has one to a few).
PREVIEW_PAGES = 10
#: Preview resolution (dots per inch): an A4 page is about 580 × 820 pixels.
PREVIEW_DPI = 70
_ISSUE_ACTIONS = ("signing.results.issue", "signing.results.seal")


def console_principal(username: str, roles: Iterable[str], acting_as: ApiRole) -> Principal:
    """The principal a console account signs as: ``user:<username>`` only, with ``acting_as``
    when the account holds that role, else the admin role (which signs nothing, so the
    service refuses it, audited)."""
    held = {str(role) for role in roles}
    role = acting_as if acting_as.value in held else ApiRole.ADMIN
    return Principal(name=f"user:{username}", role=role)


@dataclass(frozen=True, slots=True)
class DeskDocument:
    """One paper on the desk or in the clerk's queue."""

    file_id: str
    dossier_code: str
    name: str
    filename: str
    created_at: datetime
    size: int
    signed_by: str | None = None
    signed_at: datetime | None = None
    source_file_id: str | None = None
    assigned_to: str | None = None


@dataclass(frozen=True, slots=True)
class _Prepared:
    dossier_code: str
    file_id: str


class SigningDesk:
    """Queries and actions of the desk; the signing itself is ``results``'."""

    def __init__(
        self,
        db: Database,
        files: FileStore,
        intake: IntakeService,
        results: ResultSigningService,
        grants: Mapping[str, KeyGrant],
    ) -> None:
        self._db = db
        self._files = files
        self._intake = intake
        self._results = results
        self._grants = grants
        self._papers = ResultPapers(db)

    # --- who holds which key -----------------------------------------------------------------

    def keys_of(self, username: str, purpose: KeyPurpose) -> list[str]:
        """Server-held keys of ``purpose`` bound to the account (``user:<username>``)."""
        identity = f"user:{username}"
        return sorted(
            key_id
            for key_id, grant in self._grants.items()
            if grant.purpose is purpose and identity in grant.principals
        )

    # --- what waits ----------------------------------------------------------------------------

    def awaiting_signature(self, username: str | None = None, *, page: int = 1) -> list[DeskDocument]:
        """Drafts ``username`` may sign: assigned to her first, then unassigned, newest first
        (``None``: every waiting draft, as an admin sees them); one page of the queue."""
        return self.signature_page(username, page=page)[0]

    def signature_page(self, username: str | None, *, page: int = 1) -> tuple[list[DeskDocument], PaperPage]:
        found = self._papers.waiting_for(username, page=page)
        return [self._document(paper) for paper in found.items], found

    def awaiting_issuance(self, *, page: int = 1) -> list[DeskDocument]:
        """Papers the officer signed, waiting for the clerk; newest signature first."""
        return self.issuance_page(page=page)[0]

    def issuance_page(self, *, page: int = 1) -> tuple[list[DeskDocument], PaperPage]:
        found = self._papers.waiting_for_clerk(page=page)
        return [self._approved_document(paper) for paper in found.items], found

    def draft(self, file_id: str, username: str | None = None) -> DeskDocument:
        """One waiting draft as ``username`` may see it (404 when it is not, or no longer,
        waiting, or is assigned to another officer; ``None``: an admin)."""
        return self._document(self._papers.draft(file_id, username))

    def approved(self, file_id: str) -> DeskDocument:
        """One paper in the clerk's queue (404 otherwise)."""
        return self._approved_document(self._papers.approved(file_id))

    def assign(
        self, file_id: str, signer: str | None, *, actor: str, client: str | None = None
    ) -> DeskDocument:
        """An admin (re)assigns waiting draft ``file_id`` (``None``: to no one); audited."""
        return self._document(self._papers.assign(file_id, signer, actor=actor, client=client))

    def _document(self, paper: ResultPaper) -> DeskDocument:
        info = self._info(paper.file_id)
        return DeskDocument(
            file_id=paper.file_id,
            dossier_code=paper.dossier_code,
            name=paper.name,
            filename=info.filename if info else "",
            created_at=paper.created_at,
            size=info.size if info else 0,
            assigned_to=paper.assigned_to,
        )

    def _approved_document(self, paper: ResultPaper) -> DeskDocument:
        approved = paper.approved_file_id or paper.file_id
        info = self._info(approved)
        return DeskDocument(
            file_id=approved,
            dossier_code=paper.dossier_code,
            name=paper.name,
            filename=info.filename if info else "",
            created_at=info.created_at if info else paper.created_at,
            size=info.size if info else 0,
            signed_by=paper.signed_by,
            signed_at=paper.signed_at,
            source_file_id=paper.file_id,
            assigned_to=paper.assigned_to,
        )

    def _info(self, file_id: str) -> StoredFileInfo | None:
        try:
            return self._files.get(file_id)[0]
        except NotFoundError:
            return None

    # --- actions -------------------------------------------------------------------------------

    def sign(self, principal: Principal, file_id: str, key_id: str) -> SignedDraft:
        """The officer's signature on waiting draft ``file_id`` with ``key_id`` (blocking)."""
        paper = self._papers.paper(file_id)  # its state is claimed by the service: 409 if taken
        return self._results.sign_personal(principal, paper.dossier_code, file_id, key_id=key_id)

    def prepare_token(self, principal: Principal, file_id: str, certificate: str) -> ExternalSigningRequest:
        """Her own token's signature, step 1 (blocking): prepare waiting draft ``file_id`` for the
        certificate she pasted (PEM, as ``hub token-sign certificate`` prints it)."""
        document = self.draft(file_id, _account(principal))
        first, *chain = _pem_certificates(certificate)
        return self._results.prepare_personal_external(
            principal, document.dossier_code, file_id, first, chain=chain
        )

    def complete_token(self, principal: Principal, request_id: str, signature_b64: str) -> SignedDraft:
        """Step 2 (blocking): embed the signature her token made over the prepared attributes
        (base64, as ``hub token-sign sign`` prints it); only she may complete her request."""
        prepared = self._prepared(principal.name, request_id)
        try:
            signature = base64.b64decode("".join(signature_b64.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError(
                "the signature is not valid base64", message_vi="Chữ ký không phải base64 hợp lệ"
            ) from None
        return self._results.complete_personal_external(
            principal, prepared.dossier_code, prepared.file_id, request_id, signature=signature
        )

    def _prepared(self, actor: str, request_id: str) -> _Prepared:
        """The draft a request of ``actor`` was prepared for (its audit row), else 404: another
        account's request is as unknown as a missing one."""
        with self._db.sessions() as session:
            details = session.scalar(
                select(AuditEntry.details)
                .where(
                    AuditEntry.action == "signing.results.sign",
                    AuditEntry.actor == actor,
                    AuditEntry.details["request_id"].as_string() == request_id,
                    AuditEntry.details["outcome"].as_string() == "prepared",
                )
                .order_by(AuditEntry.id.desc())
                .limit(1)
            )
        if details is not None:
            return _Prepared(str(details["dossier_code"]), str(details["file_id"]))
        raise NotFoundError(
            "no such signing request of yours (expired, completed or prepared by someone else)",
            message_vi="Không có yêu cầu ký này của bạn (đã hết hạn, đã hoàn tất hoặc do người khác tạo)",
            details={"request_id": request_id[:64]},
        )

    def issue(
        self,
        principal: Principal,
        file_id: str,
        *,
        name: str,
        key_id: str | None = None,
        document_type: str | None = None,
    ) -> IssuedResult:
        """Number, date and seal the officer-signed ``file_id`` and attach it (blocking). The
        name and type are checked before anything else: a refusal takes no number."""
        form = _issue_form(name, document_type)
        document = self.approved(file_id)
        return self._results.issue_and_attach(
            principal,
            document.dossier_code,
            file_id,
            name=form.name,
            key_id=key_id,
            document_type=form.document_type,
        )

    def pdf_file(self, file_id: str) -> tuple[StoredFileInfo, Path]:
        """A stored PDF of a dossier (the previews and reports show only those)."""
        info, path = self._files.get(file_id)
        if info.media_type != PDF or info.dossier_code is None:
            raise not_waiting(file_id)
        return info, path

    # --- internals -----------------------------------------------------------------------------


def _account(principal: Principal) -> str | None:
    """The console account a ``user:<username>`` principal is."""
    return principal.name.removeprefix("user:") if principal.name.startswith("user:") else None


class _IssueForm(BaseModel):
    name: VnName
    document_type: Annotated[str | None, Field(pattern=ABBREVIATION_PATTERN)] = None


def _issue_form(name: str, document_type: str | None) -> _IssueForm:
    try:
        return _IssueForm(name=name.strip(), document_type=(document_type or "").strip() or None)
    except ValidationError as exc:
        fields = sorted({str(error["loc"][0]) for error in exc.errors()})
        raise InvalidInputError(
            f"invalid {' and '.join(fields)}: the name of the result paper (required) and the "
            "document type abbreviation (capital letters, e.g. GCN, QĐ)",
            message_vi="Tên giấy tờ kết quả (bắt buộc) hoặc ký hiệu loại văn bản (chữ in hoa, ví dụ "
            "GCN, QĐ) không hợp lệ",
            details={"fields": fields},
        ) from None


def _pem_certificates(text: str) -> list[bytes]:
    """The DER of each PEM certificate block in ``text`` (hers first, then her token's chain)."""
    from asn1crypto import pem

    data = text.strip().encode("ascii", "replace")
    blocks: list[bytes] = []
    if pem.detect(data):
        try:
            blocks = [
                der for kind, _headers, der in pem.unarmor(data, multiple=True) if kind == "CERTIFICATE"
            ]
        except ValueError:
            blocks = []
    if not blocks or len(blocks) > 10:
        raise InvalidInputError(
            "paste the certificate in PEM form, as hub token-sign certificate prints it",
            message_vi="Hãy dán chứng thư số dạng PEM như lệnh hub token-sign certificate in ra",
            details={"field": "certificate"},
        )
    return blocks


# --- previews ---------------------------------------------------------------------------------


class PagePreviews:
    """PNG images of a stored PDF's pages, rendered once by ``pdftoppm`` and cached by SHA-256."""

    def __init__(self, cache_dir: Path, *, dpi: int = PREVIEW_DPI, max_pages: int = PREVIEW_PAGES) -> None:
        self._dir = cache_dir
        self._dpi = dpi
        self._max = max_pages
        self._lock = threading.Lock()

    def pages(self, info: StoredFileInfo, path: Path) -> list[Path]:
        """The page images of ``path`` (rendered now if not cached), in page order."""
        target = self._dir / info.sha256
        if not target.is_dir():
            with self._lock:
                if not target.is_dir():
                    self._render(path, target)
        return sorted(target.glob("p-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))

    def page(self, info: StoredFileInfo, path: Path, number: int) -> bytes:
        pages = self.pages(info, path)
        if not 1 <= number <= len(pages):
            raise NotFoundError(
                f"page {number} is not previewed (1–{len(pages)})",
                message_vi=f"Không có trang {number} (1–{len(pages)})",
            )
        return pages[number - 1].read_bytes()

    def _render(self, pdf: Path, target: Path) -> None:
        tool = shutil.which("pdftoppm")
        if tool is None:
            raise InvalidInputError(
                "page previews need pdftoppm (Debian package poppler-utils)",
                message_vi="Chưa cài pdftoppm (gói poppler-utils) để xem trước trang",
            )
        self._dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=self._dir, prefix=".render-"))
        try:
            done = subprocess.run(  # fixed tool, our own stored file
                [tool, "-png", "-r", str(self._dpi), "-l", str(self._max), str(pdf), str(work / "p")],
                capture_output=True,
                timeout=60,
                check=False,
            )
            if done.returncode != 0 or not any(work.glob("p-*.png")):
                raise InvalidInputError(
                    "the document's pages cannot be rendered",
                    message_vi="Không hiển thị được các trang của văn bản",
                    details={"reason": done.stderr.decode(errors="replace")[:200]},
                )
            os.replace(work, target)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
