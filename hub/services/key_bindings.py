"""Signing keys bound to accounts by an admin, and the audit of the key configuration (issue 11;
docs/security.md, "Signing keys bound to accounts"; docs/signing.md §10.5).

A key's purpose (``personal`` | ``seal``) and its configured ``principals`` come from
``[signing.keys.<id>]``; an admin adds principals at run time (:class:`KeyBindingService`, the
console page ``/console/admin/signing-keys`` and ``hub keys bind``). The rules, enforced here
and nowhere else:

* the key must be configured (unknown key: 404);
* ``user:<username>``: the account exists (404), is enabled (422) and holds the role the key's
  purpose needs — ``officer`` for a personal key (Decree 30/2020 Art. 13(7)), ``clerk`` for the
  seal (Art. 32(2), 33(2)) — (422);
* an API key's name: the key exists and is not revoked (404), with that same role (422);
* a principal bound already (here or in the configuration) is a 409; unbinding what only the
  configuration binds is a 422 (change the file); each bind/unbind writes one audit row
  (``signing_key.bind`` / ``signing_key.unbind``) with the key's principals before and after,
  in the same transaction as the change.

The signing checks read the *effective* principals (configuration ∪ bindings) through
:class:`BoundGrants`, a :class:`~collections.abc.Mapping` of :class:`~signing.facade.KeyGrant`
that replaces the facade's configured grants. It reloads the bindings when asked
(:meth:`BoundGrants.refresh`: the signing API does before every signature, in a worker
thread) and otherwise when its copy is older than :data:`PROPAGATION_SECONDS`; the process that
makes a change refreshes at once. So a binding made in another process (the CLI, a second hub)
is seen by the signing API at once and by the console desk and result signing within
:data:`PROPAGATION_SECONDS`.

:func:`record_config_snapshot` (called by :mod:`hub.runtime` at every start) compares the
configured keys' purposes, principals and certificate fingerprints with the last snapshot in the
audit log and writes one ``config.signing_keys`` row (before/after) when they differ.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.audit.log import hold_chain, record
from hub.db.account_tables import UserAccount, UserRole
from hub.db.base import utcnow
from hub.db.models import ApiKey, AuditEntry
from hub.db.signing_tables import SigningKeyBinding
from schemas.errors import ConflictError, InvalidInputError, NotFoundError
from signing.settings import KeyPurpose, Pkcs12KeySettings, SigningSettings

if TYPE_CHECKING:
    from hub.config import Settings
    from hub.db.session import Database
    from signing.facade import KeyGrant
    from signing.settings import Pkcs11KeySettings

__all__ = [
    "CONFIG_ACTION",
    "PROPAGATION_SECONDS",
    "BoundGrants",
    "Certificate",
    "KeyBindingService",
    "KeyView",
    "certificate_of",
    "config_snapshot",
    "record_config_snapshot",
]

#: How old the bindings a process holds may be, outside the signing API (which reads them
#: before each signature): the longest a change made elsewhere takes to reach the desk.
PROPAGATION_SECONDS = 5.0
#: The audit action of a change of the configured keys seen at start.
CONFIG_ACTION = "config.signing_keys"
#: The role each purpose needs of a bound principal (as :mod:`hub.services.signing_authority`).
_ROLE_FOR_PURPOSE = {KeyPurpose.PERSONAL: "officer", KeyPurpose.SEAL: "clerk"}


def _load_bindings(db: Database) -> dict[str, frozenset[str]]:
    with db.sessions() as session:
        rows = session.execute(select(SigningKeyBinding.key_id, SigningKeyBinding.principal)).all()
    found: dict[str, set[str]] = {}
    for key_id, principal in rows:
        found.setdefault(key_id, set()).add(principal)
    return {key_id: frozenset(names) for key_id, names in found.items()}


def _merge(config: Mapping[str, KeyGrant], bound: Mapping[str, frozenset[str]]) -> dict[str, KeyGrant]:
    """Configured keys only: a binding of a key no longer configured grants nothing."""
    from signing.facade import KeyGrant

    return {
        key_id: KeyGrant(grant.purpose, grant.principals | bound.get(key_id, frozenset()))
        for key_id, grant in config.items()
    }


# "KeyGrant" by name: importing signing.facade loads pyHanko, which `hub worker` and the start-up
# audit of the configured keys (record_config_snapshot) do not need (docs/architecture.md)
class BoundGrants(Mapping[str, "KeyGrant"]):
    """The configured grants with the admin's bindings added (thread-safe; see the module)."""

    def __init__(
        self,
        config: Mapping[str, KeyGrant],
        db: Database,
        *,
        max_age: float = PROPAGATION_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = dict(config)
        self._db = db
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded_at: float | None = None
        self._current: dict[str, KeyGrant] = dict(self.config)

    def refresh(self) -> None:
        """Read the bindings now (blocking: call from a worker thread in async code)."""
        merged = _merge(self.config, _load_bindings(self._db))
        with self._lock:
            self._current, self._loaded_at = merged, self._clock()

    def _grants(self) -> dict[str, KeyGrant]:
        with self._lock:
            fresh = self._loaded_at is not None and self._clock() - self._loaded_at < self._max_age
            current = self._current
        if not fresh:
            self.refresh()
            with self._lock:
                current = self._current
        return current

    def __getitem__(self, key_id: str) -> KeyGrant:
        return self._grants()[key_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._grants())

    def __len__(self) -> int:
        return len(self._grants())


@dataclass(frozen=True, slots=True)
class Certificate:
    """What the key page shows of a key's certificate (public data only)."""

    subject: str
    not_before: datetime
    not_after: datetime
    sha256: str


def certificate_of(
    spec: Pkcs12KeySettings | Pkcs11KeySettings, environ: Mapping[str, str]
) -> Certificate | None:
    """The certificate of a PKCS#12 key (read with its password from ``environ``); ``None`` for a
    token key (opening a token from a page could lock it after wrong PINs) or an unreadable file."""
    if not isinstance(spec, Pkcs12KeySettings):
        return None
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import pkcs12

    password = environ.get(spec.password_env)
    if not password:
        return None
    try:
        _key, cert, _extra = pkcs12.load_key_and_certificates(spec.path.read_bytes(), password.encode())
    except (OSError, ValueError):
        return None
    if cert is None:
        return None
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
    )


