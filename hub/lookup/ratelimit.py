"""Throttles of the public lookup (docs/security.md §5), on the ``limits`` library.

Lookups are public and answer "not found" for wrong ID numbers, so unthrottled clients could
guess ID numbers. Two moving-window limits (in process memory) make that impractical:

- per client address (:class:`RateLimiter`): lookups per minute. The address is the TCP peer,
  or what a configured trusted proxy says (``api.trusted_proxies``); a forwarded header from
  anyone else is ignored, so rotating it gains nothing.
- per dossier code (:class:`CodeAttemptLimiter`): wrong ID numbers per hour from all clients
  together, so many addresses (a botnet) cannot guess one dossier's owner either. Codes that
  do not exist are counted the same way, so a 429 tells nothing about which codes exist
  (OWASP Authentication Cheat Sheet, "Protect against automated attacks").

Each process counts for itself: behind several API processes, a client gets up to that many
times the budget; put a limit at the reverse proxy as well.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from schemas.errors import TooManyRequestsError


class _Limit:
    """``amount`` hits of one ``limits`` item per key, counted in this process's memory; an
    ``amount`` of 0 disables the limit."""

    def __init__(self, per: type[RateLimitItem], amount: int, refusal: tuple[str, str]) -> None:
        self._item = per(amount) if amount > 0 else None
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._refusal = refusal

    def _allow(self, key: str, *, count: bool) -> None:
        """Raise :class:`TooManyRequestsError` (429, with the wait) when ``key`` has used up the
        limit; with ``count`` this call is one more hit, else it only looks."""
        if self._item is None:
            return
        if (self._limiter.hit if count else self._limiter.test)(self._item, key):
            return
        reset = self._limiter.get_window_stats(self._item, key).reset_time
        message, message_vi = self._refusal
        wait = max(1, math.ceil(reset - time.time()))
        raise TooManyRequestsError(message, message_vi=message_vi, retry_after=wait)


class RateLimiter(_Limit):
    """Lookups per client address and minute; ``per_minute`` 0 disables it."""

    def __init__(self, per_minute: int) -> None:
        refusal = ("too many lookups; try again later", "tra cứu quá nhiều lần, vui lòng thử lại sau")
        super().__init__(RateLimitItemPerMinute, per_minute, refusal)

    def check(self, client: str) -> None:
        """Count one lookup for ``client`` or raise :class:`TooManyRequestsError` (429)."""
        self._allow(client, count=True)


class CodeAttemptLimiter(_Limit):
    """Wrong ID numbers per dossier code and hour; ``per_hour`` 0 disables it."""

    def __init__(self, per_hour: int) -> None:
        refusal = (
            "too many wrong ID numbers for this dossier code; try again later",
            "nhập sai số giấy tờ quá nhiều lần cho mã hồ sơ này, vui lòng thử lại sau",
        )
        super().__init__(RateLimitItemPerHour, per_hour, refusal)

    def check(self, code: str) -> None:
        """Raise :class:`TooManyRequestsError` (429) while ``code`` has used up its attempts."""
        self._allow(code, count=False)

    def failed(self, code: str) -> None:
        """Count one wrong ID number (or unknown code) for ``code``."""
        if self._item is not None:
            self._limiter.hit(self._item, code)
