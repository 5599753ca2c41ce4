"""Console accounts against a real database (SQLite and PostgreSQL): passwords, roles, lockout."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.accounts.passwords import password_problems
from hub.accounts.service import AccountService, LoginRefusedError
from hub.accounts.sessions import ConsoleSessions
from hub.db.account_tables import AccountRole, UserAccount
from hub.db.models import AuditEntry
from hub.db.session import Database
from schemas.errors import ConflictError, InvalidInputError, TooManyRequestsError
from tests.accounts.support import OTHER_PASSWORD, PASSWORD, Clock, console_settings


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(db: Database, clock: Clock) -> AccountService:
    return AccountService(db, console_settings(lockout_threshold=3, lockout_seconds=60), clock=clock)


def _audit(db: Database, target: str) -> list[str]:
    with db.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry.action).where(AuditEntry.target == target).order_by(AuditEntry.id)
            )
        )


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short pass", "at least 12 characters"),
        ("lan.nguyen-2025-abc", "must not contain the username"),
        ("Password1234", "too common (in the list of common passwords)"),
        ("matkhau@1234", "too common (in the list of common passwords)"),
        ("aaaaaaaaaaaaaaa", "not one character repeated"),
        ("x" * 257 + "y", "at most 256 characters"),
    ],
)
def test_password_rules_refuse(password: str, problem: str) -> None:
    assert problem in password_problems(password, "lan.nguyen")


def test_password_rules_accept_long_phrases_with_vietnamese_and_spaces() -> None:
    assert password_problems(PASSWORD, "lan.nguyen") == []
    assert password_problems(OTHER_PASSWORD, "lan.nguyen") == []


def test_create_stores_an_argon2id_hash_never_the_password(db: Database, accounts: AccountService) -> None:
    account = accounts.create(
        "lan.nguyen", "Nguyễn Thị Lan", PASSWORD, ["officer", "clerk"], actor="admin", unit="Văn phòng"
    )
    assert account.roles == {AccountRole.OFFICER, AccountRole.CLERK}
    with db.sessions() as session:
        stored = session.scalar(select(UserAccount.password_hash).where(UserAccount.username == "lan.nguyen"))
    assert stored is not None
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert PASSWORD not in stored
    assert _audit(db, "lan.nguyen") == ["account.create"]


def test_create_refuses_weak_passwords_and_bad_input_and_stores_nothing(accounts: AccountService) -> None:
    with pytest.raises(InvalidInputError, match="password refused"):
        accounts.create("lan.nguyen", "Lan", "lan.nguyen123456", ["officer"], actor="admin")
    with pytest.raises(InvalidInputError, match="unknown role"):
        accounts.create("lan.nguyen", "Lan", PASSWORD, ["superuser"], actor="admin")
    with pytest.raises(InvalidInputError, match="at least one role"):
        accounts.create("lan.nguyen", "Lan", PASSWORD, [], actor="admin")
    with pytest.raises(InvalidInputError, match="invalid username"):
        accounts.create("Lan Nguyen", "Lan", PASSWORD, ["officer"], actor="admin")
    assert accounts.list() == []


def test_first_admin_only_once(accounts: AccountService) -> None:
    accounts.create("root", "Quản trị", PASSWORD, ["admin"], actor="cli", first_admin=True)
    with pytest.raises(ConflictError, match="admin account exists"):
        accounts.create("root2", "Quản trị 2", PASSWORD, ["admin"], actor="cli", first_admin=True)
    assert [a.username for a in accounts.list()] == ["root"]


def test_the_last_admin_cannot_be_disabled_or_demoted(accounts: AccountService) -> None:
    accounts.create("root", "Quản trị", PASSWORD, ["admin"], actor="cli")
    with pytest.raises(ConflictError, match="last active admin"):
        accounts.disable("root", actor="root")
    with pytest.raises(ConflictError, match="last active admin"):
        accounts.set_roles("root", ["officer"], actor="root")
    accounts.create("root2", "Quản trị 2", PASSWORD, ["admin", "technician"], actor="root")
    assert accounts.disable("root", actor="root2").disabled


def test_login_locks_after_repeated_failures_and_backs_off(
    db: Database, accounts: AccountService, clock: Clock
) -> None:
    accounts.create("lan.nguyen", "Lan", PASSWORD, ["officer"], actor="admin")
    for _ in range(3):
        with pytest.raises(LoginRefusedError):
            accounts.login("lan.nguyen", "wrong password!!", client="10.0.0.1")
    # locked: even the right password is refused, with the same answer
    with pytest.raises(LoginRefusedError):
        accounts.login("lan.nguyen", PASSWORD, client="10.0.0.1")
    clock.advance(seconds=61)
    with pytest.raises(LoginRefusedError):
        accounts.login("lan.nguyen", "wrong password!!", client="10.0.0.1")
    clock.advance(seconds=61)  # the second lock lasts 120 s
    with pytest.raises(LoginRefusedError):
        accounts.login("lan.nguyen", PASSWORD, client="10.0.0.1")
    clock.advance(seconds=60)
    assert accounts.login("lan.nguyen", PASSWORD, client="10.0.0.1").username == "lan.nguyen"
    assert accounts.get("lan.nguyen").locked_until is None
    assert _audit(db, "lan.nguyen").count("account.locked") == 2


def test_unknown_users_and_disabled_accounts_get_the_same_refusal(accounts: AccountService) -> None:
    accounts.create("root", "Quản trị", PASSWORD, ["admin"], actor="cli")
    accounts.create("lan.nguyen", "Lan", PASSWORD, ["officer"], actor="root")
    accounts.disable("lan.nguyen", actor="root")
    answers = []
    for username in ("nobody", "lan.nguyen"):
        with pytest.raises(LoginRefusedError) as refused:
            accounts.login(username, PASSWORD, client="10.0.0.2")
        answers.append((refused.value.message, refused.value.message_vi))
    assert answers[0] == answers[1]
    accounts.enable("lan.nguyen", actor="root")
    assert accounts.login("lan.nguyen", PASSWORD, client="10.0.0.2").roles == {AccountRole.OFFICER}


def test_failures_of_one_address_are_limited_across_usernames(db: Database, clock: Clock) -> None:
    accounts = AccountService(db, console_settings(login_failures_per_address_per_minute=3), clock=clock)
    for name in ("a1", "a2", "a3"):
        with pytest.raises(LoginRefusedError):
            accounts.login(name, PASSWORD, client="10.0.0.3")
    with pytest.raises(TooManyRequestsError):
        accounts.login("a4", PASSWORD, client="10.0.0.3")
    with pytest.raises(LoginRefusedError):  # another address is not affected
        accounts.login("a4", PASSWORD, client="10.0.0.4")


def test_login_rehashes_when_the_parameters_changed(db: Database, clock: Clock) -> None:
    old = AccountService(db, console_settings(), clock=clock)
    old.create("lan.nguyen", "Lan", PASSWORD, ["officer"], actor="admin")
    stronger = AccountService(db, console_settings(argon2_memory_kib=2048, argon2_time_cost=2), clock=clock)
    stronger.login("lan.nguyen", PASSWORD, client="10.0.0.5")
    with db.sessions() as session:
        stored = session.scalar(select(UserAccount.password_hash))
    assert stored is not None
    assert stored.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    assert stronger.login("lan.nguyen", PASSWORD, client="10.0.0.5").username == "lan.nguyen"


def test_sessions_expire_when_idle_and_absolutely(db: Database, clock: Clock) -> None:
    accounts = AccountService(
        db, console_settings(idle_timeout_minutes=30, absolute_timeout_hours=2), clock=clock
    )
    sessions = ConsoleSessions(db, accounts)
    account = accounts.create("lan.nguyen", "Lan", PASSWORD, ["officer"], actor="admin")
    idle = sessions.start(account, client="10.0.0.6", user_agent="test")
    clock.advance(minutes=29)
    assert sessions.resolve(idle.token) is not None
    clock.advance(minutes=29)  # still within 30 min of the last request
    assert sessions.resolve(idle.token) is not None
    clock.advance(minutes=31)
    assert sessions.resolve(idle.token) is None
    busy = sessions.start(account, client="10.0.0.6", user_agent="test")
    for _ in range(7):  # a request every 20 minutes, for 2 h 20 min
        clock.advance(minutes=20)
        alive = sessions.resolve(busy.token)
    assert alive is None
    fresh = sessions.start(account, client="10.0.0.6", user_agent="test")
    assert fresh.csrf_ok(fresh.csrf_token)
    assert not fresh.csrf_ok(busy.csrf_token)
    assert not fresh.csrf_ok(None)
    accounts.reset_password("lan.nguyen", OTHER_PASSWORD, actor="admin")
    assert sessions.resolve(fresh.token) is None