@dataclass(frozen=True, slots=True)
class Binding:
    principal: str
    source: str
    """``config`` (``[signing.keys.<id>].principals``) or ``admin`` (a row of the bindings)."""
    bound_by: str | None = None
    bound_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class KeyView:
    """One configured key as the admin sees it."""

    key_id: str
    kind: str
    purpose: KeyPurpose
    role: str
    certificate: Certificate | None
    bindings: tuple[Binding, ...]


def _principals_of(session: Session, key_id: str, configured: frozenset[str]) -> list[str]:
    bound = session.scalars(select(SigningKeyBinding.principal).where(SigningKeyBinding.key_id == key_id))
    return sorted(configured | set(bound))


class KeyBindingService:
    """Bind and unbind principals to configured keys (the rules of the module docstring)."""

    def __init__(
        self,
        db: Database,
        signing: SigningSettings,
        *,
        environ: Mapping[str, str] | None = None,
        grants: Mapping[str, KeyGrant] | None = None,
    ) -> None:
        self._db = db
        self._signing = signing
        self._environ: Mapping[str, str] = environ or {}
        #: The signing facade's grants of this process, refreshed after each change.
        self._grants = grants

    def _spec(self, key_id: str) -> Pkcs12KeySettings | Pkcs11KeySettings:
        spec = self._signing.keys.get(key_id)
        if spec is None:
            raise NotFoundError(
                f"no signing key {key_id!r} is configured",
                message_vi=f"Không có khóa ký '{key_id}' trong cấu hình",
                details={"key_id": key_id},
            )
        return spec

    def keys(self) -> list[KeyView]:
        """Every configured key with its principals (configuration first, then bindings)."""
        with self._db.sessions() as session:
            rows = session.scalars(select(SigningKeyBinding).order_by(SigningKeyBinding.principal)).all()
        by_key: dict[str, list[SigningKeyBinding]] = {}
        for row in rows:
            by_key.setdefault(row.key_id, []).append(row)
        views = []
        for key_id, spec in sorted(self._signing.keys.items()):
            configured = [Binding(name, "config") for name in sorted(spec.principals)]
            bound = [
                Binding(row.principal, "admin", row.bound_by, row.bound_at)
                for row in by_key.get(key_id, [])
                if row.principal not in spec.principals
            ]
            views.append(
                KeyView(
                    key_id,
                    spec.kind,
                    spec.purpose,
                    _ROLE_FOR_PURPOSE[spec.purpose],
                    certificate_of(spec, self._environ),
                    (*configured, *bound),
                )
            )
        return views

    def bindings(self) -> list[tuple[str, Binding]]:
        """``(key id, binding)`` of every configured and bound principal, by key."""
        return [(view.key_id, binding) for view in self.keys() for binding in view.bindings]

    def _check_principal(self, session: Session, principal: str, purpose: KeyPurpose) -> None:
        role = _ROLE_FOR_PURPOSE[purpose]
        if principal.startswith("user:"):
            username = principal.removeprefix("user:")
            account = session.scalar(select(UserAccount).where(UserAccount.username == username))
            if account is None:
                raise NotFoundError(
                    f"no account {username!r}",
                    message_vi=f"Không có tài khoản '{username}'",
                    details={"principal": principal},
                )
            if account.disabled_at is not None:
                raise InvalidInputError(
                    f"account {username!r} is disabled",
                    message_vi=f"Tài khoản '{username}' đang bị khóa",
                    details={"principal": principal, "reason": "account_disabled"},
                )
            roles = set(session.scalars(select(UserRole.role).where(UserRole.user_id == account.id)))
            held = role in roles
        else:
            key = session.scalar(select(ApiKey).where(ApiKey.name == principal))
            if key is None or key.revoked_at is not None:
                raise NotFoundError(
                    f"no active API key {principal!r}",
                    message_vi=f"Không có khóa API '{principal}' đang hoạt động",
                    details={"principal": principal},
                )
            held = key.role == role
        if not held:
            raise InvalidInputError(
                f"a {purpose.value} key may be bound only to a {role!r}; {principal!r} is not one",
                message_vi=(
                    f"Khóa loại {purpose.value} chỉ gán được cho người có vai trò {role}; "
                    f"'{principal}' không có vai trò này"
                ),
                details={"principal": principal, "purpose": purpose.value, "reason": "role_mismatch"},
            )

    def bind(self, key_id: str, principal: str, *, actor: str) -> list[str]:
        """Bind ``principal`` to ``key_id``; the key's effective principals after it."""
        try:
            after = self._bind(key_id, principal, actor)
        except IntegrityError:  # the same binding committed meanwhile by another admin
            raise ConflictError(
                f"{principal!r} is bound to {key_id!r} already",
                message_vi=f"'{principal}' đã được gán khóa '{key_id}'",
            ) from None
        self._changed()
        return after

    def _bind(self, key_id: str, principal: str, actor: str) -> list[str]:
        spec = self._spec(key_id)
        principal = _principal(principal)
        configured = frozenset(spec.principals)
        if principal in configured:
            raise ConflictError(
                f"{principal!r} is bound to {key_id!r} by the configuration already",
                message_vi=f"'{principal}' đã được gán khóa '{key_id}' trong tệp cấu hình",
            )
        with self._db.transaction() as session:
            self._check_principal(session, principal, spec.purpose)
            before = _principals_of(session, key_id, configured)
            if principal in before:
                raise ConflictError(
                    f"{principal!r} is bound to {key_id!r} already",
                    message_vi=f"'{principal}' đã được gán khóa '{key_id}'",
                )
            session.add(
                SigningKeyBinding(key_id=key_id, principal=principal, bound_by=actor[:100], bound_at=utcnow())
            )
            session.flush()
            after = _principals_of(session, key_id, configured)
            _audit(session, actor, "signing_key.bind", key_id, spec.purpose, principal, before, after)
        return after

    def unbind(self, key_id: str, principal: str, *, actor: str) -> list[str]:
        """Remove the admin's binding of ``principal`` to ``key_id``; the principals after it."""
        spec = self._spec(key_id)
        principal = _principal(principal)
        configured = frozenset(spec.principals)
        with self._db.transaction() as session:
            before = _principals_of(session, key_id, configured)
            removed = session.execute(
                delete(SigningKeyBinding).where(
                    SigningKeyBinding.key_id == key_id, SigningKeyBinding.principal == principal
                )
            )
            if not getattr(removed, "rowcount", 0):
                if principal in configured:
                    raise InvalidInputError(
                        f"{principal!r} is bound to {key_id!r} by the configuration file; change it there",
                        message_vi=f"'{principal}' được gán khóa '{key_id}' trong tệp cấu hình; hãy sửa ở đó",
                        details={"principal": principal, "reason": "configured"},
                    )
                raise NotFoundError(
                    f"{principal!r} is not bound to {key_id!r}",
                    message_vi=f"'{principal}' chưa được gán khóa '{key_id}'",
                )
            after = _principals_of(session, key_id, configured)
            _audit(session, actor, "signing_key.unbind", key_id, spec.purpose, principal, before, after)
        self._changed()
        return after

    def _changed(self) -> None:
        if isinstance(self._grants, BoundGrants):
            self._grants.refresh()


