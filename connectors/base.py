"""The seam between the delivery worker and the portals.

A connector receives a :class:`Delivery` (canonical payload plus the message's stable id)
and either returns a :class:`DeliveryReceipt` or raises a :class:`schemas.errors.HubError`
subclass: :class:`~schemas.errors.RetryableError` for transient failures,
:class:`~schemas.errors.PermanentError` for everything retrying cannot fix. Library objects
(httpx responses, zeep objects) never cross this seam.

An error raised after talking to the endpoint carries the exchange as typed attributes
(:attr:`~schemas.errors.HubError.status_code`, ``request_summary``, ``response_summary``), set
through :mod:`connectors.http_errors`, which maps httpx exceptions and HTTP statuses the same
way for every connector. Summaries on errors and on :class:`DeliveryReceipt` are bounded and
PII-masked (:func:`excerpt`; Decree 13/2023/NĐ-CP) before they leave the connector; the worker
stores them on the delivery attempt as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, field_validator

from schemas.masking import mask_pii


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

    @field_validator("request_summary", "response_summary")
    @classmethod
    def _bounded_and_masked(cls, value: str) -> str:
        """Receipts are stored as they are: no connector can hand over personal data."""
        return excerpt(value)

    @classmethod
    def of_excerpts(
        cls,
        *,
        status_code: int | None,
        request_summary: str,
        response_summary: str,
        remote_reference: str | None = None,
    ) -> DeliveryReceipt:
        """A receipt whose summaries the connector already bounded and masked (:func:`excerpt`,
        or text it composed of its configuration masked once and the hub's own ids): the
        validators would mask them a second time, on every delivery."""
        return cls.model_construct(
            status_code=status_code,
            request_summary=request_summary,
            response_summary=response_summary,
            remote_reference=remote_reference,
        )


#: Summaries recorded on attempts are cut to this many characters.
SUMMARY_LIMIT = 2000
#: Text masked beyond the cut, so a number straddling it is masked whole, not left as a stub.
_MASK_MARGIN = 64


def summarize(text: str | bytes, limit: int = SUMMARY_LIMIT) -> str:
    """A bounded, printable excerpt of a request or response (not masked: see :func:`excerpt`)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


#: Texts up to this long are excerpted once per distinct text (:func:`excerpt`).
_REPEATED_CHARS = 256


def excerpt(text: str | bytes, limit: int = SUMMARY_LIMIT) -> str:
    """:func:`summarize` of ``text`` with ID numbers, phones and credentials masked (``mask_pii``).

    Masking runs before the cut (on a window just past it): cutting first could leave the first
    digits of an ID number too short for the masking patterns to recognise.

    A short text is excerpted once and remembered (:func:`_short_excerpt`): an endpoint answers
    most deliveries with the same few bytes (``HTTP 200 {"ok": true}``), and masking them cost
    about 6 µs per delivery on the worker's event loop.
    """
    if len(text) <= _REPEATED_CHARS:
        return _short_excerpt(text, limit)
    return _excerpt(text, limit)


@lru_cache(maxsize=512)
def _short_excerpt(text: str | bytes, limit: int) -> str:
    """:func:`_excerpt`, remembered for the last 512 short texts (masking is a pure function)."""
    return _excerpt(text, limit)


def _excerpt(text: str | bytes, limit: int) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    window = limit + _MASK_MARGIN
    masked = mask_pii(text[:window])
    if len(text) <= window:
        return summarize(masked, limit)
    return masked[:limit] + f"… [{len(text) - limit} more characters]"


@runtime_checkable
class Connector(Protocol):
    """One configured endpoint the hub delivers to."""

    name: str

    async def deliver(self, delivery: Delivery) -> DeliveryReceipt: ...

    async def aclose(self) -> None: ...
