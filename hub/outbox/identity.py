"""Which outbox message, and where it goes: the fields every view of a message starts with.

The worker's claim (:class:`hub.delivery.store.ClaimedMessage`, a slots dataclass on the hot
path) and the operators' summary (:class:`hub.dlq.models.MessageSummary`, a pydantic model
served by the API) both begin with these columns of ``outbox_messages`` (docs/delivery.md §6,
§8, §11.8); they are declared once here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MessageIdentity:
    """Declares the fields only (an instance of its own has nowhere to keep them).

    ``__slots__ = ()`` lets both kinds of subclass take it as a base: a ``slots=True``
    dataclass stays without a ``__dict__``, and a pydantic ``BaseModel`` (whose own slots would
    clash with a slotted base) collects the fields from it as it does from any stdlib dataclass
    base, in this order, ahead of its own.
    """

    __slots__ = ()

    seq: int
    """The row's sequence number: first-in first-out within an ordering key."""
    message_id: str
    """Stable id sent to the receiver for de-duplication (docs/delivery.md §11.8)."""
    endpoint: str
    kind: str
    """A :class:`schemas.messages.MessageKind` value."""
    ordering_key: str
    """Messages of one key are delivered in ``seq`` order (docs/delivery.md §6)."""
    dossier_code: str | None
