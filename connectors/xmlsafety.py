"""Hardened XML parsing for everything the hub reads from outside.

Rules (OWASP XXE Prevention Cheat Sheet; the same switches zeep's ``Settings`` exposes):

* no DTD at all: a ``<!DOCTYPE`` is refused before any entity could be declared, which
  covers entity-expansion bombs ("billion laughs", quadratic blow-up) and external entities
  (XXE, ``file:///etc/passwd``, ``http://...``);
* no network access and no entity resolution in the parser (``no_network=True``,
  ``resolve_entities=False``, ``load_dtd=False``);
* no "huge tree" mode (libxml2's depth and text-node limits stay on);
* a byte limit checked before parsing.

Errors: :class:`schemas.errors.UnsafeXmlError` for DTDs/entities, :class:`schemas.errors.InvalidInputError`
for malformed XML, :class:`schemas.errors.PayloadTooLargeError` over the limit.
"""

from __future__ import annotations

import re

from lxml import etree

from schemas.errors import InvalidInputError, PayloadTooLargeError, UnsafeXmlError

#: Default ceiling for one XML document (SOAP envelopes with inline base64 attachments).
DEFAULT_MAX_XML_BYTES = 10 * 1024 * 1024

# A DOCTYPE may only appear in the prolog; XML comments and PIs can precede it.
_DOCTYPE_RE = re.compile(rb"<!\s*DOCTYPE", re.IGNORECASE)
_ENTITY_RE = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        collect_ids=False,
    )


def _unsafe(reason: str, reason_vi: str) -> UnsafeXmlError:
    return UnsafeXmlError(
        f"unsafe XML refused: {reason}",
        message_vi=f"từ chối XML không an toàn: {reason_vi}",
        details={"reason": reason},
    )


def check_xml_size(data: bytes, max_bytes: int = DEFAULT_MAX_XML_BYTES) -> None:
    """Raise :class:`PayloadTooLargeError` when ``data`` is longer than ``max_bytes``."""
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"XML document of {len(data)} bytes exceeds the limit of {max_bytes} bytes",
            message_vi=f"tài liệu XML {len(data)} byte vượt giới hạn {max_bytes} byte",
            details={"size": len(data), "limit": max_bytes},
        )


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_XML_BYTES) -> etree._Element:
    """Parse untrusted XML bytes and return the root element.

    The input must be bytes (the XML declaration, not the caller, decides the encoding).
    """
    if not isinstance(data, bytes | bytearray):
        raise InvalidInputError("XML input must be bytes", message_vi="dữ liệu XML phải ở dạng byte")
    data = bytes(data)
    check_xml_size(data, max_bytes)
    # Cheap pre-scan: refuse before libxml2 even reads an internal subset. Also catches
    # UTF-16 input poorly (the bytes are interleaved), so the parsed tree is checked below.
    if _DOCTYPE_RE.search(data):
        raise _unsafe("document type declarations (DTD) are forbidden", "không cho phép khai báo DTD")
    if _ENTITY_RE.search(data):
        raise _unsafe("entity declarations are forbidden", "không cho phép khai báo thực thể (ENTITY)")
    if not data.strip():
        raise InvalidInputError("empty XML document", message_vi="tài liệu XML rỗng")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidInputError(
            f"malformed XML: {exc.msg}",
            message_vi=f"XML không đúng cú pháp: {exc.msg}",
            details={"line": exc.lineno, "column": exc.offset},
        ) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _unsafe("document type declarations (DTD) are forbidden", "không cho phép khai báo DTD")
    for _node in root.iter(etree.Entity):
        raise _unsafe("entity references are forbidden", "không cho phép tham chiếu thực thể")
    return root