def _principal(value: str) -> str:
    text = unicodedata.normalize("NFC", value.strip())
    if not text or len(text) > 200 or any(unicodedata.category(ch)[0] in "CZ" for ch in text):
        raise InvalidInputError(
            "a principal is 'user:<username>' or an API key's name",
            message_vi="Người được gán là 'user:<tên đăng nhập>' hoặc tên một khóa API",
        )
    return text


def _audit(
    session: Session,
    actor: str,
    action: str,
    key_id: str,
    purpose: KeyPurpose,
    principal: str,
    before: list[str],
    after: list[str],
) -> None:
    record(
        session,
        actor=actor,
        action=action,
        target=f"signing_key:{key_id}",
        details={"key_id": key_id, "purpose": purpose.value, "principal": principal},
        before={"principals": before},
        after={"principals": after},
    )


# --- the configuration's keys, audited at start ---------------------------------------------------


def config_snapshot(signing: SigningSettings, environ: Mapping[str, str]) -> dict[str, Any]:
    """The configured keys as audited: purpose, configured principals, kind and (PKCS#12) the
    certificate's SHA-256 fingerprint. No path, label or secret."""
    snapshot: dict[str, Any] = {}
    for key_id, spec in sorted(signing.keys.items()):
        certificate = certificate_of(spec, environ)
        snapshot[key_id] = {
            "kind": spec.kind,
            "purpose": spec.purpose.value,
            "principals": sorted(spec.principals),
            "certificate_sha256": certificate.sha256 if certificate is not None else None,
        }
    return {"keys": snapshot}


def record_config_snapshot(db: Database, settings: Settings, *, actor: str = "system:start") -> bool:
    """Write one ``config.signing_keys`` audit row when the configured keys differ from the last
    one recorded (the first start with keys records the initial snapshot). Whether a row was
    written. The check is made under the audit chain's lock, so processes starting together
    write one row."""
    current = config_snapshot(settings.signing, settings.secret_environment())
    with db.transaction() as session:
        hold_chain(session)
        last = session.scalar(
            select(AuditEntry.after)
            .where(AuditEntry.action == CONFIG_ACTION)
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
        if last == current or (last is None and not current["keys"]):
            return False  # unchanged, or no key configured ever
        record(
            session,
            actor=actor,
            action=CONFIG_ACTION,
            target="config:signing.keys",
            details={"keys": len(current["keys"]), "first": last is None},
            before=last,
            after=current,
        )
    return True
