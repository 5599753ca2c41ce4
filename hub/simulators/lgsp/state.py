"""What the LGSP simulator remembers: accepted requests, refusals, message ids, nonces, tokens, documents.

One lock guards it all; the test thread reads while the server thread writes.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from lxml import etree

from hub.simulators.lgsp.contract import LgspContract

Flavour = Literal["soap11", "soap12", "rest"]


@dataclass(frozen=True)
class SimulatorRecord:
    """An accepted request."""

    flavour: Flavour
    operation: str
    message_id: str
    username: str | None
    body: bytes
    """SOAP: the Body's child element (XML); REST: the JSON body."""
    received_at: datetime
    _contract: LgspContract | None = field(default=None, repr=False, compare=False)

    def payload(self) -> dict[str, Any]:
        """The request as plain data: XSD-driven decoding (xmlschema) for SOAP, JSON for REST."""
        if self.flavour == "rest":
            data = json.loads(self.body)
            return data if isinstance(data, dict) else {"items": data}
        assert self._contract is not None
        return self._contract.decode(self.body)


class LgspState:
    """The simulator's memory (see the module docstring)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: list[SimulatorRecord] = []
        self.rejections: list[str] = []
        self.seen_ids: set[tuple[str, str]] = set()
        self.nonces: set[str] = set()
        self.tokens: dict[str, float] = {}
        self.documents: dict[str, etree._Element] = {}
        self.documents_json: dict[str, dict[str, Any]] = {}
        self.doc_ids: dict[str, str] = {}
        self.token_count = 0
        self.unauthorized_count = 0

    def clear(self) -> None:
        """Forget requests and documents (issued tokens, nonces and document ids are kept)."""
        with self.lock:
            self.records.clear()
            self.rejections.clear()
            self.seen_ids.clear()
            self.documents.clear()
            self.documents_json.clear()
            self.token_count = 0
            self.unauthorized_count = 0

    def reject(self, reason: str) -> None:
        with self.lock:
            self.rejections.append(reason)

    def accept(self, record: SimulatorRecord) -> None:
        with self.lock:
            self.records.append(record)

    def first_time(self, flavour: str, message_id: str) -> bool:
        """Note ``message_id``; ``False`` when it was seen before on this flavour."""
        with self.lock:
            key = (flavour, message_id)
            if key in self.seen_ids:
                return False
            self.seen_ids.add(key)
            return True

    def doc_id(self, doc_code: str) -> str:
        """The LGSP's stable id for a document code."""
        with self.lock:
            return self.doc_ids.setdefault(doc_code, f"LGSP-{len(self.doc_ids) + 1:06d}")
