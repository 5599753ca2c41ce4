"""Throttling of failed authentication per client address (docs/security.md §2).

API keys carry 256 random bits, but the bootstrap token and the SMS gateway's shared secret
are chosen by people, and every failed attempt costs a key lookup and a log line. After
``per_minute`` failures from one address inside a moving one-minute window, every request of
that address that presents credentials answers 429 with ``Retry-After`` until the oldest
failure leaves the window (OWASP ASVS 4.0 §2.2.1, anti-automation). Counting is the ``limits``
library's moving window in this process's memory; behind several API processes each keeps
its own count, so the effective budget is ``per_minute`` × processes.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from schemas.errors import TooManyRequestsError


class FailedAuthThrottle:
    def __init__(self, per_minute: int) -> None:
        self._item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, client: str) -> None:
        """Raise :class:`TooManyRequestsError` (429) while ``client`` has used up its failures."""
        if self._item is None or self._limiter.test(self._item, client):
            return
        reset_at = self._limiter.get_window_stats(self._item, client).reset_time
        raise TooManyRequestsError(
            "too many failed authentication attempts from this address; try again later",
            message_vi="xác thực sai quá nhiều lần từ địa chỉ này, vui lòng thử lại sau",
            retry_after=max(1, math.ceil(reset_at - time.time())),
        )

    def failed(self, client: str) -> bool:
        """Count one failure of ``client``; ``True`` when it used up the budget (log it once)."""
        if self._item is None:
            return False
        self._limiter.hit(self._item, client)
        return not self._limiter.test(self._item, client)
