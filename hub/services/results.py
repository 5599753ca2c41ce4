"""Sign a dossier's result paper with two signatures, each by its holder, and attach it.

Decree 30/2020 (Điều 5, 13–15, 17, 32; Appendix I) needs two signatures on an issued
e-document, in this order: the competent person's personal signature (blue signature image in
box 7c; here a DocMDP P=2 certification at PAdES B-T, so the number/date and the seal may
follow), then the agency signature (red seal over the left third of the personal one, box 8;
PAdES B-LTA so it stays verifiable for the archive, docs/signing.md §2.2). Each signature is
preceded by the certificate check of Decree 68/2024 Art. 29/31 (validity, path, revocation).

The officer signs a stored draft with their personal key
(:meth:`ResultSigningService.sign_personal`, stored, not attached); the clerk (*văn thư*) who
holds the agency key seals that file (:meth:`ResultSigningService.seal_and_attach`) once the
hub's verifier finds the officer's signature valid, stores the sealed PDF
(:class:`hub.storage.files.FileStore`, served at the hub's download URL) and attaches it with
:meth:`hub.services.intake.IntakeService.attach_result`, so the dossier's next
``DanhSachGiayToKetQua`` carries ``DuongDanTepTinKetQua`` and the SHA-256 (Decree 30/2020
Art. 32(2), 33(2); docs/signing.md §10.5). A refused signature (wrong principal or key,
expired, revoked, untrusted certificate, damaged PDF, TSA down …) stores nothing and attaches
nothing; every attempt is audited.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Required, TypedDict, Unpack

from pydantic import BaseModel, Field

from hub.auth.keys import Principal
from hub.config import Settings
from hub.db.session import Database
from hub.services.intake import IntakeResult, IntakeService
from hub.services.issuance import (
    DocumentRegister,
    IssuanceSpec,
    IssuedNumber,
    number_details,
    numbered,
    require_filled_places,
    require_open_places,
)
from hub.services.result_files import store_and_attach
from hub.services.result_papers import ResultPapers
from hub.services.signing_authority import (
    SealCheck,
    SigningAttempt,
    SigningAudit,
    authorize_external,
    authorize_key,
    external_key_id,
    sha256_hex,
)
from hub.services.signing_keys import key_images, policy_from_settings
from hub.storage.files import FileStore, StoredFileInfo
from schemas.dossier import Dossier, ResultDocument
from schemas.errors import (
    ConfigurationError,
    ConflictError,
    FeatureNotConfiguredError,
    HubError,
    InvalidInputError,
    PermissionDeniedError,
    RetryableError,
)
from signing.external import ExternalSigningRequest, ExternalSigningService
from signing.facade import SigningFacade
from signing.issuance import OPEN_AFTER_SIGNATURE, NumberPlaces, ensure_number_places
from signing.models import SignatureLevel, SignOptions, SignResult, SignRole
from signing.settings import IssuanceSettings, KeyPurpose
from signing.signer_service import SigningService

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.telemetry.metrics import HubMetrics

__all__ = [
    "IssuedResult",
    "ResultAttachment",
    "ResultSigningService",
    "SignedDraft",
    "SignedResult",
    "SignerSummary",
]

#: The largest stored paper signed (``max_bytes``).
MAX_PAPER_BYTES = 20 * 1024 * 1024
#: Stages of the signing sequence, as named in errors (``details["stage"]``).
_STAGE_VI = {"officer": "chữ ký của người có thẩm quyền", "agency": "chữ ký số của cơ quan (con dấu)"}


class SignerSummary(BaseModel):
    """One signature applied to the result paper."""

    role: SignRole
    key_id: str
    field_name: str
    level: SignatureLevel
    signed_at: datetime
    subject: str | None = None
    revocation_status: str | None = None
    warnings: list[str] = Field(default_factory=list)


class SignedResult(BaseModel):
    """What :meth:`ResultSigningService.seal_and_attach` stored and attached."""

    dossier_code: str
    source_file_id: str
    file_id: str
    download_url: str
    sha256: str
    size: int
    result: ResultDocument
    intake: IntakeResult
    signatures: list[SignerSummary]


class IssuedResult(SignedResult):
    """What :meth:`ResultSigningService.issue_and_attach` stored and attached: the sealed paper
    with the register number and issue date written in (Decree 30/2020 Art. 15)."""

    document_number: IssuedNumber


class SignedDraft(BaseModel):
    """What :meth:`ResultSigningService.sign_personal` stored: the draft with the competent
    person's signature, not attached yet; the clerk seals it next (``next_step: seal``)."""

    dossier_code: str
    source_file_id: str
    file_id: str
    sha256: str
    size: int
    signature: SignerSummary
    next_step: str = "seal"


