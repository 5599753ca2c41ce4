"""Where the request or command being served comes from, for the audit rows it writes.

Light on purpose (no database imports): the ``hub`` CLI sets it at start (:func:`cli_client`)
and the API per request (:class:`hub.api.security.AuditClientMiddleware`);
:func:`hub.audit.log.record` reads it when its caller passes no ``client``. A context
variable: each request (asyncio task) and each worker thread it hands work to sees its own.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: Longest ``client`` stored (the column's size).
MAX_CLIENT = 300

_client: ContextVar[str | None] = ContextVar("hub_audit_client", default=None)


def current_client() -> str | None:
    """Where the request or command being served comes from (``None``: unknown)."""
    return _client.get()


@contextmanager
def acting_from(client: str | None) -> Iterator[None]:
    """Audit rows recorded inside this block name ``client`` as where they came from."""
    token = _client.set(client[:MAX_CLIENT] if client else None)
    try:
        yield
    finally:
        _client.reset(token)


def cli_client() -> str:
    """``cli:<operating-system user>@<host>``: where a ``hub`` command runs."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (containers)
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def http_client(address: str | None, user_agent: str | None) -> str:
    """``<address> <user agent>`` of an HTTP caller (the address after trusted proxies)."""
    agent = " ".join((user_agent or "").split())
    return f"{address or 'unknown'} {agent}".strip()[:MAX_CLIENT]
