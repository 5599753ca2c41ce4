"""Tables of the console accounts (docs/security.md §10): people, their roles, their sessions.

Kept apart from :mod:`hub.db.models` (machines' API keys live there; ``api_keys.account`` may
name the account a key belongs to). A user has several roles (``user_roles``); only the argon2
hash of the password is stored; a console session is stored server-side under the SHA-256 of
its cookie value (OWASP Session Management Cheat Sheet, "Session ID Content"), never the value.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base, utcnow
from hub.db.models import BigId


class AccountRole(enum.StrEnum):
    """Roles of a person (issue 11): the same names as the API roles of :class:`ApiRole`."""

    OFFICER = "officer"
    """Signs with their own key(s) (Decree 30/2020 Art. 13(7))."""
    CLERK = "clerk"
    """Văn thư: applies the agency seal (Decree 30/2020 Art. 32(2), 33(2))."""
    TECHNICIAN = "technician"
    """Operates deliveries and the dead-letter queue."""
    ADMIN = "admin"
    """Manages accounts and keys; passes every role check."""


class UserAccount(Base):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_oidc_identity", "oidc_issuer", "oidc_subject", unique=True),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(200), default="")
    #: argon2id PHC string (``$argon2id$v=19$m=…,t=…,p=…$salt$hash``).
    password_hash: Mapped[str] = mapped_column(String(255))
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Set when an admin disabled the account; a disabled account cannot log in.
    disabled_at: Mapped[datetime | None] = mapped_column()
    #: Failed logins since the last success (back-off and lockout).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    last_login_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: The identity at the OIDC provider this account is linked to (``iss`` + ``sub`` of its ID
    #: tokens), set at its first sign-in there (docs/console.md, "Sign-in through the province's
    #: identity provider"); ``None``: never signed in that way.
    oidc_issuer: Mapped[str | None] = mapped_column(String(500))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True, index=True)


class ConsoleSession(Base):
    """A logged-in console session; the cookie holds the token, this row its SHA-256."""

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Ends after ``console.idle_timeout_minutes`` without a request (moved on by each request).
    idle_expires_at: Mapped[datetime] = mapped_column()
    #: Ends ``console.absolute_timeout_hours`` after the login, whatever the activity.
    absolute_expires_at: Mapped[datetime] = mapped_column(index=True)
    #: SHA-256 of the synchronizer CSRF token of the session (OWASP CSRF Prevention Cheat Sheet).
    csrf_hash: Mapped[str] = mapped_column(String(64))
    client_address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
