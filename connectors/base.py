"""The seam between the delivery worker and the portals.

A connector receives a :class:`Delivery` (canonical payload plus the message's stable id)
and either returns a :class:`DeliveryReceipt` or raises a :class:`schemas.errors.HubError`
subclass: :class:`~schemas.errors.RetryableError` for transient failures,
:class:`~schemas.errors.PermanentError` for everything retrying cannot fix. Library objects
(httpx responses, zeep objects) never cross this seam.

Errors may carry ``details`` keys ``status_code``, ``request_summary`` and
``response_summary``; the worker records them on the delivery attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class Delivery:
    message_id: str
    """Stable id, sent to the receiver for de-duplication (at-least-once delivery)."""
    endpoint: str
    kind: str
    """A :class:`schemas.messages.MessageKind` value."""
    payload: dict[str, Any]
    dossier_code: str | None = None
    attempt: int = 1
    headers: dict[str, str] = field(default_factory=dict)


class DeliveryReceipt(BaseModel):
    status_code: int | None = None
    request_summary: str = ""
    response_summary: str = ""
    remote_reference: str | None = None
    """Whatever id the receiver gave the record, if any."""


#: Summaries recorded on attempts are cut to this many characters.
SUMMARY_LIMIT = 2000


def summarize(text: str | bytes, limit: int = SUMMARY_LIMIT) -> str:
    """A bounded, printable excerpt of a request or response for the attempt log."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


@runtime_checkable
class Connector(Protocol):
    """One configured endpoint the hub delivers to."""

    name: str

    async def deliver(self, delivery: Delivery) -> DeliveryReceipt: ...

    async def aclose(self) -> None: ...
