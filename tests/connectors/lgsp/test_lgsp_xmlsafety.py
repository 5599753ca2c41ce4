"""connectors.xmlsafety.parse_xml: bombs, XXE, DTDs, oversize and malformed input each fail clearly."""

from __future__ import annotations

import pytest

from connectors.xmlsafety import parse_xml
from hub.api.errors import http_status_for
from schemas.errors import InvalidInputError, PayloadTooLargeError, UnsafeXmlError
from tests.connectors.lgsp.hostile_xml import (
    BILLION_LAUGHS,
    EXTERNAL_DTD,
    PARAMETER_ENTITY,
    QUADRATIC,
    XXE_FILE,
    XXE_HTTP,
)


@pytest.mark.parametrize(
    "document",
    [BILLION_LAUGHS, XXE_FILE, XXE_HTTP, PARAMETER_ENTITY, EXTERNAL_DTD, QUADRATIC],
    ids=["billion-laughs", "xxe-file", "xxe-http", "parameter-entity", "external-dtd", "quadratic"],
)
def test_dtd_and_entities_refused(document: bytes) -> None:
    with pytest.raises(UnsafeXmlError) as info:
        parse_xml(document)
    assert http_status_for(info.value) == 400
    assert "unsafe XML" in info.value.message
    assert info.value.message_vi.startswith("từ chối XML")
    assert "root:" not in str(info.value.to_dict())  # nothing of /etc/passwd leaked


def test_utf16_dtd_is_caught_after_parsing() -> None:
    """The byte pre-scan cannot see a UTF-16 DOCTYPE; the parsed-tree check still refuses it."""
    with pytest.raises(UnsafeXmlError):
        parse_xml(
            XXE_FILE.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>')
            .decode()
            .encode("utf-16")
        )


def test_oversized_refused_before_parsing() -> None:
    with pytest.raises(PayloadTooLargeError) as info:
        parse_xml(b"<r>" + b"a" * 2000 + b"</r>", max_bytes=1000)
    assert http_status_for(info.value) == 413
    assert info.value.details == {"size": 2007, "limit": 1000}


@pytest.mark.parametrize("document", [b"<r><unclosed></r>", b"not xml", b"", b"   ", b"<r>&undefined;</r>"])
def test_malformed_is_invalid_input(document: bytes) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_xml(document)
    assert not isinstance(info.value, UnsafeXmlError | PayloadTooLargeError)


def test_text_input_refused() -> None:
    with pytest.raises(InvalidInputError, match="bytes"):
        parse_xml("<r/>")  # type: ignore[arg-type]


def test_well_formed_document_parses() -> None:
    root = parse_xml("<r xmlns='urn:x'><a>Nguyễn Thị Hoà</a></r>".encode())
    assert root.findtext("{urn:x}a") == "Nguyễn Thị Hoà"
