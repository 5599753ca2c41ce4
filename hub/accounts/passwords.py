"""Password rules and hashing of console accounts (docs/security.md §10).

Rules, NIST SP 800-63B §5.1.1.2 (memorized secrets): at least :data:`MIN_LENGTH` characters
(the issue asks 12; NIST's floor is 8) and at most :data:`MAX_LENGTH`; every printable
character allowed, spaces included; no composition rules; refused when it contains the
username, is one character repeated, or is in the built-in list of common passwords
(``common_passwords.txt``). Passwords are normalised with NFKC before checking and hashing
(§5.1.1.2, "Normalization Process for Stabilized Strings"), so the same password typed on two
keyboards (composed or decomposed Vietnamese) verifies.

Hashing: argon2id through argon2-cffi (OWASP Password Storage Cheat Sheet; RFC 9106). The
parameters come from the settings (default: RFC 9106's low-memory profile, 64 MiB, t=3,
p=4); a hash made with other parameters is replaced at the next successful login
(:meth:`PasswordHasher.check_needs_rehash`).
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from schemas.errors import InvalidInputError

MIN_LENGTH = 12
#: Bounds the work of hashing a hostile value (OWASP: "Implement Proper Password Strength Controls").
MAX_LENGTH = 256


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    lines = (line.strip() for line in text.splitlines())
    return frozenset(normalise(line).casefold() for line in lines if line and not line.startswith("#"))


def password_problems(password: str, username: str) -> list[str]:
    """What is wrong with ``password`` for ``username`` (English; empty: acceptable)."""
    value = normalise(password)
    problems = []
    if len(value) < MIN_LENGTH:
        problems.append(f"at least {MIN_LENGTH} characters")
    if len(value) > MAX_LENGTH:
        problems.append(f"at most {MAX_LENGTH} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        problems.append("no control characters")
    folded = value.casefold()
    if username and username.casefold() in folded:
        problems.append("must not contain the username")
    if len(set(folded)) == 1:
        problems.append("not one character repeated")
    if folded in common_passwords():
        problems.append("too common (in the list of common passwords)")
    return problems


def check_password(password: str, username: str) -> str:
    """``password`` normalised; :class:`InvalidInputError` (422) naming every broken rule."""
    problems = password_problems(password, username)
    if problems:
        raise InvalidInputError(
            "password refused: " + "; ".join(problems),
            message_vi=f"mật khẩu không đạt yêu cầu: tối thiểu {MIN_LENGTH} ký tự, không chứa tên "
            "đăng nhập, không nằm trong danh sách mật khẩu phổ biến",
            details={"problems": problems},
        )
    return normalise(password)


class Passwords:
    """argon2id hashing with the configured parameters, and a dummy hash for unknown users."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        #: Verified when the username is unknown, so the answer takes as long as for a known one.
        self._dummy = self._hasher.hash("dummy password for unknown users")

    def hash(self, password: str) -> str:
        return self._hasher.hash(normalise(password))

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored`` (``None``: check a dummy hash and fail)."""
        try:
            ok = self._hasher.verify(stored or self._dummy, normalise(password[: MAX_LENGTH * 4]))
        except (VerificationError, InvalidHashError):
            return False
        return ok and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)
