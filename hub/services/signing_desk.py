"""The officer's signing desk and the clerk's issuance queue (issue 11; docs/console.md).

What waits for whom is derived from what the hub already stores, not from a second state:

* a **draft** is a PDF result paper of a dossier, stored in the hub's file store and attached
  unsigned (``POST /dossiers/{code}/results/upload``), that nobody has signed yet: no
  ``signing.results.sign`` audit row with outcome ``signed`` names it;
* it **waits for an officer** who holds a ``personal`` key bound to their account
  (``principals = ["user:<username>"]``, docs/security.md §10). The hub does not assign a draft
  to one named officer: every officer with such a key sees the unit's drafts, and the key
  chosen decides whose signature it carries (the authority checks refuse any other key);
* an **approved** paper (the officer's signature, ``*.approved.pdf``) waits for the clerk
  until an issuance (``signing.results.issue`` or ``.seal``, outcome ``signed``) names it.

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
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from hub.auth.keys import Principal
from hub.db.base import utcnow
from hub.db.models import ApiRole, AuditEntry, StoredFile
from hub.db.session import Database
from hub.services.intake import IntakeService
from hub.services.results import IssuedResult, ResultSigningService, SignedDraft
from hub.storage.files import FileStore, StoredFileInfo
from schemas.dossier import Dossier, ResultDocument
from schemas.errors import ConflictError, HubError, InvalidInputError, NotFoundError, PermissionDeniedError
from schemas.text import VnName
from signing.external import ExternalSigningRequest
from signing.facade import KeyGrant
from signing.settings import ABBREVIATION_PATTERN, KeyPurpose

__all__ = [
    "BatchItem",
    "BatchJob",
    "BatchJobs",
    "DeskDocument",
    "PagePreviews",
    "SigningDesk",
    "console_principal",
    "working_on",
]

PDF = "application/pdf"
#: How many stored PDFs the desk looks at (newest first).
SCAN_LIMIT = 500
#: Pages rendered for a preview (a result paper has one to a few).
PREVIEW_PAGES = 10
#: Preview resolution (dots per inch): an A4 page is about 580 × 820 pixels.
PREVIEW_DPI = 70
_ISSUE_ACTIONS = ("signing.results.issue", "signing.results.seal")


#: Files being signed or issued by this process: a second click while the first is still
#: signing is refused instead of signing the paper twice (one API process; docs/console.md).
_BUSY: set[str] = set()
_BUSY_LOCK = threading.Lock()


@contextmanager
def working_on(file_id: str) -> Iterator[None]:
    with _BUSY_LOCK:
        if file_id in _BUSY:
            raise ConflictError(
                "this document is being signed or issued right now",
                message_vi="Văn bản này đang được ký hoặc ban hành",
                details={"file_id": file_id[:40]},
            )
        _BUSY.add(file_id)
    try:
        yield
    finally:
        with _BUSY_LOCK:
            _BUSY.discard(file_id)


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


@dataclass(frozen=True, slots=True)
class _Prepared:
    dossier_code: str
    file_id: str


@dataclass(frozen=True, slots=True)
class _Approval:
    draft_id: str
    approved_id: str
    actor: str
    at: datetime


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

    def awaiting_signature(self) -> list[DeskDocument]:
        """Drafts nobody has signed yet, newest first."""
        approvals = {a.draft_id for a in self._approvals()}
        candidates = [
            info
            for info in self._stored_pdfs()
            if info.id not in approvals and not info.filename.endswith((".approved.pdf", ".signed.pdf"))
        ]
        found: list[DeskDocument] = []
        for info, result in self._unsigned_results(candidates):
            found.append(_document(info, result.name))
        return found

    def awaiting_issuance(self) -> list[DeskDocument]:
        """Papers the officer signed that no issuance names yet, newest first."""
        issued = self._issued_sources()
        found: list[DeskDocument] = []
        names = self._draft_names()
        for approval in sorted(self._approvals(), key=lambda a: a.at, reverse=True):
            if approval.approved_id in issued:
                continue
            try:
                info, _path = self._files.get(approval.approved_id)
            except NotFoundError:
                continue
            found.append(
                _document(
                    info,
                    names.get(approval.draft_id, info.filename),
                    signed_by=approval.actor,
                    signed_at=approval.at,
                    source_file_id=approval.draft_id,
                )
            )
        return found

    def draft(self, file_id: str) -> DeskDocument:
        """One waiting draft (404 when it is not, or no longer, waiting)."""
        for document in self.awaiting_signature():
            if document.file_id == file_id:
                return document
        raise _not_waiting(file_id)

    def approved(self, file_id: str) -> DeskDocument:
        """One paper in the clerk's queue (404 otherwise)."""
        for document in self.awaiting_issuance():
            if document.file_id == file_id:
                return document
        raise _not_waiting(file_id)

    # --- actions -------------------------------------------------------------------------------

    def sign(self, principal: Principal, file_id: str, key_id: str) -> SignedDraft:
        """The officer's signature on waiting draft ``file_id`` with ``key_id`` (blocking)."""
        with working_on(file_id):
            document = self.draft(file_id)
            return self._results.sign_personal(principal, document.dossier_code, file_id, key_id=key_id)

    def prepare_token(self, principal: Principal, file_id: str, certificate: str) -> ExternalSigningRequest:
        """Her own token's signature, step 1 (blocking): prepare waiting draft ``file_id`` for the
        certificate she pasted (PEM, as ``hub token-sign certificate`` prints it)."""
        document = self.draft(file_id)
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
            rows = session.execute(
                select(AuditEntry.details)
                .where(AuditEntry.action == "signing.results.sign", AuditEntry.actor == actor)
                .order_by(AuditEntry.id.desc())
                .limit(SCAN_LIMIT)
            ).all()
        for (details,) in rows:
            if details.get("outcome") == "prepared" and details.get("request_id") == request_id:
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
        with working_on(file_id):
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
            raise _not_waiting(file_id)
        return info, path

    # --- internals -----------------------------------------------------------------------------

    def _stored_pdfs(self) -> list[StoredFileInfo]:
        with self._db.sessions() as session:
            rows = session.scalars(
                select(StoredFile)
                .where(StoredFile.media_type == PDF, StoredFile.dossier_code.is_not(None))
                .order_by(StoredFile.created_at.desc(), StoredFile.id)
                .limit(SCAN_LIMIT)
            ).all()
            return [
                StoredFileInfo(
                    id=row.id,
                    filename=row.filename,
                    media_type=row.media_type,
                    sha256=row.sha256,
                    size=row.size,
                    dossier_code=row.dossier_code,
                    created_at=row.created_at,
                )
                for row in rows
            ]

    def _dossiers(self, codes: Iterable[str]) -> dict[str, Dossier]:
        found: dict[str, Dossier] = {}
        for code in dict.fromkeys(codes):
            try:
                found[code] = self._intake.get_dossier(code)
            except NotFoundError:
                continue
        return found

    def _unsigned_results(self, files: list[StoredFileInfo]) -> list[tuple[StoredFileInfo, ResultDocument]]:
        dossiers = self._dossiers(info.dossier_code for info in files if info.dossier_code)
        pairs = []
        for info in files:
            dossier = dossiers.get(info.dossier_code or "")
            url = self._files.url_for(info.id)
            result = next(
                (r for r in (dossier.results if dossier else []) if str(r.download_url) == url),
                None,
            )
            if result is not None and not result.signed:
                pairs.append((info, result))
        return pairs

    def _draft_names(self) -> dict[str, str]:
        """Names of the result papers the approved files came from, by draft file id."""
        drafts = [info for info in self._stored_pdfs() if not info.filename.endswith(".signed.pdf")]
        return {info.id: result.name for info, result in self._unsigned_results(drafts)}

    def _signed_rows(self, *actions: str) -> list[tuple[str, datetime, dict[str, object]]]:
        with self._db.sessions() as session:
            rows = session.execute(
                select(AuditEntry.actor, AuditEntry.at, AuditEntry.details)
                .where(AuditEntry.action.in_(actions))
                .order_by(AuditEntry.id)
            ).all()
        return [(actor, at, details) for actor, at, details in rows if details.get("outcome") == "signed"]

    def _approvals(self) -> list[_Approval]:
        return [
            _Approval(str(details["file_id"]), str(details["output_file_id"]), actor, at)
            for actor, at, details in self._signed_rows("signing.results.sign")
            if details.get("file_id") and details.get("output_file_id")
        ]

    def _issued_sources(self) -> set[str]:
        return {str(details.get("file_id")) for _actor, _at, details in self._signed_rows(*_ISSUE_ACTIONS)}


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


