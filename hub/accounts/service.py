"""Console accounts: create, disable, enable, roles, passwords, login (docs/security.md §10).

Local accounts are the default (issue 11). Every change is written to the audit log with the
acting admin (console) or operator (``hub users``) as actor; who may change accounts is the
caller's business: the console's admin pages require the admin role, the CLI is run by the
operator who holds the database. The last active admin can be neither disabled nor stripped of
the admin role, so the hub always keeps one (as with the admin API keys, §2).

Login (OWASP Authentication Cheat Sheet): an unknown username is checked against a dummy
argon2 hash, so it takes as long as a wrong password; every refusal has the same message.
``console.lockout_threshold`` consecutive failures lock the account for
``console.lockout_seconds``, doubled by each further failure up to ``lockout_max_seconds``;
the failures of one client address are limited too (the ``limits`` moving window of
:class:`hub.auth.throttle.FailedAuthThrottle`), so spraying many usernames is slowed as well.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.accounts.passwords import Passwords, check_password
from hub.audit.log import record
from hub.auth.throttle import FailedAuthThrottle
from hub.config import ConsoleSettings
from hub.db.account_tables import AccountRole, ConsoleSession, UserAccount, UserRole
from hub.db.base import utcnow
from hub.db.session import Database
from schemas.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_REFUSED_VI = "sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đang bị khóa tạm thời"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    username: str
    display_name: str
    unit: str
    roles: frozenset[AccountRole]
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    locked_until: datetime | None
    #: Linked to an identity at the OIDC provider (``console.oidc``; docs/console.md).
    oidc_linked: bool = False

    def has_role(self, *roles: AccountRole) -> bool:
        """Admin passes every role check."""
        return AccountRole.ADMIN in self.roles or any(role in self.roles for role in roles)

    @property
    def role_names(self) -> list[str]:
        return [role.value for role in AccountRole if role in self.roles]


class LoginRefusedError(AuthenticationError):
    """Unknown user, wrong password, disabled or locked account: one answer for all."""


def audit(session: Session, actor: str, action: str, target: str, **details: Any) -> None:
    """One chained audit row in the caller's transaction (the one place accounts write the audit
    log; :func:`hub.audit.log.record`)."""
    record(session, actor=actor[:100], action=action, target=target[:200], details=details)


def parse_roles(roles: Iterable[str | AccountRole]) -> frozenset[AccountRole]:
    """Roles of an account: at least one, each one of :class:`AccountRole`."""
    parsed = set()
    for role in roles:
        try:
            parsed.add(AccountRole(role))
        except ValueError:
            allowed = ", ".join(r.value for r in AccountRole)
            raise InvalidInputError(
                f"unknown role {role!r}; one of {allowed}", message_vi=f"vai trò {role!r} không tồn tại"
            ) from None
    if not parsed:
        raise InvalidInputError(
            "an account needs at least one role", message_vi="tài khoản cần ít nhất một vai trò"
        )
    return frozenset(parsed)


def check_username(username: str) -> str:
    if not USERNAME_RE.match(username):
        raise InvalidInputError(
            f"invalid username {username!r}: 2-64 lower-case letters, digits and ._- only",
            message_vi="tên đăng nhập chỉ gồm chữ thường không dấu, chữ số và ._- (2-64 ký tự)",
        )
    return username


def _text(value: str, field: str, *, required: bool) -> str:
    value = unicodedata.normalize("NFC", value.strip())
    if required and not value:
        raise InvalidInputError(f"{field} is required", message_vi=f"thiếu {field}")
    if len(value) > 200 or any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidInputError(f"{field}: at most 200 characters, no control characters")
    return value


def account_of(row: UserAccount, roles: Iterable[str]) -> Account:
    return Account(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        unit=row.unit,
        roles=frozenset(AccountRole(role) for role in roles),
        disabled=row.disabled_at is not None,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        locked_until=row.locked_until,
        oidc_linked=row.oidc_subject is not None,
    )


def roles_of(session: Session, user_id: int) -> list[str]:
    return list(session.scalars(select(UserRole.role).where(UserRole.user_id == user_id)))


_ACTIVE_ADMIN = exists().where(UserRole.user_id == UserAccount.id, UserRole.role == AccountRole.ADMIN.value)


class AccountService:
    def __init__(
        self, db: Database, settings: ConsoleSettings, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._db = db
        self.settings = settings
        #: The time source of lockouts and sessions (tests replace it: a declared seam).
        self.clock = clock
        self.passwords = Passwords(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self.address_throttle = FailedAuthThrottle(settings.login_failures_per_address_per_minute)

    # -- reading -------------------------------------------------------------------------------

    def has_active_admin(self) -> bool:
        with self._db.sessions() as session:
            query = select(UserAccount.id).where(UserAccount.disabled_at.is_(None), _ACTIVE_ADMIN)
            return session.scalar(select(query.exists())) is True

    def list(self) -> list[Account]:
        with self._db.sessions() as session:
            rows = session.scalars(select(UserAccount).order_by(UserAccount.username)).all()
            roles: dict[int, list[str]] = {}
            for user_id, role in session.execute(select(UserRole.user_id, UserRole.role)):
                roles.setdefault(user_id, []).append(role)
            return [account_of(row, roles.get(row.id, [])) for row in rows]

    def get(self, username: str) -> Account:
        with self._db.sessions() as session:
            row = self._row(session, username)
            return account_of(row, roles_of(session, row.id))

    @staticmethod
    def _row(session: Session, username: str, *, lock: bool = False) -> UserAccount:
        query = select(UserAccount).where(UserAccount.username == username)
        row = session.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise NotFoundError(f"no account {username!r}", message_vi=f"không có tài khoản {username!r}")
        return row

    # -- administration ------------------------------------------------------------------------

    def create(
        self,
        username: str,
        display_name: str,
        password: str,
        roles: Iterable[str | AccountRole],
        *,
        actor: str,
        unit: str = "",
        first_admin: bool = False,
    ) -> Account:
        """A new account; with ``first_admin`` only while no active admin account exists."""
        username = check_username(username)
        display_name = _text(display_name, "display name", required=True)
        unit = _text(unit, "unit", required=False)
        wanted = parse_roles(roles)
        hashed = self.passwords.hash(check_password(password, username))
        try:
            with self._db.transaction() as session:
                if first_admin and self._db.is_postgres:
                    # Two create-admin runs at once: the second waits, then sees the first's admin
                    # (SQLite write transactions are serialised by BEGIN IMMEDIATE already).
                    session.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
                if first_admin and session.scalar(
                    select(
                        select(UserAccount.id)
                        .where(UserAccount.disabled_at.is_(None), _ACTIVE_ADMIN)
                        .exists()
                    )
                ):
                    raise ConflictError(
                        "an admin account exists already; it creates the other accounts",
                        message_vi="đã có tài khoản quản trị; hãy dùng tài khoản đó để tạo tài khoản khác",
                    )
                now = self.clock()
                row = UserAccount(
                    username=username,
                    display_name=display_name,
                    unit=unit,
                    password_hash=hashed,
                    password_changed_at=now,
                    failed_logins=0,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                session.add_all(UserRole(user_id=row.id, role=role.value) for role in wanted)
                audit(
                    session,
                    actor,
                    "account.create",
                    username,
                    roles=sorted(r.value for r in wanted),
                    unit=unit,
                    first_admin=first_admin,
                )
                return account_of(row, (r.value for r in wanted))
        except IntegrityError:
            raise ConflictError(
                f"an account named {username!r} exists already",
                message_vi=f"đã có tài khoản {username!r}",
            ) from None

    def _keep_an_admin(self, session: Session, row: UserAccount) -> None:
        """:class:`ConflictError` when ``row`` is the last active admin (rows locked first)."""
        admins = session.scalars(
            select(UserAccount.id)
            .where(UserAccount.disabled_at.is_(None), _ACTIVE_ADMIN)
            .order_by(UserAccount.id)
            .with_for_update()
        ).all()
        if list(admins) == [row.id]:
            raise ConflictError(
                f"{row.username!r} is the last active admin account; make another admin first",
                message_vi=f"{row.username!r} là tài khoản quản trị cuối cùng; hãy tạo quản trị khác trước",
            )

    def disable(self, username: str, *, actor: str) -> Account:
        """Disable an account and end its sessions."""
        with self._db.transaction() as session:
            row = self._row(session, username, lock=True)
            if row.disabled_at is None:
                self._keep_an_admin(session, row)
                row.disabled_at = self.clock()
                session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == row.id))
                audit(session, actor, "account.disable", username)
            return account_of(row, roles_of(session, row.id))

    def enable(self, username: str, *, actor: str) -> Account:
        with self._db.transaction() as session:
            row = self._row(session, username, lock=True)
            if row.disabled_at is not None:
                row.disabled_at = None
                row.failed_logins = 0
                row.locked_until = None
                audit(session, actor, "account.enable", username)
            return account_of(row, roles_of(session, row.id))

    def set_roles(self, username: str, roles: Iterable[str | AccountRole], *, actor: str) -> Account:
        wanted = parse_roles(roles)
        with self._db.transaction() as session:
            row = self._row(session, username, lock=True)
            before = set(roles_of(session, row.id))
            after = {role.value for role in wanted}
            if before != after:
                if AccountRole.ADMIN.value in before - after and row.disabled_at is None:
                    self._keep_an_admin(session, row)
                session.execute(delete(UserRole).where(UserRole.user_id == row.id))
                session.add_all(UserRole(user_id=row.id, role=role) for role in sorted(after))
                row.updated_at = self.clock()
                audit(session, actor, "account.roles", username, before=sorted(before), after=sorted(after))
            return account_of(row, after)

    def reset_password(self, username: str, password: str, *, actor: str) -> Account:
        """A new password (checked by the rules), the lock cleared, every session ended."""
        hashed = self.passwords.hash(check_password(password, username))
        with self._db.transaction() as session:
            row = self._row(session, username, lock=True)
            row.password_hash = hashed
            row.password_changed_at = self.clock()
            row.failed_logins = 0
            row.locked_until = None
            session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == row.id))
            audit(session, actor, "account.password_reset", username)
            return account_of(row, roles_of(session, row.id))

    def unlink_oidc(self, username: str, *, actor: str) -> Account:
        """Forget the account's identity at the OIDC provider (a reissued identity): the next
        sign-in there links it again by ``console.oidc.match_claim`` (docs/console.md)."""
        with self._db.transaction() as session:
            row = self._row(session, username, lock=True)
            if row.oidc_subject is not None:
                audit(session, actor, "account.oidc_unlink", username, issuer=row.oidc_issuer)
                row.oidc_issuer = row.oidc_subject = None
                row.updated_at = self.clock()
            return account_of(row, roles_of(session, row.id))

    # -- login -----------------------------------------------------------------------------------

    def _lock_for(self, failures: int) -> timedelta | None:
        threshold = self.settings.lockout_threshold
        if threshold == 0 or failures < threshold:
            return None
        seconds = self.settings.lockout_seconds * 2 ** min(failures - threshold, 20)
        return timedelta(seconds=min(seconds, self.settings.lockout_max_seconds))

    def login(self, username: str, password: str, *, client: str) -> Account:
        """The account when ``password`` is right and the account usable; else
        :class:`LoginRefusedError` (401), or :class:`TooManyRequestsError` (429) while
        ``client`` has used up its failures."""
        self.address_throttle.check(client)
        now = self.clock()
        with self._db.transaction() as session:
            row = session.scalar(
                select(UserAccount).where(UserAccount.username == username[:64]).with_for_update()
            )
            locked = row is not None and row.locked_until is not None and row.locked_until > now
            # Verified even when the account is unknown or locked: the same work either way.
            ok = self.passwords.verify(row.password_hash if row else None, password) and not locked
            if row is None or not ok or row.disabled_at is not None:
                if row is not None and not locked and row.disabled_at is None:
                    row.failed_logins += 1
                    lock = self._lock_for(row.failed_logins)
                    audit(
                        session,
                        f"client:{client}",
                        "account.login_failed",
                        row.username,
                        failures=row.failed_logins,
                    )
                    if lock is not None:
                        row.locked_until = now + lock
                        audit(
                            session,
                            f"client:{client}",
                            "account.locked",
                            row.username,
                            seconds=lock.total_seconds(),
                        )
                self.address_throttle.failed(client)
                refused = LoginRefusedError(
                    "wrong username or password, or the account is locked", message_vi=_REFUSED_VI
                )
            else:
                refused = None
                row.failed_logins = 0
                row.locked_until = None
                row.last_login_at = now
                if self.passwords.needs_rehash(row.password_hash):
                    row.password_hash = self.passwords.hash(password)
                    audit(session, row.username, "account.password_rehash", row.username)
                account = account_of(row, roles_of(session, row.id))
        if refused is not None:
            raise refused
        return account
