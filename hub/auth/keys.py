"""API keys: ``hub_<prefix>_<secret>`` tokens with one role each.

Only the SHA-256 of the whole token is stored (the secret has 256 bits of entropy, so a slow
password hash buys nothing); the short prefix is kept in clear so operators can tell keys
apart in listings and logs. Creation and revocation are written to the audit log. An optional
bootstrap admin token (``HUB_BOOTSTRAP_ADMIN_TOKEN``) lets a fresh installation create its
first keys: it must be strong (:func:`hub.config.bootstrap_token_problem`), is compared in
constant time, never stored, and stops working once an active admin key exists. The last
active admin key cannot be revoked (docs/security.md §2).

Verified keys are remembered for :data:`KEY_CACHE_SECONDS` (a bounded TTL cache keyed by the
token's hash), so a busy client costs one key lookup every few seconds, not one per request.
A revocation through the same service takes effect at once; one made elsewhere (another
process, ``hub keys revoke``) within :data:`KEY_CACHE_SECONDS`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.audit.log import record
from hub.config import bootstrap_token_problem
from hub.db.account_tables import UserAccount
from hub.db.base import utcnow
from hub.db.models import ApiKey, ApiRole
from hub.db.session import Database
from schemas.codes import validate_agency_code
from schemas.errors import ConfigurationError, ConflictError, InvalidInputError, NotFoundError

TOKEN_RE = re.compile(r"^hub_(?P<prefix>[a-z0-9]{8})_(?P<secret>[A-Za-z0-9_-]{43})$")
BOOTSTRAP_NAME = "bootstrap-admin"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
#: How long a verified key is trusted without looking it up again.
KEY_CACHE_SECONDS = 5.0
#: Most verified keys remembered at once (distinct clients of one process).
KEY_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's name, its role and the agencies it may write dossiers of."""

    name: str
    role: ApiRole
    agency_codes: frozenset[str] = frozenset()
    #: Username of the console account the key is tied to (``api_keys.account``), if any.
    account: str | None = None

    @property
    def identities(self) -> frozenset[str]:
        """Names a grant may list for this caller: the key's name, and ``user:<account>``
        (``[signing.keys.<id>].principals``, docs/security.md §10)."""
        return frozenset({self.name, f"user:{self.account}"} if self.account else {self.name})

    def has_role(self, *roles: ApiRole) -> bool:
        """Admin passes every role check."""
        return self.role is ApiRole.ADMIN or self.role in roles

    @property
    def agency_scope(self) -> frozenset[str] | None:
        """Agencies whose dossiers this caller may write; ``None`` (admin): any."""
        return None if self.role is ApiRole.ADMIN else self.agency_codes


def _agency_codes(codes: Iterable[str]) -> frozenset[str]:
    """Validated agency codes of a key's scope (QCVN 102 or Decision 20/2020 form)."""
    return frozenset(validate_agency_code(code) for code in codes)


