"""What the HTTP API calls: server-held keys by id, stored documents, external signing.

Server-held keys (an agency HSM, a *chứng thư số cho thiết bị/dịch vụ* per Decree 68/2024
Art. 10) are registered by id in configuration; officers' personal keys never reach the hub
and go through external signing (prepare → sign in the officer's tool → complete).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from schemas.errors import FeatureNotConfiguredError, InvalidInputError, NotFoundError
from signing.external import ExternalSigningService
from signing.keys import KeySource
from signing.models import BatchItemResult, SignedBatch, SignOptions, SignResult
from signing.settings import KeyPurpose, SigningSettings
from signing.signer_service import SigningService, config_from_settings
from signing.store import FileSystemPendingStore, PendingStore

__all__ = [
    "FileStoreLike",
    "KeyGrant",
    "SigningFacade",
    "StoredSignOutcome",
    "StoredSignResult",
    "in_worker",
]

T = TypeVar("T")


async def in_worker(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``await work()`` in a worker thread with its own event loop: PDF/CMS work is CPU-bound
    and would otherwise stall the API's event loop."""
    return await asyncio.to_thread(lambda: asyncio.run(work()))


class FileStoreLike(Protocol):
    """The part of ``hub.storage.files.FileStore`` the facade needs."""

    def get(self, file_id: str) -> tuple[Any, Path]: ...

    def save(
        self, data: bytes, *, filename: str, media_type: str, dossier_code: str | None = None
    ) -> Any: ...


class StoredSignOutcome(BaseModel):
    source_file_id: str
    ok: bool
    signed_file_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    error_vi: str | None = None


class StoredSignResult(SignedBatch[StoredSignOutcome]):
    """A batch of stored files signed into new stored files (:meth:`SigningFacade.sign_stored`)."""


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What a server-held key is for and which principals (API key names) may use it
    (``[signing.keys.<id>] purpose / principals``, docs/signing.md §10.5). A key without a
    grant may be used by nobody."""

    purpose: KeyPurpose
    principals: frozenset[str] = frozenset()


@dataclass
class SigningFacade:
    service: SigningService
    external: ExternalSigningService
    keys: Mapping[str, KeySource] = field(default_factory=dict)
    grants: Mapping[str, KeyGrant] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls, signing: SigningSettings, data_dir: Path, *, keys: Mapping[str, KeySource] | None = None
    ) -> SigningFacade:
        """From the ``[signing]`` settings; pending external requests are kept under ``data_dir``."""
        service = SigningService(config_from_settings(signing))
        ttl = signing.external_request_ttl_seconds
        store: PendingStore = FileSystemPendingStore(data_dir / "signing-pending")
        grants = {
            key_id: KeyGrant(spec.purpose, frozenset(spec.principals))
            for key_id, spec in signing.keys.items()
        }
        return cls(
            service,
            ExternalSigningService(service, store, ttl=timedelta(seconds=ttl)),
            dict(keys or {}),
            grants,
        )

    def key(self, key_id: str) -> KeySource:
        if not self.keys:
            raise FeatureNotConfiguredError(
                "no server-side signing key is configured; use external signing",
                message_vi="Chưa cấu hình khóa ký trên máy chủ; hãy dùng chức năng ký từ xa",
            )
        try:
            return self.keys[key_id]
        except KeyError:
            raise NotFoundError(
                f"unknown signing key {key_id!r}", message_vi=f"Không có khóa ký '{key_id}'"
            ) from None

    async def sign_upload(self, data: bytes, key_id: str, options: SignOptions) -> tuple[bytes, SignResult]:
        """Sign in a worker thread (:func:`in_worker`)."""
        key = self.key(key_id)
        return await in_worker(lambda: self.service.sign_bytes(data, key, options))

    async def read_stored(self, files: FileStoreLike, file_id: str, limit: int) -> bytes:
        """Bytes of a stored file (404 if unknown), refusing files above ``limit``."""
        _info, path = files.get(file_id)
        data = await asyncio.to_thread(path.read_bytes)
        if len(data) > limit:
            raise InvalidInputError(
                f"stored file is larger than {limit} bytes",
                message_vi=f"Tệp lưu trữ vượt giới hạn {limit} byte",
            )
        return data

    def sign_stored(
        self, files: FileStoreLike, file_ids: list[str], key_id: str, options: SignOptions
    ) -> StoredSignResult:
        """Batch-sign stored files; each signed PDF is stored as a new file (blocking call)."""
        if not file_ids:
            raise InvalidInputError("no file ids given", message_vi="Chưa chọn tệp nào để ký")
        if len(set(file_ids)) != len(file_ids):
            raise InvalidInputError("duplicate file ids", message_vi="Danh sách tệp bị trùng")
        key = self.key(key_id)
        sources: list[tuple[str, Any, Path]] = []
        for fid in file_ids:
            info, path = files.get(fid)
            sources.append((fid, info, path))
        with tempfile.TemporaryDirectory(prefix="hub-sign-") as tmp:
            staged = []
            for fid, _info, path in sources:
                link = Path(tmp) / "in" / f"{fid}.pdf"
                link.parent.mkdir(exist_ok=True)
                link.symlink_to(path.resolve())
                staged.append(link)
            batch = self.service.sign_batch(staged, Path(tmp) / "out", key, options)
            items: list[StoredSignOutcome] = []
            for (fid, info, _path), item in zip(sources, batch.items, strict=True):
                items.append(self._store_one(files, fid, info, item))
        return StoredSignResult(**(dict(batch) | {"items": items}))

    @staticmethod
    def _store_one(files: FileStoreLike, fid: str, info: Any, item: BatchItemResult) -> StoredSignOutcome:
        if not item.ok or item.output_path is None:
            return StoredSignOutcome(
                source_file_id=fid, **item.model_dump(include={"ok", "error_code", "error", "error_vi"})
            )
        name = str(getattr(info, "filename", f"{fid}.pdf"))
        stem = name[:-4] if name.lower().endswith(".pdf") else name
        saved = files.save(
            item.output_path.read_bytes(),
            filename=f"{stem}.signed.pdf",
            media_type="application/pdf",
            dossier_code=getattr(info, "dossier_code", None),
        )
        return StoredSignOutcome(source_file_id=fid, ok=True, signed_file_id=str(saved.id))

    async def sign_stored_async(
        self, files: FileStoreLike, file_ids: list[str], key_id: str, options: SignOptions
    ) -> StoredSignResult:
        return await asyncio.to_thread(self.sign_stored, files, file_ids, key_id, options)
