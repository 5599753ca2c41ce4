"""PDF/A checks of a signed output (docs/signing.md §5.4), made twice: by the rules the
signature touches, read directly from the file (Info/XMP agreement, no soft mask in PDF/A-1,
fonts embedded with their CIDSet, output intent and identification kept, no encryption, the last
byte range covering the file), and by the ``page`` PDF/A validator (PyPI ``page-validation``,
offline; it passes the veraPDF corpus)."""

from __future__ import annotations

import io
import re
from datetime import datetime

import page
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.metadata import model
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.pdfa import PdfAPart, pdfa_part

__all__ = ["check_pdfa_rules", "check_pdfa_validator"]

#: ``page`` applies ISO 19005-2 §6.4.3 to every signature; an earlier signature cannot cover
#: the later revisions of a multi-signature document (Decree 30 needs two), so the hub keeps
#: the rule for the last one (checked directly in :func:`_check_rules`).
_EARLIER_SIGNATURES_RULE = "PDFA2B-SIGNATURE-BYTERANGE-001"


def _xmp(root: generic.DictionaryObject) -> dict[model.ExpandedName, model.XmpValue]:
    stream = root["/Metadata"]
    return {name: value for structure in stream.xmp for name, value in structure}


def check_pdfa_rules(data: bytes, part: int) -> None:
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    root = reader.root
    assert pdfa_part(root) == PdfAPart(part, "B")
    assert "/Encrypt" not in reader.trailer
    intents = root["/OutputIntents"]
    assert intents[0]["/S"] == "/GTS_PDFA1"
    assert "/DestOutputProfile" in intents[0]
    xmp = _xmp(root)
    info = reader.trailer["/Info"]
    assert str(info["/Producer"]) == xmp[model.PDF_PRODUCER].value
    assert generic.parse_pdf_date(str(info["/ModDate"])) == datetime.fromisoformat(
        str(xmp[model.XMP_MODDATE].value)
    )
    # every object of every revision: images and fonts the signatures added
    for revision in range(reader.xrefs.total_revisions):
        for ref in reader.xrefs.explicit_refs_in_revision(revision):
            obj = reader.get_object(ref)  # type: ignore[no-untyped-call]
            if not isinstance(obj, generic.DictionaryObject):
                continue
            if obj.get("/Subtype") == "/Image" and part == 1:
                assert "/SMask" not in obj, "PDF/A-1 forbids soft masks (ISO 19005-1 §6.4)"
            if obj.get("/Type") == "/FontDescriptor":
                assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(obj.keys())
                if part == 1 and "+" in str(obj.get("/FontName", "")):
                    assert "/CIDSet" in obj, "PDF/A-1 CID subsets carry a CIDSet (§6.3.5)"
    ranges = [[int(v) for v in m.split()] for m in re.findall(rb"/ByteRange \[([0-9 ]+)\]", data)]
    last = max(ranges, key=lambda r: r[2])
    assert last[2] + last[3] == len(data), "the last signature must cover the whole file"


def check_pdfa_validator(data: bytes, part: int, *, signatures: int) -> None:
    report = page.validate_pdf_bytes(data, profile=f"{part}b")
    failures = {(f.rule_id, f.message) for f in report.failures}
    if signatures > 1:
        failures = {f for f in failures if f[0] != _EARLIER_SIGNATURES_RULE}
    assert not failures