class ResultAttachment(TypedDict, total=False):
    """How a sealed paper is attached (:meth:`ResultSigningService.seal_and_attach`,
    :meth:`~ResultSigningService.issue_and_attach`): its ``TenGiayTo``; the seal key (default
    ``[signing] result_agency_key``); the result's id (default ``KQ-<file_id>``), code and
    component code in ``DanhSachGiayToKetQua``; the largest stored file accepted."""

    name: Required[str]
    key_id: str | None
    result_id: str | None
    result_code: str | None
    component_code: str | None
    max_bytes: int


@dataclass(frozen=True, slots=True)
class _Sealing:
    """A paper the clerk is sealing: the audited attempt, the dossier, the officer-signed file
    and its bytes, whether its workflow row is claimed, and how it is attached (``result_id``
    resolved)."""

    attempt: SigningAttempt
    dossier: Dossier
    info: StoredFileInfo
    source: bytes
    claimed: bool
    result_id: str
    attachment: ResultAttachment


class ResultSigningService:
    """The two signatures of a result paper, each by its own holder (Decree 30/2020 Art. 13(7),
    17, 32(2), 33(2)): the officer signs (:meth:`sign_personal`), then the clerk seals, which
    stores and attaches the paper (:meth:`seal_and_attach`). Keys, principals and the audit
    row of each attempt follow :mod:`hub.services.signing_authority`."""

    def __init__(
        self,
        facade: SigningFacade,
        files: FileStore,
        intake: IntakeService,
        *,
        officer_key: str,
        agency_key: str,
        audit: SigningAudit,
        seal_check: SealCheck,
        images: Mapping[str, bytes] | None = None,
        location: str | None = None,
        issuance: IssuanceSettings | None = None,
        register: DocumentRegister | None = None,
        places: NumberPlaces | None = None,
        papers: ResultPapers | None = None,
    ) -> None:
        if officer_key == agency_key:
            raise ConfigurationError(
                "the officer's and the agency's signatures need two different keys",
                message_vi="Chữ ký của người có thẩm quyền và của cơ quan phải dùng hai khóa khác nhau",
            )
        self._facade = facade
        self._files = files
        self._intake = intake
        self._officer_key = officer_key
        self._agency_key = agency_key
        self._audit = audit
        self._seal_check = seal_check
        self._images = dict(images or {})
        self._location = location
        self._issuance = issuance
        self._register = register
        self._places = places or NumberPlaces()
        self._papers = papers

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        facade: SigningFacade,
        files: FileStore,
        intake: IntakeService,
        db: Database,
        *,
        register: DocumentRegister | None = None,
        metrics: HubMetrics | None = None,
    ) -> ResultSigningService | None:
        """The service for ``[signing] result_officer_key`` / ``result_agency_key``; ``None``
        when either is unset. ``register`` defaults to the database's document register."""
        signing = settings.signing
        if not (signing.result_officer_key and signing.result_agency_key):
            return None
        return cls(
            facade,
            files,
            intake,
            officer_key=signing.result_officer_key,
            agency_key=signing.result_agency_key,
            audit=SigningAudit(db, metrics=metrics),
            seal_check=SealCheck(policy_from_settings(signing)),
            images=key_images(signing),
            issuance=signing.issuance,
            register=register or DocumentRegister(db),
            places=NumberPlaces(font_path=signing.font_path),
            papers=ResultPapers(db),
        )

    # --- public -------------------------------------------------------------------------------

    @property
    def files(self) -> FileStore:
        """The file store signed papers are saved to (and drafts are read from)."""
        return self._files

    def sign_personal(
        self,
        principal: Principal,
        dossier_code: str,
        file_id: str,
        *,
        key_id: str | None = None,
        reason: str | None = None,
        max_bytes: int = MAX_PAPER_BYTES,
    ) -> SignedDraft:
        """The competent person's signature on stored draft ``file_id`` (blocking call): a
        DocMDP P=2 certification at PAdES B-T, so the number/date and the seal may follow
        (Decree 30/2020 Art. 13(7), 14–15). Stored as a new file of the dossier, not attached.
        The number and date places are added first when the draft has none, and her signature
        locks every other form field (FieldMDP), so only they and the seal may follow.

        ``key_id`` defaults to ``[signing] result_officer_key``; ``principal`` must be an officer
        listed on that key (403 otherwise, audited).
        """
        key_id = key_id or self._officer_key
        dossier, info, source = self._draft(dossier_code, file_id, max_bytes)
        attempt = _personal_attempt(principal, key_id, source, dossier.code, file_id)
        options = self._personal_options(dossier.code, reason)
        self._authorize(attempt, principal, options.role)
        self._claim_signature(attempt, principal)
        try:
            signed, result = self._sign(attempt, self._with_places(attempt, source), options)
            return self._store_approved(
                attempt, principal, info, signed, _summary(SignRole.PERSONAL, key_id, result)
            )
        except BaseException:
            self._release_signature(file_id)
            raise

    def seal_and_attach(
        self, principal: Principal, dossier_code: str, file_id: str, **attachment: Unpack[ResultAttachment]
    ) -> SignedResult:
        """The agency seal on stored file ``file_id`` (blocking call), which must already carry
        the competent person's valid signature and its number and issue date (written by the
        agency's document system; the hub's own numbering is :meth:`issue_and_attach`); then
        store and attach it for delivery.

        PAdES B-LTA, so it stays verifiable for the archive (docs/signing.md §2.2).
        ``principal`` must be the clerk listed on the seal key (default ``[signing]
        result_agency_key``). The result id defaults to ``KQ-<file_id>``: sealing the same file
        twice is refused (:class:`ConflictError`) instead of storing a second copy.
        """
        with self._sealing(
            principal, "results.seal", dossier_code, file_id, attachment, require_filled_places
        ) as job:
            stored = self._seal_and_store(job, principal, job.source)
            self._record_sealed(job, principal, stored)
        return stored

    def issue_and_attach(
        self,
        principal: Principal,
        dossier_code: str,
        file_id: str,
        *,
        document_type: str | None = None,
        **attachment: Unpack[ResultAttachment],
    ) -> IssuedResult:
        """Issue officer-signed file ``file_id`` (blocking call), in Decree 30/2020 order
        (Art. 14, 15, 17; docs/signing.md §13): take the next number of the agency's register
        for the year, write the symbol and the place-and-date line into the document's
        number and date places (a permitted fill after her signature), then seal (B-LTA),
        store and attach.

        Everything that can be checked is checked before a number is taken (clerk on the seal
        key, the officer's valid signature, the places present and empty, not attached yet);
        a failure after that voids the number in the register (never reused) and stores
        nothing. Each step is audited (``signing.results.issue``: refused | numbered | signed
        | failed, voided).
        """
        settings = self._issuance_settings()
        assert self._register is not None  # _issuance_settings() checked it
        with self._sealing(
            principal, "results.issue", dossier_code, file_id, attachment, require_open_places
        ) as job:
            attempt = job.attempt
            spec = IssuanceSpec(
                agency_code=settings.agency_code or job.dossier.agency_code,
                agency_abbreviation=settings.agency_abbreviation,
                document_type=document_type or settings.document_type,
                place=settings.place,
            )
            with numbered(
                self._register,
                job.source,
                spec,
                actor=principal.name,
                source_sha256=attempt.document_sha256,
                dossier_code=job.dossier.code,
                places=self._places,
                on_number=lambda n: self._audit.record(attempt, "numbered", **number_details(n)),
                on_void=lambda n, why: self._audit.record(
                    attempt, "voided", reason=why[:300], **number_details(n)
                ),
            ) as document:
                number = document.number
                stored = self._seal_and_store(job, principal, document.data)
                document.issued(file_id=stored.file_id, sha256=stored.sha256)
            self._record_sealed(job, principal, stored, **number_details(number))
        return IssuedResult(**stored.model_dump(), document_number=number)

    def prepare_personal_external(
        self,
        principal: Principal,
        dossier_code: str,
        file_id: str,
        certificate: bytes,
        *,
        chain: list[bytes] | None = None,
        max_bytes: int = MAX_PAPER_BYTES,
    ) -> ExternalSigningRequest:
        """The competent person's signature with her own token (blocking call): the draft gets
        its number and date places and is prepared exactly as :meth:`sign_personal` would sign
        it (DocMDP P=2 certification, FieldMDP lock, B-T), but the key stays on the token; her
        tool signs the returned attributes and :meth:`complete_personal_external` embeds them
        (docs/signing.md §14). Audited as ``signing.results.sign``, outcome ``prepared``."""
        dossier, _info, source = self._draft(dossier_code, file_id, max_bytes)
        attempt = _personal_attempt(principal, external_key_id(certificate), source, dossier.code, file_id)
        try:
            authorize_external(principal, SignRole.PERSONAL)
        except HubError as exc:
            self._audit.refused(attempt, exc)
            raise
        data = self._with_places(attempt, source)
        external = ExternalSigningService(
            self._service(self._own_personal_key(principal), SignRole.PERSONAL),
            self._facade.external.store,
            ttl=self._facade.external.ttl,
        )
        try:
            prepared = asyncio.run(
                external.prepare(
                    data,
                    certificate,
                    self._personal_options(dossier.code),
                    chain_der=chain,
                    owner=principal.name,
                )
            )
        except HubError as exc:
            self._audit.failed(attempt, exc)
            raise _refused(exc, "officer", dossier.code, attempt.key_id) from exc
        except BaseException as exc:
            self._audit.failed(attempt, exc)
            raise
        subject = prepared.certificate.subject if prepared.certificate is not None else None
        self._audit.record(attempt, "prepared", request_id=prepared.request_id, certificate_subject=subject)
        return prepared

    def complete_personal_external(
        self,
        principal: Principal,
        dossier_code: str,
        file_id: str,
        request_id: str,
        *,
        signature: bytes | None = None,
        cms_der: bytes | None = None,
        max_bytes: int = MAX_PAPER_BYTES,
    ) -> SignedDraft:
        """Embed her token's signature in the request prepared for draft ``file_id`` (only by
        whoever prepared it) and store the signed paper as :meth:`sign_personal` does."""
        dossier, info, source = self._draft(dossier_code, file_id, max_bytes)
        attempt = _personal_attempt(
            principal, f"external-request:{request_id[:64]}", source, dossier.code, file_id
        )
        self._claim_signature(attempt, principal)
        try:
            try:
                signed, pending = asyncio.run(
                    self._facade.external.complete(
                        request_id, signature=signature, cms_der=cms_der, owner=principal.name
                    )
                )
            except PermissionDeniedError as exc:
                self._audit.refused(attempt, exc)
                raise
            except BaseException as exc:
                self._audit.failed(attempt, exc)
                raise
            attempt = dataclasses.replace(attempt, key_id=external_key_id(pending.certificate_der))
            summary = SignerSummary(
                role=SignRole.PERSONAL,
                key_id=attempt.key_id,
                field_name=pending.field_name,
                level=pending.options.level,
                signed_at=pending.signed_at,
            )
            return self._store_approved(attempt, principal, info, signed, summary, request_id=request_id)
        except BaseException:
            self._release_signature(file_id)
            raise

    def _own_personal_key(self, principal: Principal) -> str:
        """Her personal key on the hub with a signature image (drawn for her token's signature
        too, Decree 30/2020 Appendix I box 7c); the configured default image otherwise."""
        for key_id, grant in sorted(self._facade.grants.items()):
            if (
                grant.purpose is KeyPurpose.PERSONAL
                and principal.identities & grant.principals
                and key_id in self._images
            ):
                return key_id
        return ""

    def _personal_options(self, dossier_code: str, reason: str | None = None) -> SignOptions:
        """The competent person's signature: DocMDP P=2 certification at B-T, the number and
        date places and the seal field left open (Decree 30/2020 Art. 13(7), 14–15)."""
        return SignOptions(
            level=SignatureLevel.B_T,
            role=SignRole.PERSONAL,
            certify=True,
            open_fields=list(OPEN_AFTER_SIGNATURE),
            reason=reason or f"Phê duyệt kết quả hồ sơ {dossier_code}",
            location=self._location,
        )

    async def asign_personal(
        self, principal: Principal, dossier_code: str, file_id: str, **kwargs: Any
    ) -> SignedDraft:
        """:meth:`sign_personal` in a worker thread (signing is CPU-bound and blocking)."""
        return await asyncio.to_thread(lambda: self.sign_personal(principal, dossier_code, file_id, **kwargs))

    async def aissue_and_attach(
        self, principal: Principal, dossier_code: str, file_id: str, **kwargs: Any
    ) -> IssuedResult:
        """:meth:`issue_and_attach` in a worker thread."""
        return await asyncio.to_thread(
            lambda: self.issue_and_attach(principal, dossier_code, file_id, **kwargs)
        )

    async def aseal_and_attach(
        self, principal: Principal, dossier_code: str, file_id: str, **kwargs: Any
    ) -> SignedResult:
        """:meth:`seal_and_attach` in a worker thread."""
        return await asyncio.to_thread(
            lambda: self.seal_and_attach(principal, dossier_code, file_id, **kwargs)
        )

    # --- internals ----------------------------------------------------------------------------

    def _claim_signature(self, attempt: SigningAttempt, principal: Principal) -> None:
        """Claim the draft (409 when another signature has it, 403 when it is assigned to
        another officer; audited as refused)."""
        if self._papers is None:
            return
        accounts = frozenset(
            name.removeprefix("user:") for name in principal.identities if name.startswith("user:")
        )
        try:
            self._papers.claim_signature(
                attempt.file_id or "", attempt.dossier_code or "", actor=principal.name, accounts=accounts
            )
        except HubError as exc:
            self._audit.refused(attempt, exc)
            raise

    def _approve(self, file_id: str, approved_file_id: str, actor: str) -> Callable[[Session], None] | None:
        return None if self._papers is None else self._papers.approve(file_id, approved_file_id, actor)

    def _release_signature(self, file_id: str) -> None:
        if self._papers is not None:
            self._papers.release_signature(file_id)

    def _claim_issuance(self, file_id: str, principal: Principal) -> bool:
        return self._papers is not None and self._papers.claim_issuance(file_id, actor=principal.name)

    def _issued(
        self, claimed: bool, file_id: str, issued_file_id: str, actor: str
    ) -> Callable[[Session], None] | None:
        return self._papers.issue(file_id, issued_file_id, actor) if claimed and self._papers else None

    def _release_issuance(self, claimed: bool, file_id: str) -> None:
        if claimed and self._papers is not None:
            self._papers.release_issuance(file_id)

    def _draft(
        self, dossier_code: str, file_id: str, max_bytes: int
    ) -> tuple[Dossier, StoredFileInfo, bytes]:
        """The dossier (404 before any key is touched) and the stored file's bytes."""
        dossier = self._intake.get_dossier(dossier_code)
        info, path = self._files.get(file_id)
        if info.dossier_code is not None and info.dossier_code != dossier.code:
            raise InvalidInputError(
                f"file {file_id} belongs to dossier {info.dossier_code}, not {dossier.code}",
                message_vi=f"Tệp {file_id} thuộc hồ sơ {info.dossier_code}, không phải hồ sơ {dossier.code}",
            )
        if info.size > max_bytes:
            raise InvalidInputError(
                f"stored file is larger than {max_bytes} bytes",
                message_vi=f"Tệp lưu trữ vượt giới hạn {max_bytes} byte",
            )
        return dossier, info, path.read_bytes()

    def _authorize(
        self,
        attempt: SigningAttempt,
        principal: Principal,
        role: SignRole,
        *,
        seal_of: bytes | None = None,
        places: Callable[[bytes], None] | None = None,
    ) -> None:
        """Key, principal and purpose (and the seal order, and the state of the number and date
        places on ``seal_of``); a refusal is audited and raised."""
        try:
            authorize_key(self._facade.grants, principal, attempt.key_id, role)
            if seal_of is not None:
                self._seal_check.require_signed(seal_of)
                if places is not None:
                    places(seal_of)
        except HubError as exc:
            self._audit.refused(attempt, exc)
            raise

    def _with_places(self, attempt: SigningAttempt, data: bytes) -> bytes:
        """The draft with its number and date places (added when missing, before she signs)."""
        try:
            return ensure_number_places(data, self._places)
        except HubError as exc:
            self._audit.failed(attempt, exc)
            raise _refused(exc, "officer", attempt.dossier_code or "", attempt.key_id) from exc

    def _issuance_settings(self) -> IssuanceSettings:
        if self._issuance is None or self._register is None:
            raise FeatureNotConfiguredError(
                "document numbering is not configured ([signing.issuance])",
                message_vi="Chưa cấu hình cấp số, ký hiệu văn bản ([signing.issuance])",
            )
        return self._issuance

    def _new_result_id(self, dossier: Dossier, file_id: str, result_id: str | None) -> str:
        """``KQ-<file_id>`` by default; a result already signed and attached is a conflict."""
        result_id = result_id or f"KQ-{file_id}"
        held = next((r for r in dossier.results if r.id == result_id and r.signed), None)
        if held is not None:
            raise ConflictError(
                f"result {result_id} of {dossier.code} is already signed and attached ({held.download_url})",
                message_vi=f"Kết quả {result_id} của hồ sơ {dossier.code} đã được ký số và đính kèm",
                details={"result_id": result_id, "download_url": str(held.download_url)},
            )
        return result_id

    @contextmanager
    def _sealing(
        self,
        principal: Principal,
        path: str,
        dossier_code: str,
        file_id: str,
        attachment: ResultAttachment,
        places: Callable[[bytes], None],
    ) -> Iterator[_Sealing]:
        """The clerk's seal on officer-signed ``file_id``, checked first (clerk on the seal key,
        the officer's valid signature, the number and date ``places``, not attached yet; a
        refusal audited as ``signing.<path>``), the paper claimed for issuance while the body
        runs and put back when it fails."""
        key_id = attachment.get("key_id") or self._agency_key
        dossier, info, source = self._draft(
            dossier_code, file_id, attachment.get("max_bytes", MAX_PAPER_BYTES)
        )
        result_id = self._new_result_id(dossier, file_id, attachment.get("result_id"))
        attempt = SigningAttempt(
            principal.name, path, key_id, sha256_hex(source), KeyPurpose.SEAL, dossier.code, file_id
        )
        self._authorize(attempt, principal, SignRole.AGENCY, seal_of=source, places=places)
        claimed = self._claim_issuance(file_id, principal)
        try:
            yield _Sealing(attempt, dossier, info, source, claimed, result_id, attachment)
        except BaseException:
            self._release_issuance(claimed, file_id)
            raise

    def _record_sealed(
        self, job: _Sealing, principal: Principal, stored: SignedResult, **details: Any
    ) -> None:
        """The ``signed`` audit row of a sealed paper, ending its issuance claim."""
        self._audit.record(
            job.attempt,
            "signed",
            then=self._issued(job.claimed, job.attempt.file_id or "", stored.file_id, principal.name),
            output_sha256=stored.sha256,
            output_file_id=stored.file_id,
            **details,
        )

    def _seal_and_store(self, job: _Sealing, principal: Principal, source: bytes) -> SignedResult:
        """The agency seal (B-LTA) on ``source`` (the paper of ``job``, or it numbered), stored
        and attached as ``<stem>.signed.pdf``."""
        attempt = job.attempt
        dossier_code = job.dossier.code
        options = SignOptions(
            level=SignatureLevel.B_LTA,
            role=SignRole.AGENCY,
            reason=f"Ban hành kết quả hồ sơ {dossier_code}",
            location=self._location,
        )
        signed, result = self._sign(attempt, source, options)
        stem = _stem(job.info.filename).removesuffix(".approved")
        try:
            attached = store_and_attach(
                self._files,
                self._intake,
                dossier_code,
                signed,
                filename=f"{stem}.signed.pdf",
                media_type="application/pdf",
                name=job.attachment["name"],
                actor=principal.name,
                result_id=job.result_id,
                result_code=job.attachment.get("result_code"),
                component_code=job.attachment.get("component_code"),
                signed=True,
            )
        except BaseException as exc:
            self._audit.failed(attempt, exc)
            raise
        return SignedResult(
            dossier_code=dossier_code,
            source_file_id=attempt.file_id or "",
            file_id=attached.stored.id,
            download_url=attached.download_url,
            sha256=attached.stored.sha256,
            size=attached.stored.size,
            result=attached.document,
            intake=attached.intake,
            signatures=[_summary(SignRole.AGENCY, attempt.key_id, result)],
        )

    def _store_approved(
        self,
        attempt: SigningAttempt,
        principal: Principal,
        info: StoredFileInfo,
        signed: bytes,
        signature: SignerSummary,
        **details: Any,
    ) -> SignedDraft:
        """The officer-signed draft stored as ``<stem>.approved.pdf`` of its dossier (not
        attached), the attempt audited as signed and the paper marked approved with it."""
        dossier_code = attempt.dossier_code or ""
        file_id = attempt.file_id or ""
        stored = self._files.save(
            signed,
            filename=f"{_stem(info.filename)}.approved.pdf",
            media_type="application/pdf",
            dossier_code=dossier_code,
        )
        self._audit.record(
            attempt,
            "signed",
            then=self._approve(file_id, stored.id, principal.name),
            output_sha256=stored.sha256,
            output_file_id=stored.id,
            **details,
        )
        return SignedDraft(
            dossier_code=dossier_code,
            source_file_id=file_id,
            file_id=stored.id,
            sha256=stored.sha256,
            size=stored.size,
            signature=signature,
        )

    def _service(self, key_id: str, role: SignRole) -> SigningService:
        """The facade's signing service, with this key's signature or seal image."""
        image = self._images.get(key_id)
        if image is None:
            return self._facade.service
        config = self._facade.service.config
        if role is SignRole.PERSONAL:
            return SigningService(dataclasses.replace(config, signature_png=image))
        return SigningService(dataclasses.replace(config, seal_png=image))

    def _sign(self, attempt: SigningAttempt, data: bytes, options: SignOptions) -> tuple[bytes, SignResult]:
        stage = "officer" if options.role is SignRole.PERSONAL else "agency"
        service = self._service(attempt.key_id, options.role)
        try:
            key = self._facade.key(attempt.key_id)
            return asyncio.run(service.sign_bytes(data, key, options))
        except HubError as exc:
            self._audit.failed(attempt, exc)
            raise _refused(exc, stage, attempt.dossier_code or "", attempt.key_id) from exc
        except BaseException as exc:
            self._audit.failed(attempt, exc)
            raise