def _stored_codes(text: str | None) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    name: str
    role: ApiRole
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    agency_codes: frozenset[str] = frozenset()
    account: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly created key; ``token`` is shown once and never stored."""

    token: str
    info: ApiKeyInfo


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_token(token: str) -> str | None:
    """The display prefix of a well-formed token, else ``None``."""
    match = TOKEN_RE.match(token)
    return match.group("prefix") if match else None


def _new_token() -> tuple[str, str]:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    return f"hub_{prefix}_{secrets.token_urlsafe(32)}", prefix


_ACTIVE_ADMIN = (ApiKey.role == ApiRole.ADMIN.value, ApiKey.revoked_at.is_(None))


def _locked_active_admins(session: Session) -> list[str]:
    """Names of the active admin keys, their rows locked (id order) until the transaction ends."""
    query = select(ApiKey.name).where(*_ACTIVE_ADMIN).order_by(ApiKey.id).with_for_update()
    return list(session.scalars(query).all())


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        name=row.name,
        role=ApiRole(row.role),
        prefix=row.key_prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        agency_codes=_stored_codes(row.agency_codes),
        account=row.account,
    )


def _check_account(session: Session, username: str) -> None:
    """The account a key is tied to must exist and be enabled."""
    disabled = session.execute(
        select(UserAccount.disabled_at).where(UserAccount.username == username)
    ).first()
    if disabled is None or disabled[0] is not None:
        raise InvalidInputError(
            f"no enabled console account {username!r} to tie the key to",
            message_vi=f"không có tài khoản {username!r} đang hoạt động để gắn khóa",
        )


class ApiKeyService:
    def __init__(
        self,
        db: Database,
        *,
        bootstrap_token: str | None = None,
        cache_seconds: float = KEY_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        if bootstrap_token:
            problem = bootstrap_token_problem(bootstrap_token)
            if problem is not None:
                raise ConfigurationError(problem)
        self._bootstrap_hash = hash_token(bootstrap_token) if bootstrap_token else None
        #: Set once an active admin key is seen: the bootstrap token never works again here.
        self._bootstrap_retired = False
        #: Token hash → principal of keys verified in the last ``cache_seconds`` (hits only:
        #: unknown tokens are looked up every time, so guessing fills nothing).
        self._verified: TTLCache[str, Principal] = TTLCache(KEY_CACHE_SIZE, cache_seconds, timer=clock)
        self._verified_lock = threading.Lock()  # TTLCache is not thread-safe
        self._generation = 0  # bumped by each revocation

    def create(
        self,
        name: str,
        role: ApiRole | str,
        *,
        actor: str,
        agency_codes: Iterable[str] = (),
        account: str | None = None,
    ) -> IssuedKey:
        """A new key; a ``source`` key writes only dossiers of ``agency_codes`` (none: nothing);
        ``account``: the console account it is tied to (it stops working when that is disabled)."""
        if not _NAME_RE.match(name):
            raise InvalidInputError(
                f"invalid key name {name!r}: letters, digits and ._@- only, at most 100 characters",
                message_vi=f"tên khóa {name!r} không hợp lệ",
            )
        try:
            api_role = ApiRole(role)
        except ValueError:
            allowed = ", ".join(r.value for r in ApiRole)
            raise InvalidInputError(
                f"unknown role {role!r}; one of {allowed}", message_vi=f"vai trò {role!r} không tồn tại"
            ) from None
        if name == BOOTSTRAP_NAME:
            raise InvalidInputError(f"the name {BOOTSTRAP_NAME!r} is reserved")
        scope = _agency_codes(agency_codes)
        token, prefix = _new_token()
        row = ApiKey(
            name=name,
            role=api_role.value,
            key_prefix=prefix,
            key_hash=hash_token(token),
            agency_codes=" ".join(sorted(scope)) or None,
            account=account,
        )
        try:
            with self._db.transaction() as session:
                if account is not None:
                    _check_account(session, account)
                session.add(row)
                session.flush()
                state = {
                    "role": api_role.value,
                    "prefix": prefix,
                    "agency_codes": sorted(scope),
                    "account": account,
                }
                record(session, actor=actor, action="api_key.create", target=name, details=state, after=state)
        except IntegrityError:
            raise ConflictError(
                f"an API key named {name!r} already exists",
                message_vi=f"đã có khóa API tên {name!r}",
            ) from None
        if api_role is ApiRole.ADMIN:
            self._bootstrap_retired = True
        return IssuedKey(token=token, info=_info(row))

    def list(self) -> list[ApiKeyInfo]:
        with self._db.sessions() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.name)).all()
            return [_info(row) for row in rows]

    def revoke(self, name: str, *, actor: str) -> ApiKeyInfo:
        """Revoke ``name``; :class:`ConflictError` (409) for the last active admin key.

        The active admin keys are locked first, in id order (PostgreSQL ``FOR UPDATE``; SQLite
        transactions are serialised by ``BEGIN IMMEDIATE``), so two admins revoking each
        other's keys at once cannot both succeed and leave the hub without an admin.
        """
        with self._db.transaction() as session:
            admins = _locked_active_admins(session)
            row = session.scalar(select(ApiKey).where(ApiKey.name == name).with_for_update())
            if row is None:
                raise NotFoundError(f"no API key named {name!r}", message_vi=f"không có khóa API {name!r}")
            if row.revoked_at is None and admins == [name]:
                raise ConflictError(
                    f"{name!r} is the last active admin key; create another admin key first",
                    message_vi=f"{name!r} là khóa quản trị cuối cùng còn hiệu lực; "
                    "hãy tạo khóa quản trị khác trước",
                    details={"name": name},
                )
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                record(
                    session,
                    actor=actor,
                    action="api_key.revoke",
                    target=name,
                    details={"prefix": row.key_prefix},
                    before={"revoked_at": None},
                    after={"revoked_at": row.revoked_at.isoformat()},
                )
        self._forget_verified()
        return _info(row)

    def audit_throttled(self, client: str, *, what: str, path: str) -> None:
        """Audit a client address that used up its failed authentications (docs/security.md §2)."""
        with self._db.transaction() as session:
            record(
                session,
                actor=f"client:{client}",
                action="auth.throttled",
                target=path,
                details={"client": client, "last_failure": what},
            )

    def _forget_verified(self) -> None:
        """After a revocation commits: drop every remembered key, and keep a lookup that began
        before the commit from putting its (stale) answer back."""
        with self._verified_lock:
            self._verified.clear()
            self._generation += 1

    def remembered(self, token: str) -> Principal | None:
        """The principal for ``token`` if a key verified in the last :data:`KEY_CACHE_SECONDS`;
        ``None``: ask :meth:`authenticate` (always, for the bootstrap token)."""
        with self._verified_lock:
            return self._verified.get(hash_token(token))

    def _bootstrap(self) -> Principal | None:
        """The bootstrap admin while no active admin key exists, else ``None``."""
        if not self._bootstrap_retired:
            with self._db.sessions() as session:
                self._bootstrap_retired = bool(
                    session.scalar(select(select(ApiKey.id).where(*_ACTIVE_ADMIN).exists()))
                )
        return None if self._bootstrap_retired else Principal(BOOTSTRAP_NAME, ApiRole.ADMIN)

    def authenticate(self, token: str) -> Principal | None:
        """The principal for ``token``, or ``None`` for unknown, malformed or revoked keys and for
        the bootstrap token once an active admin key exists."""
        digest = hash_token(token)
        if self._bootstrap_hash is not None and hmac.compare_digest(digest, self._bootstrap_hash):
            return self._bootstrap()
        if parse_token(token) is None:
            return None
        with self._verified_lock:
            principal = self._verified.get(digest)
            generation = self._generation
        if principal is not None:
            return principal
        with self._db.sessions() as session:
            row = session.execute(
                select(
                    ApiKey.name,
                    ApiKey.role,
                    ApiKey.revoked_at,
                    ApiKey.agency_codes,
                    ApiKey.account,
                    UserAccount.disabled_at,
                )
                .outerjoin(UserAccount, UserAccount.username == ApiKey.account)
                .where(ApiKey.key_hash == digest)
            ).first()
        if (
            row is None
            or row.revoked_at is not None
            or (row.account is not None and row.disabled_at is not None)
        ):
            return None  # a key tied to a disabled account works no more
        principal = Principal(row.name, ApiRole(row.role), _stored_codes(row.agency_codes), row.account)
        with self._verified_lock:
            if generation == self._generation:
                self._verified[digest] = principal
        return principal
