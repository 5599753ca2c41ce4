"""One-time sign-in links: how ``hub demo`` signs its demo technician in (docs/security.md §10).

A link carries 256 random bits; only their SHA-256 is kept, in the memory of the process that
issued it (nothing is stored in the database, so nothing survives the process). A link opens
one console session for one account, once, within :data:`VALID_SECONDS` of being issued;
issuing, using and a refused use of a known link are audited (``account.signin_link_issue``,
``account.signin_link_use``, ``account.signin_link_refused``). An unknown, used or expired link
gets the login's one refusal (401).

There is no setting that turns this on: only the demo builds a :class:`SignInLinks` and
installs its route on its own hub (:func:`hub.console.signin_link.install_sign_in_links`), so a
hub started by ``hub serve`` from any configuration has no such route.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.accounts.service import Account, AccountService, LoginRefusedError, audit
from hub.db.session import Database

#: How long a link stays valid after it is issued.
VALID_SECONDS = 600
_REFUSED_VI = "đường dẫn đăng nhập không hợp lệ, đã dùng hoặc đã hết hạn"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class _Link:
    username: str
    expires_at: datetime
    used_at: datetime | None = None


class SignInLinks:
    """Links issued by this process (thread-safe: request threads redeem them)."""

    def __init__(self, db: Database, accounts: AccountService, *, valid_seconds: int = VALID_SECONDS) -> None:
        self._db = db
        self._accounts = accounts
        self.valid_seconds = valid_seconds
        self._links: dict[str, _Link] = {}
        self._lock = threading.Lock()

    def issue(self, username: str, *, actor: str) -> str:
        """A new link token for the (existing, enabled) account ``username``."""
        account = self._accounts.get(username)
        if account.disabled:
            raise self._refused()
        token = secrets.token_urlsafe(32)
        expires = self._accounts.clock() + timedelta(seconds=self.valid_seconds)
        with self._db.transaction() as session:
            audit(session, actor, "account.signin_link_issue", username, valid_seconds=self.valid_seconds)
        with self._lock:
            self._links[_digest(token)] = _Link(username, expires)
        return token

    def peek(self, token: str) -> str | None:
        """The account a link would sign in, without using it (``None``: not usable)."""
        now = self._accounts.clock()
        with self._lock:
            link = self._links.get(_digest(token))
            usable = link is not None and link.used_at is None and link.expires_at > now
            return link.username if usable and link is not None else None

    def redeem(self, token: str) -> Account:
        """The link's account, the link used up; :class:`LoginRefusedError` (401) otherwise."""
        now = self._accounts.clock()
        with self._lock:
            link = self._links.get(_digest(token))
            why = None
            if link is not None:
                why = "used" if link.used_at is not None else "expired" if link.expires_at <= now else None
                if why is None:
                    link.used_at = now
        if link is None:
            raise self._refused()
        if why is not None:
            with self._db.transaction() as session:
                audit(session, link.username, "account.signin_link_refused", link.username, reason=why)
            raise self._refused()
        account = self._accounts.get(link.username)
        if account.disabled:
            raise self._refused()
        with self._db.transaction() as session:
            audit(session, account.username, "account.signin_link_use", account.username)
        return account

    @staticmethod
    def _refused() -> LoginRefusedError:
        return LoginRefusedError("the sign-in link is invalid, used or expired", message_vi=_REFUSED_VI)
