"""The keyed digest of a dossier owner's ID number (docs/security.md §6).

A CCCD has 12 digits and a CMND 9: an unsalted hash of one is reversed by trying every number
(10^12 SHA-256 in minutes on a GPU). The hub stores ``HMAC-SHA256(key, id_number)`` instead, with
a key that is not in the database (OWASP Password Storage Cheat Sheet, "peppering"; RFC 2104), so
a copy of the ``dossiers`` table alone cannot be reversed.

The key is the setting ``lookup.owner_id_key`` (``HUB_LOOKUP__OWNER_ID_KEY`` or the secret
file ``hub_lookup__owner_id_key``). It is required where the hub reads a secrets directory (a
production deployment, docs/deployment.md §2); elsewhere (demo, development, tests) one is
generated once and kept in ``<data_dir>/secrets/lookup_owner_id_key``.

Rows written before the key (plain SHA-256) or under another key are re-keyed by
:func:`rehash_owner_ids` (``hub lookup rehash``) from the ID number the stored dossier holds.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from pathlib import Path

from sqlalchemy import bindparam, update

from hub.config import Settings
from hub.db.models import DossierRow
from hub.db.session import Database
from schemas.errors import ConfigurationError

log = logging.getLogger("hub.lookup")

#: Where a generated key is kept, under ``data_dir``.
GENERATED_KEY_PATH = Path("secrets") / "lookup_owner_id_key"


class OwnerIdHasher:
    """``HMAC-SHA256(key, id_number)`` as 64 hex digits; compares in constant time."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ConfigurationError("lookup.owner_id_key must be at least 16 bytes")
        self._key = key
        #: Compared against when a code is unknown, so that case does the same work.
        self.dummy = self.digest("no such dossier")

    @classmethod
    def from_settings(cls, settings: Settings) -> OwnerIdHasher:
        return cls(owner_id_key(settings))

    def digest(self, id_number: str) -> str:
        return hmac.new(self._key, id_number.strip().encode(), hashlib.sha256).hexdigest()

    def matches(self, id_number: str, stored: str | None) -> bool:
        """Whether ``id_number`` is the one behind ``stored``; the same work when ``stored`` is
        ``None`` (no such dossier) or the number is empty."""
        same = hmac.compare_digest(self.digest(id_number), stored or self.dummy)
        return same and stored is not None and bool(id_number.strip())


def owner_id_key(settings: Settings) -> bytes:
    """The configured key; else, without a secrets directory, the generated one (made once)."""
    configured = settings.lookup.owner_id_key
    if configured is not None:
        return configured.get_secret_value().encode()
    if settings.secrets_dir is not None:
        raise ConfigurationError(
            "lookup.owner_id_key is required when a secrets directory is used: put a random value "
            "(openssl rand -base64 32) in the secret file hub_lookup__owner_id_key",
            message_vi="thiếu khóa lookup.owner_id_key (tệp bí mật hub_lookup__owner_id_key)",
        )
    return _generated_key(settings.data_dir / GENERATED_KEY_PATH)


def _generated_key(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_urlsafe(32))
            try:
                os.link(temporary, path)  # atomic, and never replaces a key another process made
                log.warning(
                    "lookup.owner_id_key not configured: generated one in %s; set the secret "
                    "hub_lookup__owner_id_key in production (docs/security.md §6)",
                    path,
                )
            except FileExistsError:
                pass
        finally:
            os.unlink(temporary)
    return path.read_text(encoding="ascii").strip().encode()


def rehash_owner_ids(db: Database, hasher: OwnerIdHasher, *, batch_size: int = 500) -> int:
    """Store every dossier's owner digest under ``hasher``'s key; how many rows changed.

    Reads the ID number from the stored dossier document, in batches (one short transaction
    each); idempotent, and safe beside a running hub (a concurrent intake writes the same digest).
    """
    changed = 0
    after = 0
    statement = update(DossierRow).where(DossierRow.id == bindparam("b_id"))
    while True:
        with db.transaction() as session:
            rows = session.execute(
                DossierRow.page(after, batch_size, DossierRow.owner_id_hash, DossierRow.document)
            ).all()
            if not rows:
                return changed
            updates = []
            for row in rows:
                number = ((row.document or {}).get("owner") or {}).get("id_number")
                digest = hasher.digest(number) if number else None
                if digest != row.owner_id_hash:
                    updates.append({"b_id": row.id, "owner_id_hash": digest})
            if updates:
                session.connection().execute(statement, updates)
            changed += len(updates)
            after = rows[-1].id
