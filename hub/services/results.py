"""Sign a dossier's result paper with two signatures and attach it for delivery.

Decree 30/2020 (Điều 5, 13–15, 17, 32; Appendix I) needs two signatures on an issued
e-document, in this order: the competent person's personal signature (blue signature image in
box 7c; here a DocMDP P=2 certification at PAdES B-T, so the number/date and the seal may
follow), then the agency signature (red seal over the left third of the personal one, box 8;
PAdES B-LTA so it stays verifiable for the archive, docs/signing.md §2.2). Each signature is
preceded by the certificate check of Decree 68/2024 Art. 29/31 (validity, path, revocation).

:meth:`ResultSigningService.sign_and_attach` reads a stored file, signs it twice in memory,
stores the signed PDF (:class:`hub.storage.files.FileStore`, served at the hub's download
URL) and attaches it with :meth:`hub.services.intake.IntakeService.attach_result`, so the
dossier's next ``DanhSachGiayToKetQua`` carries ``DuongDanTepTinKetQua`` and the SHA-256.
A refused signature (expired, revoked, untrusted certificate, TSA down …) stores nothing and
attaches nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from hub.config import Settings
from hub.services.intake import IntakeResult, IntakeService
from hub.services.result_files import store_and_attach
from hub.services.signing_keys import key_images
from hub.storage.files import FileStore
from schemas.dossier import ResultDocument
from schemas.errors import ConfigurationError, ConflictError, HubError, InvalidInputError, RetryableError
from signing.facade import SigningFacade
from signing.models import SignatureLevel, SignOptions, SignResult, SignRole
from signing.signer_service import SigningService

__all__ = ["ResultSigningService", "SignedResult", "SignerSummary"]

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
    """What :meth:`ResultSigningService.sign_and_attach` stored and attached."""

    dossier_code: str
    source_file_id: str
    file_id: str
    download_url: str
    sha256: str
    size: int
    result: ResultDocument
    intake: IntakeResult
    signatures: list[SignerSummary]


class ResultSigningService:
    """Officer signature, then agency seal, then store and attach (one call, all or nothing)."""

    def __init__(
        self,
        facade: SigningFacade,
        files: FileStore,
        intake: IntakeService,
        *,
        officer_key: str,
        agency_key: str,
        images: Mapping[str, bytes] | None = None,
        location: str | None = None,
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
        self._images = dict(images or {})
        self._location = location

    @classmethod
    def from_settings(
        cls, settings: Settings, facade: SigningFacade, files: FileStore, intake: IntakeService
    ) -> ResultSigningService | None:
        """The service for ``[signing] result_officer_key`` / ``result_agency_key``; ``None``
        when either is unset."""
        signing = settings.signing
        if not (signing.result_officer_key and signing.result_agency_key):
            return None
        return cls(
            facade,
            files,
            intake,
            officer_key=signing.result_officer_key,
            agency_key=signing.result_agency_key,
            images=key_images(signing),
        )

    # --- public -------------------------------------------------------------------------------

    @property
    def files(self) -> FileStore:
        """The file store signed papers are saved to (and drafts are read from)."""
        return self._files

    def sign_and_attach(
        self,
        dossier_code: str,
        file_id: str,
        *,
        name: str,
        actor: str,
        result_code: str | None = None,
        result_id: str | None = None,
        component_code: str | None = None,
        reason: str | None = None,
        max_bytes: int = 20 * 1024 * 1024,
    ) -> SignedResult:
        """Sign stored file ``file_id`` for ``dossier_code`` and attach it (blocking call).

        The result id defaults to ``KQ-<file_id>``: signing the same draft twice for a dossier
        is refused (:class:`ConflictError`) instead of storing a second signed copy — each
        signature carries its own time, so a repeat could never be byte-identical.

        Runs the signatures on an event loop of its own: call it from a worker thread (or use
        :meth:`asign_and_attach` from async code).
        """
        dossier = self._intake.get_dossier(dossier_code)  # 404 before any key is touched
        result_id = result_id or f"KQ-{file_id}"
        held = next((r for r in dossier.results if r.id == result_id and r.signed), None)
        if held is not None:
            raise ConflictError(
                f"result {result_id} of {dossier.code} is already signed and attached ({held.download_url})",
                message_vi=f"Kết quả {result_id} của hồ sơ {dossier.code} đã được ký số và đính kèm",
                details={"result_id": result_id, "download_url": str(held.download_url)},
            )
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
        source = path.read_bytes()
        officer_key = self._facade.key(self._officer_key)
        agency_key = self._facade.key(self._agency_key)

        officer_options = SignOptions(
            level=SignatureLevel.B_T,
            role=SignRole.PERSONAL,
            certify=True,
            reason=reason or f"Phê duyệt kết quả hồ sơ {dossier.code}",
            location=self._location,
        )
        agency_options = SignOptions(
            level=SignatureLevel.B_LTA,
            role=SignRole.AGENCY,
            reason=f"Ban hành kết quả hồ sơ {dossier.code}",
            location=self._location,
        )
        first, officer = self._sign("officer", dossier.code, source, officer_key, officer_options)
        signed, agency = self._sign("agency", dossier.code, first, agency_key, agency_options)

        stem = info.filename[:-4] if info.filename.lower().endswith(".pdf") else info.filename
        attached = store_and_attach(
            self._files,
            self._intake,
            dossier.code,
            signed,
            filename=f"{stem}.signed.pdf",
            media_type="application/pdf",
            name=name,
            actor=actor,
            result_id=result_id,
            result_code=result_code,
            component_code=component_code,
            signed=True,
        )
        return SignedResult(
            dossier_code=dossier.code,
            source_file_id=file_id,
            file_id=attached.stored.id,
            download_url=attached.download_url,
            sha256=attached.stored.sha256,
            size=attached.stored.size,
            result=attached.document,
            intake=attached.intake,
            signatures=[
                _summary(SignRole.PERSONAL, self._officer_key, officer),
                _summary(SignRole.AGENCY, self._agency_key, agency),
            ],
        )

    async def asign_and_attach(self, dossier_code: str, file_id: str, **kwargs: Any) -> SignedResult:
        """:meth:`sign_and_attach` in a worker thread (signing is CPU-bound and blocking)."""
        return await asyncio.to_thread(lambda: self.sign_and_attach(dossier_code, file_id, **kwargs))

    # --- internals ----------------------------------------------------------------------------

    def _service(self, key_id: str, role: SignRole) -> SigningService:
        """The facade's signing service, with this key's signature or seal image."""
        image = self._images.get(key_id)
        if image is None:
            return self._facade.service
        config = self._facade.service.config
        if role is SignRole.PERSONAL:
            return SigningService(dataclasses.replace(config, signature_png=image))
        return SigningService(dataclasses.replace(config, seal_png=image))

    def _sign(
        self, stage: str, code: str, data: bytes, key: Any, options: SignOptions
    ) -> tuple[bytes, SignResult]:
        key_id = self._officer_key if stage == "officer" else self._agency_key
        service = self._service(key_id, options.role)
        try:
            return asyncio.run(service.sign_bytes(data, key, options))
        except HubError as exc:
            raise _refused(exc, stage, code, key_id) from exc


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
