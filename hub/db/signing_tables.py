"""Bindings of server-held signing keys to accounts, set by an admin (docs/security.md,
"Signing keys bound to accounts").

A row lets one principal — ``user:<username>`` (a console account and the API keys tied to it)
or an API key's name — use one key of ``[signing.keys]``. The key's purpose stays in the
configuration; the effective principals of a key are its configured ``principals`` and its rows
here (:class:`hub.services.key_bindings.BoundGrants`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base, utcnow


class SigningKeyBinding(Base):
    __tablename__ = "signing_key_bindings"

    key_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    principal: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: The admin who bound it (``user:<username>`` in the console, ``cli:<login>`` from the CLI).
    bound_by: Mapped[str] = mapped_column(String(100))
    bound_at: Mapped[datetime] = mapped_column(default=utcnow)
