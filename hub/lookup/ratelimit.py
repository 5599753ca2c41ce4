"""In-process token bucket per client address for the public lookup endpoints.

Lookups are public and answer "not found" for wrong ID numbers, so unthrottled clients could
guess 9-digit CMND numbers; a small per-address budget makes that impractical. Behind a
reverse proxy, put the real limit there; this one still bounds a single process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from schemas.errors import TooManyRequestsError


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, per_minute: int, *, max_clients: int = 10_000) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._max_clients = max_clients
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Take one token for ``client`` or raise :class:`TooManyRequestsError` (429)."""
        if self._capacity <= 0:
            return
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.pop(client, None) or _Bucket(self._capacity, now)
            bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            self._buckets[client] = bucket
            while len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
            if bucket.tokens < 1:
                wait = (1 - bucket.tokens) / self._rate
                raise TooManyRequestsError(
                    "too many lookups; try again later",
                    message_vi="tra cứu quá nhiều lần, vui lòng thử lại sau",
                    retry_after=wait,
                )
            bucket.tokens -= 1
