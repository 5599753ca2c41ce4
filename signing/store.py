"""Pending external-signing requests: a small store interface with in-memory and filesystem
implementations.

A pending request holds the prepared PDF (signature placeholder reserved), the byte-range digest
and the CMS signed attributes the officer's tool must sign. Requests expire; expired ones are
refused and purged. The filesystem store writes each request atomically (temp file + rename), so
a crash never leaves a half-written request behind.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from schemas.errors import InvalidInputError
from signing.models import SignOptions
from signing.service import atomic_write

__all__ = ["FileSystemPendingStore", "InMemoryPendingStore", "PendingSignature", "PendingStore"]

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class PendingSignature(BaseModel):
    """State kept between ``prepare`` and ``complete`` (no private material in here)."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    request_id: str
    created_at: datetime
    expires_at: datetime
    options: SignOptions
    field_name: str
    md_algorithm: str
    signature_mechanism: str
    certificate_der: bytes
    chain_der: list[bytes]
    document_digest: bytes
    reserved_region_start: int
    reserved_region_end: int
    signed_attrs_der: bytes
    signed_at: datetime
    warnings: list[dict[str, str]] = []
    #: Who prepared the request (an API key name); only they may complete it.
    owner: str | None = None


def check_request_id(request_id: str) -> str:
    if not _ID_RE.fullmatch(request_id):
        raise InvalidInputError("malformed signing request id", message_vi="Mã yêu cầu ký không hợp lệ")
    return request_id


@runtime_checkable
class PendingStore(Protocol):
    def put(self, pending: PendingSignature, prepared_pdf: bytes) -> None: ...

    def get(self, request_id: str) -> tuple[PendingSignature, bytes] | None: ...

    def delete(self, request_id: str) -> None: ...

    def purge_expired(self, now: datetime) -> int: ...


class InMemoryPendingStore:
    """Process-local store (tests, single-process deployments)."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[PendingSignature, bytes]] = {}
        self._lock = threading.Lock()

    def put(self, pending: PendingSignature, prepared_pdf: bytes) -> None:
        with self._lock:
            self._items[pending.request_id] = (pending, prepared_pdf)

    def get(self, request_id: str) -> tuple[PendingSignature, bytes] | None:
        with self._lock:
            return self._items.get(request_id)

    def delete(self, request_id: str) -> None:
        with self._lock:
            self._items.pop(request_id, None)

    def purge_expired(self, now: datetime) -> int:
        with self._lock:
            expired = [k for k, (p, _) in self._items.items() if p.expires_at <= now]
            for k in expired:
                del self._items[k]
            return len(expired)


class FileSystemPendingStore:
    """One ``<id>.json`` + ``<id>.pdf`` pair per request in a directory (shared by workers)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _paths(self, request_id: str) -> tuple[Path, Path]:
        check_request_id(request_id)
        return self.directory / f"{request_id}.json", self.directory / f"{request_id}.pdf"

    def put(self, pending: PendingSignature, prepared_pdf: bytes) -> None:
        meta, pdf = self._paths(pending.request_id)
        atomic_write(pdf, prepared_pdf)  # PDF first: a request without its JSON is invisible
        atomic_write(meta, pending.model_dump_json().encode())

    def get(self, request_id: str) -> tuple[PendingSignature, bytes] | None:
        meta, pdf = self._paths(request_id)
        try:
            pending = PendingSignature.model_validate_json(meta.read_bytes())
            return pending, pdf.read_bytes()
        except FileNotFoundError:
            return None
        except (ValueError, json.JSONDecodeError):
            return None

    def delete(self, request_id: str) -> None:
        meta, pdf = self._paths(request_id)
        meta.unlink(missing_ok=True)
        pdf.unlink(missing_ok=True)

    def purge_expired(self, now: datetime) -> int:
        count = 0
        for meta in self.directory.glob("*.json"):
            found = self.get(meta.stem) if _ID_RE.fullmatch(meta.stem) else None
            if found is None or found[0].expires_at <= now:
                self.delete(meta.stem)
                count += 1
        return count
