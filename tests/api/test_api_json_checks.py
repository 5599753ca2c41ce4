"""The JSON routes' checks before validation (hub/api/limits.py: ``require_json``): the
``\\u0000`` escape search answers as the full expression does on every body, and the
``Content-Type`` verdict is the same remembered or not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.api.limits import _NUL_ESCAPE, _media_type, has_nul_escape

#: Bodies made of the characters the escape search turns on.
BODIES = st.binary(min_size=0, max_size=40).map(lambda raw: bytes(b'\\uU0a"x'[byte % 7] for byte in raw))


@given(BODIES)
def test_nul_escape_search_agrees_with_the_expression(body: bytes) -> None:
    assert has_nul_escape(body) is (_NUL_ESCAPE.search(body) is not None)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": "x\\u0000"}', True),
        (b'{"a": "x\\U0000"}', True),
        (b"\\u0000", True),
        (b'{"a": "\\\\\\u0000"}', True),  # an escaped backslash, then the escape
        (b'{"a": "C:\\\\u0000"}', False),  # an escaped backslash, then the text "u0000"
        (b'{"a": "u0000"}', False),
        (b'{"a": "\\u00000"}', True),
        (b"", False),
    ],
)
def test_nul_escapes(body: bytes, expected: bool) -> None:
    assert has_nul_escape(body) is expected


@pytest.mark.parametrize(
    ("content_type", "refused_as"),
    [
        ("application/json", None),
        ("Application/JSON; charset=utf-8", None),
        ("application/problem+json", None),
        ("text/plain", "text/plain"),
        ("application/xml", "application/xml"),
        ("json", "text/plain"),  # not type/subtype: read as text/plain, as email parsing does
    ],
)
def test_content_type_verdicts(content_type: str, refused_as: str | None) -> None:
    assert _media_type(content_type) == refused_as
    assert _media_type(content_type) == refused_as  # remembered: the same answer
