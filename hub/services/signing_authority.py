"""Who may sign with which server-held key, and the audit row of every signing attempt.

Rules (docs/signing.md §10.5):

* each key in ``[signing.keys]`` names its purpose (``personal`` | ``seal``) and the principals
  allowed to use it: API key names, or ``user:<username>`` for the API keys tied to that
  console account (docs/security.md §10), plus those an admin bound at run time
  (:mod:`hub.services.key_bindings`, read before each signature); anyone else, any other key,
  an unknown key: 403;
* a personal key signs the competent person's signature (Decree 30/2020 Art. 13(7), box 7c):
  the caller must be an ``officer`` listed on the key;
* a seal key applies the agency signature (Art. 17, 32(2), 33(2), box 8): the caller must be the
  ``clerk`` listed on the key, and the seal (role ``agency``) goes only on a document that
  already carries a valid signature — the competent person's, as the hub's verifier judges it
  (Art. 5: the issued e-document carries both). Electronic copies and attachments
  (Art. 25(1c), 26) carry the agency signature alone;
* external signing (the officer's own token) follows the same roles by the requested
  appearance, and a request is completed only by whoever prepared it;
* admins manage keys and do not sign (separation of duties).

Every attempt — signed, refused or failed — writes one audit row (:func:`hub.audit.log.record`)
(action ``signing.<path>``, target ``sha256:<input document>``, details: key, purpose, dossier,
outcome, error code, output SHA-256). Audit rows are only ever inserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from asn1crypto import pem

from hub.audit.log import record
from hub.auth.keys import Principal
from hub.db.models import ApiRole
from hub.db.session import Database
from hub.services.key_bindings import BoundGrants
from schemas.errors import HubError, InvalidInputError, PermissionDeniedError
from signing.external import ExternalSigningRequest
from signing.facade import FileStoreLike, KeyGrant, SigningFacade, StoredSignResult, in_worker
from signing.models import SignOptions, SignResult, SignRole
from signing.settings import KeyPurpose

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.telemetry.metrics import HubMetrics

__all__ = [
    "PURPOSE_OF_ROLE",
    "ROLE_FOR_PURPOSE",
    "SealCheck",
    "SigningAttempt",
    "SigningAudit",
    "SigningGate",
    "authorize_external",
    "authorize_key",
    "sha256_hex",
]

#: The API role that may use each purpose (Decree 30/2020 Art. 13(7); Art. 32(2), 33(2)).
ROLE_FOR_PURPOSE: Mapping[KeyPurpose, ApiRole] = {
    KeyPurpose.PERSONAL: ApiRole.OFFICER,
    KeyPurpose.SEAL: ApiRole.CLERK,
}

#: Which purpose each Decree 30 appearance needs (docs/signing.md §5.2, §6.5).
PURPOSE_OF_ROLE: Mapping[SignRole, KeyPurpose] = {
    SignRole.PERSONAL: KeyPurpose.PERSONAL,
    SignRole.INVISIBLE: KeyPurpose.PERSONAL,
    SignRole.AGENCY: KeyPurpose.SEAL,
    SignRole.COPY: KeyPurpose.SEAL,
    SignRole.ATTACHMENT: KeyPurpose.SEAL,
}

T = TypeVar("T")
#: ``numbered`` / ``voided``: a register number taken for, or cancelled on, an issuance
#: (Decree 30/2020 Art. 15; hub.services.issuance).
Outcome = Literal["signed", "prepared", "refused", "failed", "numbered", "voided"]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def external_key_id(certificate: bytes) -> str:
    """``external:<SHA-256 of the certificate's DER, 16 hex>``: the key an external signature
    names in the audit log (PEM is unarmored first, so both forms give the same id)."""
    if pem.detect(certificate):
        with contextlib.suppress(ValueError):
            _type, _headers, certificate = pem.unarmor(certificate)
    return f"external:{sha256_hex(certificate)[:16]}"


@dataclass(frozen=True, slots=True)
class SigningAttempt:
    """One signing action as the audit log records it."""

    actor: str
    path: str
    """Where it came from: ``documents``, ``records``, ``batch``, ``results.sign``, ``results.seal``,
    ``results.issue``, ``external.prepare``, ``external.complete``, ``cli``, ``cli.issue``."""
    key_id: str
    document_sha256: str
    purpose: KeyPurpose | None = None
    dossier_code: str | None = None
    file_id: str | None = None
    started: float = field(default_factory=time.monotonic, compare=False)
    """When the attempt began (monotonic): its audit row also times it in the metrics."""


class SigningAudit:
    """Appends the audit row of each signing attempt (never updates or deletes one), and
    counts and times it in ``metrics`` (``hub_signing_duration_seconds``, by purpose and outcome)."""

    def __init__(self, db: Database, *, metrics: HubMetrics | None = None) -> None:
        self._db = db
        self._metrics = metrics

    def record(
        self,
        attempt: SigningAttempt,
        outcome: Outcome,
        *,
        then: Callable[[Session], None] | None = None,
        **extra: Any,
    ) -> None:
        """Append the row; ``then`` runs in the same transaction (the state change the row
        records, e.g. a result paper moving on: :mod:`hub.services.result_papers`)."""
        details: dict[str, Any] = {
            "key_id": attempt.key_id,
            "purpose": attempt.purpose.value if attempt.purpose is not None else None,
            "document_sha256": attempt.document_sha256,
            "dossier_code": attempt.dossier_code,
            "file_id": attempt.file_id,
            "outcome": outcome,
            **extra,
        }
        with self._db.transaction() as session:
            record(
                session,
                actor=attempt.actor,
                action=f"signing.{attempt.path}",
                target=f"sha256:{attempt.document_sha256}" if attempt.document_sha256 else attempt.key_id,
                details=details,
            )
            if then is not None:
                then(session)
        if self._metrics is not None:
            purpose = attempt.purpose.value if attempt.purpose is not None else None
            self._metrics.observe_signing(purpose, outcome, time.monotonic() - attempt.started)

    def refused(self, attempt: SigningAttempt, exc: HubError) -> None:
        self.record(attempt, "refused", error_code=exc.code, reason=exc.message[:300])

    def failed(self, attempt: SigningAttempt, exc: BaseException) -> None:
        code = exc.code if isinstance(exc, HubError) else type(exc).__name__
        self.record(attempt, "failed", error_code=code, reason=str(exc)[:300])


def _denied(message: str, message_vi: str, **details: Any) -> PermissionDeniedError:
    return PermissionDeniedError(message, message_vi=message_vi, details=details)


def _check_role(principal: Principal, purpose: KeyPurpose) -> None:
    needed = ROLE_FOR_PURPOSE[purpose]
    if principal.role is not needed:  # no admin bypass: admins do not sign
        raise _denied(
            f"a {purpose.value} signature needs the {needed.value!r} role",
            f"Chữ ký loại {purpose.value} chỉ dành cho vai trò {needed.value}",
            purpose=purpose.value,
        )


def authorize_key(
    grants: Mapping[str, KeyGrant], principal: Principal, key_id: str, role: SignRole
) -> KeyPurpose:
    """The purpose of ``key_id`` if ``principal`` may sign with it in appearance ``role``, else
    :class:`PermissionDeniedError` (unknown keys included: key ids are not disclosed)."""
    grant = grants.get(key_id)
    if grant is None or not principal.identities & grant.principals:
        raise _denied(
            f"{principal.name!r} may not use signing key {key_id!r}",
            f"Người dùng '{principal.name}' không được phép dùng khóa ký '{key_id}'",
            key_id=key_id,
        )
    _check_role(principal, grant.purpose)
    if PURPOSE_OF_ROLE[role] is not grant.purpose:
        raise _denied(
            f"key {key_id!r} is a {grant.purpose.value} key; it cannot sign as {role.value!r}",
            f"Khóa '{key_id}' dùng cho loại chữ ký {grant.purpose.value}, không dùng để ký {role.value}",
            key_id=key_id,
            role=role.value,
        )
    return grant.purpose


def authorize_external(principal: Principal, role: SignRole) -> KeyPurpose:
    """The purpose of an external signature in appearance ``role``, if ``principal``'s role fits."""
    purpose = PURPOSE_OF_ROLE[role]
    _check_role(principal, purpose)
    return purpose