def _personal_attempt(
    principal: Principal, key_id: str, source: bytes, dossier_code: str, file_id: str
) -> SigningAttempt:
    """The audited attempt of the competent person's signature (``signing.results.sign``) on
    draft ``file_id``, whether by a hub key or by her own token."""
    return SigningAttempt(
        principal.name,
        "results.sign",
        key_id,
        sha256_hex(source),
        KeyPurpose.PERSONAL,
        dossier_code,
        file_id,
    )


def _stem(filename: str) -> str:
    """The file name without its ``.pdf`` ending (any case)."""
    return filename[:-4] if filename.lower().endswith(".pdf") else filename


def _refused(exc: HubError, stage: str, code: str, key_id: str) -> HubError:
    """The same error class, saying which signature of which dossier failed."""
    what = "officer's signature" if stage == "officer" else "agency signature"
    message = f"result paper of {code} not signed ({what}, key {key_id!r}): {exc.message}"
    message_vi = f"Chưa ký được kết quả hồ sơ {code} ({_STAGE_VI[stage]}): {exc.message_vi}"
    details = {**exc.details, "stage": stage, "key_id": key_id, "dossier_code": code}
    if isinstance(exc, RetryableError):
        return type(exc)(message, retry_after=exc.retry_after, message_vi=message_vi, details=details)
    return type(exc)(message, message_vi=message_vi, details=details)


def _summary(role: SignRole, key_id: str, result: SignResult) -> SignerSummary:
    check = result.certificate
    return SignerSummary(
        role=role,
        key_id=key_id,
        field_name=result.field_name,
        level=result.level,
        signed_at=result.signed_at,
        subject=check.subject if check is not None else None,
        revocation_status=check.revocation_status if check is not None else None,
        warnings=[w.code for w in result.warnings],
    )
