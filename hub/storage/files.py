"""Content store for files served at ``<public_base_url>/files/<id>``.

The portals fetch result papers from ``DuongDanTepTinKetQua`` (docs/portal.md §3.3), so
ids are unguessable (192 random bits) and each file carries its SHA-256 (served as the ETag
and recorded in the dossier's ``ResultDocument.sha256``). A file is written to a temporary
name, fsynced, then renamed, and only then recorded in the database: a crash leaves at
worst an orphan temp file, never a row pointing at half a file. Uploading the same content
again for the same dossier and file name returns the first file (retries stay idempotent).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass, fields
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select

from hub.db.models import StoredFile
from hub.db.session import Database
from schemas.errors import InvalidInputError, NotFoundError, PayloadTooLargeError

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
_MEDIA_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class StoredFileInfo:
    id: str
    filename: str
    media_type: str
    sha256: str
    size: int
    dossier_code: str | None
    created_at: datetime
    _: KW_ONLY
    #: Stored by the call that returned it (not an earlier copy of the same content).
    fresh: bool = False


#: Reads the :class:`StoredFileInfo` of a ``stored_files`` row: its positional fields are columns.
_INFO_COLUMNS = attrgetter(*(field.name for field in fields(StoredFileInfo) if not field.kw_only))


def _info(row: StoredFile, *, fresh: bool = False) -> StoredFileInfo:
    return StoredFileInfo(*_INFO_COLUMNS(row), fresh=fresh)


def clean_filename(name: str) -> str:
    """NFC, no path parts or control characters, at most 200 characters."""
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".")
    return base[:200] or "file"


def _not_found(file_id: str) -> NotFoundError:
    return NotFoundError("file not found", message_vi="không tìm thấy tệp", details={"id": file_id[:40]})


class FileStore:
    def __init__(self, db: Database, root: Path, *, public_base_url: str, max_bytes: int) -> None:
        self._db = db
        self._root = root
        self._base = public_base_url.rstrip("/")
        self._max = max_bytes

    def url_for(self, file_id: str) -> str:
        return f"{self._base}/files/{file_id}"

    def _prepare(self, filename: str, media_type: str, dossier_code: str | None) -> tuple[StoredFile, Path]:
        """The row of a new file (its content still to be written, digested and counted) and
        where to write it."""
        media = media_type.split(";", 1)[0].strip().lower() or "application/octet-stream"
        if not _MEDIA_TYPE_RE.match(media):
            raise InvalidInputError(f"invalid media type {media_type!r}", message_vi="kiểu tệp không hợp lệ")
        file_id = secrets.token_urlsafe(24)
        relative = f"{file_id[:2]}/{file_id}"
        target = self._root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        row = StoredFile(
            id=file_id,
            dossier_code=dossier_code,
            filename=clean_filename(filename),
            media_type=media,
            path=relative,
        )
        return row, target

    def save(
        self,
        data: bytes | BinaryIO | Iterable[bytes],
        *,
        filename: str,
        media_type: str,
        dossier_code: str | None = None,
    ) -> StoredFileInfo:
        """Store ``data`` (bytes, a binary file or chunks), refusing more than ``max_bytes``."""
        row, target = self._prepare(filename, media_type, dossier_code)
        chunks: Iterable[bytes]
        if isinstance(data, bytes | bytearray):
            chunks = [bytes(data)]
        elif hasattr(data, "read"):
            reader: BinaryIO = data  # type: ignore[assignment]  # narrowed by the read() check
            chunks = iter(lambda: reader.read(_CHUNK), b"")
        else:
            chunks = data
        temp = target.with_name(target.name + ".part")
        digest = hashlib.sha256()
        size = 0
        try:
            with open(temp, "wb") as handle:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self._max:
                        raise PayloadTooLargeError(
                            f"file larger than {self._max} bytes",
                            message_vi=f"tệp lớn hơn {self._max} byte",
                            details={"limit": self._max},
                        )
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        row.sha256, row.size = digest.hexdigest(), size
        return self._record(row, target)

    def _record(self, row: StoredFile, target: Path) -> StoredFileInfo:
        same = self._first_copy(row.sha256, row.dossier_code, row.filename, row.media_type)
        if same is not None:
            # A repeated upload (client retry): keep one copy and one download URL.
            target.unlink(missing_ok=True)
            return same
        try:
            with self._db.transaction() as session:
                session.add(row)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return _info(row, fresh=True)

    def _first_copy(
        self, sha256: str, dossier_code: str | None, name: str, media: str
    ) -> StoredFileInfo | None:
        with self._db.sessions() as session:
            same = session.scalar(
                select(StoredFile)
                .where(
                    StoredFile.sha256 == sha256,
                    StoredFile.dossier_code == dossier_code,
                    StoredFile.filename == name,
                    StoredFile.media_type == media,
                )
                .order_by(StoredFile.created_at, StoredFile.id)
                .limit(1)
            )
            return None if same is None else _info(same)

    def first_copy(self, info: StoredFileInfo) -> StoredFileInfo:
        """The oldest stored file with ``info``'s content, dossier, name and type (``info`` itself
        when it is the only one)."""
        return self._first_copy(info.sha256, info.dossier_code, info.filename, info.media_type) or info

    def discard(self, file_id: str) -> None:
        """Remove a file this process stored and nothing refers to (a request that lost)."""
        with self._db.transaction() as session:
            row = session.scalar(select(StoredFile).where(StoredFile.id == file_id))
            if row is None:
                return
            relative = row.path
            session.delete(row)
        (self._root / relative).unlink(missing_ok=True)

    def get(self, file_id: str) -> tuple[StoredFileInfo, Path]:
        """Metadata and on-disk path of a stored file; unknown or malformed ids are 404."""
        if not _ID_RE.match(file_id):
            raise _not_found(file_id)
        with self._db.sessions() as session:
            row = session.scalar(select(StoredFile).where(StoredFile.id == file_id))
            if row is None:
                raise _not_found(file_id)
            info, relative = _info(row), row.path
        path = self._root / relative
        if not path.is_file():
            raise _not_found(file_id)
        return info, path
