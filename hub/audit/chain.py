"""The audit hash chain: canonical JSON of a row and its link hash.

``hash = SHA-256(prev_hash || canonical JSON of the row's fields)``, hex; the first row's
``prev_hash`` is :data:`GENESIS`. Canonical JSON follows RFC 8785 (JSON Canonicalization
Scheme) for the values audit rows hold: object keys sorted, no whitespace, UTF-8, strings
escaped only where JSON requires. Two simplifications, stated in docs/security.md: keys are
sorted by code point (RFC 8785 §3.2.3 sorts by UTF-16 code unit; the two agree below U+10000,
and audit keys are ASCII), and numbers are integers or Python's shortest round-trip float
(a float with an integral value is stored as an integer, as PostgreSQL JSONB would return
it; NaN and infinities are refused), so a row hashes the same before and after a database
round trip on both backends.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

#: ``prev_hash`` of the first row of the chain.
GENESIS = "0" * 64

#: The fields a link hash covers, beside ``prev_hash`` (``id`` is not: the links order rows).
HASHED_FIELDS = ("at", "actor", "action", "target", "details", "client", "before", "after")


def normalize(value: Any) -> Any:
    """``value`` as decoded JSON gives it back: tuples as lists, integral floats as integers."""
    if isinstance(value, dict):
        return {str(key): normalize(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, str | int | float):
        return value
    raise TypeError(f"audit values are JSON only, not {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """RFC 8785-style canonical form of ``value`` (see the module docstring)."""
    text = json.dumps(
        normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def timestamp(at: datetime) -> str:
    """The hashed form of a row's time: UTC, microseconds, ``Z`` (both backends keep µs)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def link_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The hash of a row whose predecessor's hash is ``prev_hash``."""
    document = {name: fields.get(name) for name in HASHED_FIELDS}
    at = document["at"]
    if not isinstance(at, datetime):
        raise TypeError("an audit row needs its time")
    document["at"] = timestamp(at)
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(document)).hexdigest()