def _document(info: StoredFileInfo, name: str, **extra: object) -> DeskDocument:
    return DeskDocument(
        file_id=info.id,
        dossier_code=info.dossier_code or "",
        name=name,
        filename=info.filename,
        created_at=info.created_at,
        size=info.size,
        **extra,  # type: ignore[arg-type]  # signed_by, signed_at, source_file_id
    )


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


def _not_waiting(file_id: str) -> NotFoundError:
    return NotFoundError(
        "no such document on the signing desk (already signed, issued, or not a draft result)",
        message_vi="Không có văn bản này trong danh sách chờ (đã ký, đã ban hành hoặc không phải dự "
        "thảo kết quả)",
        details={"file_id": file_id[:40]},
    )


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


# --- batch signing ----------------------------------------------------------------------------


class BatchState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


@dataclass
class BatchItem:
    file_id: str
    name: str
    dossier_code: str
    outcome: str = "pending"
    """pending, signed, failed"""
    error: str | None = None
    output_file_id: str | None = None


@dataclass
class BatchJob:
    """Drafts signed one after another with one key, in a thread of the API process."""

    id: str
    owner: str
    key_id: str
    items: list[BatchItem]
    created_at: datetime = field(default_factory=utcnow)
    state: BatchState = BatchState.RUNNING
    finished_at: datetime | None = None
    cancel_requested: bool = False

    @property
    def processed(self) -> int:
        return sum(1 for item in self.items if item.outcome != "pending")

    @property
    def signed(self) -> int:
        return sum(1 for item in self.items if item.outcome == "signed")