class SealCheck:
    """The agency seal follows a valid signature of the competent person (Decree 30/2020
    Art. 5, 17; docs/signing.md §5.1): the hub's verifier must judge the document's existing
    signatures valid before a seal is added."""

    def __init__(self, policy: Any) -> None:
        self._policy = policy

    def require_signed(self, data: bytes) -> None:
        """Raise :class:`InvalidInputError` unless ``data`` carries only valid signatures, at
        least one. Blocking (runs the verifier's own event loop): call from a worker thread."""
        from signing.verification import Verdict, verify_pdf  # the verifier loads only when sealing

        try:
            report = verify_pdf(data, self._policy)
        except InvalidInputError as exc:
            if exc.code == "unsigned_pdf":
                raise _no_officer_signature("the document carries no signature") from None
            raise
        if report.signature_count == 0 or report.verdict is not Verdict.VALID:
            raise _no_officer_signature(
                f"the hub's verifier judges the document's signatures {report.verdict.value}",
                verdict=report.verdict.value,
            )

    def require_signed_file(self, path: Path) -> None:
        self.require_signed(path.read_bytes())


def _no_officer_signature(reason: str, **details: Any) -> InvalidInputError:
    return InvalidInputError(
        f"the agency seal needs the competent person's valid signature first: {reason}",
        message_vi="Chỉ đóng dấu (chữ ký số của cơ quan) sau chữ ký hợp lệ của người có thẩm quyền",
        details={"reason": "seal_requires_officer_signature", **details},
    )


