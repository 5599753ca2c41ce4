"""Shared pieces of the account tests: cheap argon2 parameters and a settable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hub.config import ConsoleSettings

#: argon2id with 1 MiB and one pass: the tests hash many passwords on a shared machine.
FAST = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
PASSWORD = "Sổ tay cán bộ 2025!"
OTHER_PASSWORD = "correct horse battery staple"


def console_settings(**values: Any) -> ConsoleSettings:
    return ConsoleSettings(**{**FAST, "secure_cookies": False, **values})


class Clock:
    """A clock the test moves on (the accounts' declared time seam)."""

    def __init__(self) -> None:
        self.now = datetime(2025, 11, 25, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
