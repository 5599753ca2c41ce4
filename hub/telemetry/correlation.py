"""The correlation id: one value that follows a dossier change from intake to each delivery.

Set per request by the API (``X-Request-ID`` if the caller sent a usable one, else the trace id
of a W3C ``traceparent``, else a new random id), stored on every outbox message the request
writes, set again by the worker around each delivery, sent to webhook endpoints as
``X-Request-ID`` and added to every log record (:class:`CorrelationFilter`). It is a
:mod:`contextvars` variable, so each request and each delivery task has its own, and
Starlette's thread pool carries it into synchronous route handlers.

Only a restricted alphabet is taken from callers (letters, digits, ``.-_:``, at most 64
characters, the column size): the value reaches log lines and outgoing headers, so nothing
that could forge a log line or a header is accepted (OWASP Logging Cheat Sheet, "event
data sanitization"); anything else is replaced by a fresh id.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from contextvars import ContextVar, Token

#: Header the hub reads, answers with and sends to webhook endpoints.
HEADER = "X-Request-ID"
#: Longest accepted id (``outbox_messages.correlation_id``).
MAX_LENGTH = 64

_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
#: W3C Trace Context §3.2: ``version-traceid-parentid-flags``, lower-case hex.
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO_TRACE = "0" * 32

_current: ContextVar[str | None] = ContextVar("hub_correlation_id", default=None)

#: Ids cut from one read of the operating system's random source.
POOL_IDS = 256


class _RandomIds:
    """128 random bits per id, read from :func:`os.urandom` for :data:`POOL_IDS` ids at a time.

    A read per id (``uuid.uuid4``) released the GIL on every API request, and the event loop
    then waited for the intake thread to hand it back (a twentieth of the loop's time at 16
    concurrent requests). The pool belongs to the process that read it: a forked child reads
    its own, so two processes never answer the same ids.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hex = ""
        self._next = 0
        self._pid = 0

    def take(self) -> str:
        with self._lock:
            pid = os.getpid()
            if self._next >= len(self._hex) or pid != self._pid:
                self._hex, self._next, self._pid = os.urandom(16 * POOL_IDS).hex(), 0, pid
            start = self._next
            self._next = start + 32
            return self._hex[start : start + 32]


_ids = _RandomIds()


def new_id() -> str:
    """A fresh id: 32 lower-case hex digits of 128 random bits (the shape of a W3C trace id)."""
    return _ids.take()


def from_headers(request_id: str | None, traceparent: str | None) -> str:
    """The id of a request: its ``X-Request-ID`` if usable, else its trace id, else a new one."""
    if request_id is not None and _VALID.fullmatch(request_id.strip()):
        return request_id.strip()
    if traceparent is not None:
        match = _TRACEPARENT.fullmatch(traceparent.strip())
        if match and match.group(1) != _ZERO_TRACE:
            return match.group(1)
    return new_id()


def current() -> str | None:
    """The id of the request or delivery running now (``None`` outside of both)."""
    return _current.get()


def bind(correlation_id: str | None) -> Token[str | None]:
    """Make ``correlation_id`` the current one (in this context); returns the token to reset."""
    return _current.set(correlation_id)


def reset(token: Token[str | None]) -> None:
    _current.reset(token)


class CorrelationFilter(logging.Filter):
    """Adds ``correlation_id`` to every record made while one is bound (attach to handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        value = _current.get()
        if value is not None and not hasattr(record, "correlation_id"):
            record.correlation_id = value
        return True
