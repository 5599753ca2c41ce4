"""Server-side console sessions (docs/security.md §10; OWASP Session Management Cheat Sheet).

The cookie holds 256 random bits; the table keeps their SHA-256, so a copy of the database
opens no session. A new session is made at every login (no fixation: a token the browser had
before is never promoted, and it is deleted), ends after ``console.idle_timeout_minutes``
without a request or ``console.absolute_timeout_hours`` after the login, at logout, and when
the account is disabled or its password reset. Each session has a synchronizer CSRF token
(OWASP CSRF Prevention Cheat Sheet): an HMAC of the session token, so the server can put it in
every form without storing it, and only its SHA-256 is kept to check a POST against.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from hub.accounts.service import Account, AccountService, account_of, audit, roles_of
from hub.db.account_tables import ConsoleSession, UserAccount
from hub.db.session import Database


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def csrf_token_for(token: str) -> str:
    """The synchronizer token of the session whose cookie value is ``token``."""
    digest = hmac.new(token.encode("utf-8"), b"hub console csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """A valid session: the cookie's token, the account, and the form token."""

    token: str
    account: Account
    csrf_token: str
    csrf_hash: str

    def csrf_ok(self, given: str | None) -> bool:
        """Whether a submitted form carries this session's token (constant-time compare)."""
        return given is not None and hmac.compare_digest(_sha256(given), self.csrf_hash)


class ConsoleSessions:
    def __init__(self, db: Database, accounts: AccountService) -> None:
        self._db = db
        self._accounts = accounts

    @property
    def _idle(self) -> timedelta:
        return timedelta(minutes=self._accounts.settings.idle_timeout_minutes)

    def start(
        self, account: Account, *, client: str, user_agent: str, replaces: str | None = None
    ) -> ActiveSession:
        """A fresh session for ``account`` (the session ``replaces`` named is deleted)."""
        token = secrets.token_urlsafe(32)
        csrf = csrf_token_for(token)
        now = self._accounts.clock()
        absolute = timedelta(hours=self._accounts.settings.absolute_timeout_hours)
        with self._db.transaction() as session:
            if replaces:
                session.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == _sha256(replaces)))
            # Expired sessions of this account are dropped as it logs in (the table stays small).
            session.execute(
                delete(ConsoleSession).where(
                    ConsoleSession.user_id == account.id,
                    (ConsoleSession.absolute_expires_at <= now) | (ConsoleSession.idle_expires_at <= now),
                )
            )
            session.add(
                ConsoleSession(
                    id_hash=_sha256(token),
                    user_id=account.id,
                    created_at=now,
                    last_seen_at=now,
                    idle_expires_at=min(now + self._idle, now + absolute),
                    absolute_expires_at=now + absolute,
                    csrf_hash=_sha256(csrf),
                    client_address=client[:64],
                    user_agent=user_agent[:300],
                )
            )
            audit(session, account.username, "session.login", account.username, client=client)
        return ActiveSession(token, account, csrf, _sha256(csrf))

    def resolve(self, token: str | None) -> ActiveSession | None:
        """The session of a cookie value, its idle expiry moved on; ``None``: none, expired or
        of a disabled account (an expired row is deleted)."""
        if not token or len(token) > 100:
            return None
        digest = _sha256(token)
        now = self._accounts.clock()
        with self._db.transaction() as session:
            found = session.execute(
                select(ConsoleSession, UserAccount)
                .join(UserAccount, UserAccount.id == ConsoleSession.user_id)
                .where(ConsoleSession.id_hash == digest)
            ).first()
            if found is None:
                return None
            row, user = found
            if row.idle_expires_at <= now or row.absolute_expires_at <= now or user.disabled_at is not None:
                session.delete(row)
                return None
            row.last_seen_at = now
            row.idle_expires_at = min(now + self._idle, row.absolute_expires_at)
            account = account_of(user, roles_of(session, user.id))
            return ActiveSession(token, account, csrf_token_for(token), row.csrf_hash)

    def end(self, active: ActiveSession) -> None:
        """Logout: the session row is deleted (the cookie alone opens nothing any more)."""
        with self._db.transaction() as session:
            session.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == _sha256(active.token)))
            audit(session, active.account.username, "session.logout", active.account.username)