class SigningGate:
    """The signing API's entry: authorize, check the seal order, sign, audit (every path).

    Wraps :class:`signing.facade.SigningFacade`; ``policy`` is the verification policy the
    seal check judges the officer's signature with.
    """

    def __init__(
        self, facade: SigningFacade, db: Database, policy: Any, *, metrics: HubMetrics | None = None
    ) -> None:
        self._facade = facade
        self._audit = SigningAudit(db, metrics=metrics)
        self._seal = SealCheck(policy)

    async def _fresh_grants(self) -> None:
        """The admin's bindings as they are now, read before each signature (docs/security.md)."""
        grants = self._facade.grants
        if isinstance(grants, BoundGrants):
            await asyncio.to_thread(grants.refresh)

    async def _guard(
        self, attempt: SigningAttempt, check: Callable[[], object], seal_of: bytes | None = None
    ) -> None:
        """Run ``check`` (and the seal order check on ``seal_of``); audit and re-raise a refusal."""
        try:
            check()
            if seal_of is not None:
                await asyncio.to_thread(self._seal.require_signed, seal_of)
        except HubError as exc:
            await asyncio.to_thread(self._audit.refused, attempt, exc)
            raise

    async def _run(self, attempt: SigningAttempt, work: Awaitable[T]) -> T:
        try:
            return await work
        except BaseException as exc:
            await asyncio.to_thread(self._audit.failed, attempt, exc)
            raise

    async def sign_document(
        self,
        principal: Principal,
        data: bytes,
        key_id: str,
        options: SignOptions,
        *,
        dossier_code: str | None = None,
        file_id: str | None = None,
        path: str = "documents",
    ) -> tuple[bytes, SignResult]:
        """``POST /signing/documents``: sign ``data`` with server-held key ``key_id``; ``path``
        names the caller in the audit row (``records``: a tracking book or control slip)."""
        await self._fresh_grants()
        grant = self._facade.grants.get(key_id)
        attempt = SigningAttempt(
            principal.name,
            path,
            key_id,
            sha256_hex(data),
            grant.purpose if grant is not None else None,
            dossier_code,
            file_id,
        )
        await self._guard(
            attempt,
            lambda: authorize_key(self._facade.grants, principal, key_id, options.role),
            data if options.role is SignRole.AGENCY else None,
        )
        signed, result = await self._run(attempt, self._facade.sign_upload(data, key_id, options))
        await asyncio.to_thread(
            self._audit.record, attempt, "signed", output_sha256=sha256_hex(signed), field=result.field_name
        )
        return signed, result

    async def sign_stored(
        self,
        principal: Principal,
        files: FileStoreLike,
        file_ids: list[str],
        key_id: str,
        options: SignOptions,
    ) -> StoredSignResult:
        """``POST /signing/batch``: every file is authorized (and, for a seal, order-checked)
        before any is signed; one audit row per file."""
        await self._fresh_grants()
        grant = self._facade.grants.get(key_id)
        purpose = grant.purpose if grant is not None else None
        sources = {fid: files.get(fid) for fid in dict.fromkeys(file_ids)}
        attempts = {
            fid: SigningAttempt(
                principal.name, "batch", key_id, str(info.sha256), purpose, info.dossier_code, fid
            )
            for fid, (info, _path) in sources.items()
        }
        try:
            authorize_key(self._facade.grants, principal, key_id, options.role)
            if options.role is SignRole.AGENCY:
                for _info, path in sources.values():
                    await asyncio.to_thread(self._seal.require_signed_file, path)
        except HubError as exc:
            for attempt in attempts.values():
                await asyncio.to_thread(self._audit.refused, attempt, exc)
            raise
        try:
            result = await self._facade.sign_stored_async(files, file_ids, key_id, options)
        except BaseException as exc:
            for attempt in attempts.values():
                await asyncio.to_thread(self._audit.failed, attempt, exc)
            raise
        for item in result.items:
            attempt = attempts[item.source_file_id]
            if item.ok:
                await asyncio.to_thread(
                    self._audit.record, attempt, "signed", signed_file_id=item.signed_file_id
                )
            else:
                await asyncio.to_thread(
                    self._audit.record, attempt, "failed", error_code=item.error_code, reason=item.error
                )
        return result

    async def prepare_external(
        self,
        principal: Principal,
        data: bytes,
        certificate: bytes,
        options: SignOptions,
        chain: list[bytes] | None = None,
    ) -> ExternalSigningRequest:
        """``POST /signing/external/prepare``: the caller's own certificate, in the role its
        appearance needs; the request is bound to the caller."""
        purpose = PURPOSE_OF_ROLE[options.role]
        attempt = SigningAttempt(
            principal.name,
            "external.prepare",
            external_key_id(certificate),
            sha256_hex(data),
            purpose,
        )
        await self._guard(
            attempt,
            lambda: authorize_external(principal, options.role),
            data if options.role is SignRole.AGENCY else None,
        )
        external = self._facade.external
        prepared = await self._run(
            attempt,
            in_worker(
                lambda: external.prepare(data, certificate, options, chain_der=chain, owner=principal.name)
            ),
        )
        subject = prepared.certificate.subject if prepared.certificate is not None else None
        await asyncio.to_thread(
            self._audit.record,
            attempt,
            "prepared",
            request_id=prepared.request_id,
            certificate_subject=subject,
        )
        return prepared

    async def complete_external(
        self, principal: Principal, request_id: str, *, signature: bytes | None, cms_der: bytes | None
    ) -> bytes:
        """``POST /signing/external/{id}/complete``: only by whoever prepared the request."""
        attempt = SigningAttempt(
            principal.name, "external.complete", f"external-request:{request_id[:64]}", ""
        )
        try:
            signed, pending = await in_worker(
                lambda: self._facade.external.complete(
                    request_id, signature=signature, cms_der=cms_der, owner=principal.name
                )
            )
        except PermissionDeniedError as exc:
            await asyncio.to_thread(self._audit.refused, attempt, exc)
            raise
        except BaseException as exc:
            await asyncio.to_thread(self._audit.failed, attempt, exc)
            raise
        done = SigningAttempt(
            principal.name,
            "external.complete",
            external_key_id(pending.certificate_der),
            sha256_hex(signed),
            PURPOSE_OF_ROLE[pending.options.role],
        )
        await asyncio.to_thread(self._audit.record, done, "signed", request_id=request_id)
        return signed
