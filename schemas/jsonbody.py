"""JSON bodies from outside callers: UTF-8, well-formed, optionally no repeated keys.

One parser for the routes that read raw bodies (the DVCQG inbound push, the SMS gateway):
every way a body can be bad ends as :class:`~schemas.errors.MalformedJsonError` (HTTP 400),
never an unhandled exception. Nesting deeper than the interpreter's recursion limit makes
the C decoder raise ``RecursionError`` (CPython ``Py_EnterRecursiveCall``); that is refused
here too (OWASP REST Security Cheat Sheet, "Input validation": limit nesting).
"""

from __future__ import annotations

import json
from typing import Any

from schemas.errors import MalformedJsonError


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_json_body(body: bytes, *, unique_keys: bool = False) -> Any:
    """The decoded document; ``unique_keys`` refuses an object naming one key twice."""
    hook = _reject_duplicate_keys if unique_keys else None
    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=hook)
    except RecursionError:
        raise MalformedJsonError(
            "body is nested too deeply", message_vi="dữ liệu JSON lồng nhau quá sâu"
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedJsonError(
            f"body is not well-formed UTF-8 JSON: {exc}",
            message_vi="dữ liệu không phải JSON UTF-8 hợp lệ",
        ) from None
