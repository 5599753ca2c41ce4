"""PDF/A-1b and PDF/A-2b inputs as an office suite writes them: an Info dictionary and an XMP
packet that agree (producer, dates, title), an sRGB output intent, a classic xref table.

Written byte by byte so the producer is not pyHanko's (pyHanko's writer would rewrite both);
the sRGB profile comes from LittleCMS (Pillow), declared ICC v2.1 as PDF/A-1 requires
(ISO 19005-1 §6.2.2)."""

from __future__ import annotations

import hashlib

from PIL import ImageCms

__all__ = ["PRODUCER", "pdfa_sample"]

PRODUCER = "LibreOffice 7.5 (TEST)"
_XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
<pdfaid:part>{part}</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance></rdf:Description>
<rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
<pdf:Producer>{producer}</pdf:Producer></rdf:Description>
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
<xmp:CreateDate>2026-03-05T09:00:00+07:00</xmp:CreateDate>
<xmp:ModifyDate>2026-03-05T09:00:00+07:00</xmp:ModifyDate></rdf:Description>
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">QUYET DINH 123</rdf:li></rdf:Alt></dc:title>
</rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


def _srgb_icc_v2() -> bytes:
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    icc[8:12] = bytes.fromhex("02100000")  # profile version 2.1
    icc[84:100] = bytes(16)  # profile ID: "not computed"
    return bytes(icc)


def _stream(header: str, data: bytes) -> bytes:
    return f"<< {header} /Length {len(data)} >>\nstream\n".encode() + data + b"\nendstream"


def pdfa_sample(part: int) -> bytes:
    """A one-page A4 PDF/A-``part``b document (vector content only, so no font to embed)."""
    content = b"0 0 0.6 rg 85 700 300 40 re f\n0 g 85 650 m 500 650 l S\n"
    xmp = _XMP.format(part=part, producer=PRODUCER).encode()
    date = "(D:20260305090000+07'00')"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Metadata 5 0 R /OutputIntents [6 0 R] >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << >> >>",
        _stream("", content),
        _stream("/Type /Metadata /Subtype /XML", xmp),
        b"<< /Type /OutputIntent /S /GTS_PDFA1 /OutputConditionIdentifier (sRGB IEC61966-2.1) "
        b"/Info (sRGB IEC61966-2.1) /DestOutputProfile 7 0 R >>",
        _stream("/N 3", _srgb_icc_v2()),
        f"<< /Producer ({PRODUCER}) /Title (QUYET DINH 123) /CreationDate {date} /ModDate {date} >>".encode(),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    doc_id = hashlib.md5(bytes(out), usedforsecurity=False).hexdigest()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 8 0 R /ID [<{doc_id}> <{doc_id}>] >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)