class BatchJobs:
    """The API process's batch-signing jobs (in memory: a restart forgets finished jobs' pages;
    every signature they made is in the audit log and the desk's queues)."""

    def __init__(self, limit: int = 100) -> None:
        self._jobs: dict[str, BatchJob] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def start(
        self,
        desk: SigningDesk,
        principal: Principal,
        owner: str,
        key_id: str,
        file_ids: list[str],
        *,
        runner: Callable[[Callable[[], None]], None] | None = None,
    ) -> BatchJob:
        """Check every file is a waiting draft, then sign them in the background."""
        if not file_ids:
            raise InvalidInputError("select at least one document", message_vi="Hãy chọn ít nhất một văn bản")
        waiting = {d.file_id: d for d in desk.awaiting_signature()}
        missing = [fid for fid in dict.fromkeys(file_ids) if fid not in waiting]
        if missing:
            raise _not_waiting(missing[0])
        if key_id not in desk.keys_of(owner, KeyPurpose.PERSONAL):
            raise PermissionDeniedError(
                f"key {key_id!r} is not bound to your account",
                message_vi=f"Khóa '{key_id}' không gắn với tài khoản của bạn",
                details={"key_id": key_id[:100]},
            )
        items = [
            BatchItem(fid, waiting[fid].name, waiting[fid].dossier_code) for fid in dict.fromkeys(file_ids)
        ]
        job = BatchJob(uuid.uuid4().hex, owner, key_id, items)
        with self._lock:
            while len(self._jobs) >= self._limit:
                self._jobs.pop(next(iter(self._jobs)))
            self._jobs[job.id] = job

        def work() -> None:
            for item in job.items:
                if job.cancel_requested:
                    break
                try:
                    signed = desk.sign(principal, item.file_id, key_id)
                except HubError as exc:
                    item.outcome, item.error = "failed", exc.message_vi
                except Exception as exc:  # noqa: BLE001  # one document's failure ends only it
                    item.outcome, item.error = "failed", f"{type(exc).__name__}: {exc}"[:300]
                else:
                    item.outcome, item.output_file_id = "signed", signed.file_id
            job.state = BatchState.CANCELLED if job.cancel_requested else BatchState.DONE
            job.finished_at = utcnow()

        if runner is not None:
            runner(work)
        else:
            threading.Thread(target=work, name=f"batch-sign-{job.id[:8]}", daemon=True).start()
        return job

    def get(self, job_id: str, owner: str) -> BatchJob:
        """The owner's job (another account's is as unknown as a missing one)."""
        job = self._jobs.get(job_id)
        if job is None or job.owner != owner:
            raise NotFoundError("no such batch-signing job", message_vi="Không có tác vụ ký hàng loạt này")
        return job

    def cancel(self, job_id: str, owner: str) -> BatchJob:
        job = self.get(job_id, owner)
        job.cancel_requested = True
        return job
