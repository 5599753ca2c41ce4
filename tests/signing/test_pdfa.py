"""Signing a PDF/A-1b or PDF/A-2b document keeps it PDF/A (docs/signing.md §5.4).

Each output is checked twice: by the rules the signature touches, read directly from the file
(Info/XMP agreement, no soft mask in PDF/A-1, fonts embedded with their CIDSet, output intent
and identification kept, no encryption, the last byte range covering the file), and by the
``page`` PDF/A validator (PyPI ``page-validation``, offline; it passes the veraPDF corpus).
"""

from __future__ import annotations

import io
import re
from datetime import datetime

import page
import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.metadata import model
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.models import SignatureLevel, SignOptions, SignRole
from signing.pdfa import PdfAPart, pdfa_part
from signing.templates import Box
from tests.signing.conftest import Sign
from tests.signing.pdfa_samples import pdfa_sample

#: The samples carry no signer block to find: the signature goes where the caller says.
SIGNATURE_BOX = Box(page=0, x=330, y=150, width=160, height=64)

#: ``page`` applies ISO 19005-2 §6.4.3 to every signature; an earlier signature cannot cover
#: the later revisions of a multi-signature document (Decree 30 needs two), so the hub keeps
#: the rule for the last one (checked directly in :func:`_check_rules`).
_EARLIER_SIGNATURES_RULE = "PDFA2B-SIGNATURE-BYTERANGE-001"


def _xmp(root: generic.DictionaryObject) -> dict[model.ExpandedName, model.XmpValue]:
    stream = root["/Metadata"]
    return {name: value for structure in stream.xmp for name, value in structure}


def _check_rules(data: bytes, part: int) -> None:
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


def _check_validator(data: bytes, part: int, *, signatures: int) -> None:
    report = page.validate_pdf_bytes(data, profile=f"{part}b")
    failures = {(f.rule_id, f.message) for f in report.failures}
    if signatures > 1:
        failures = {f for f in failures if f[0] != _EARLIER_SIGNATURES_RULE}
    assert not failures


@pytest.mark.parametrize("part", [1, 2])
def test_samples_are_pdfa(part: int) -> None:
    data = pdfa_sample(part)
    assert page.validate_pdf_bytes(data, profile=f"{part}b").is_compliant
    assert pdfa_part(PdfFileReader(io.BytesIO(data)).root) == PdfAPart(part, "B")


@pytest.mark.parametrize("part", [1, 2])
@pytest.mark.parametrize(
    "options",
    [
        SignOptions(role=SignRole.PERSONAL, certify=True, level=SignatureLevel.B_T, position=SIGNATURE_BOX),
        SignOptions(role=SignRole.COPY, agency_name="SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG", level=SignatureLevel.B_T),
        SignOptions(role=SignRole.ATTACHMENT, document_number="123/QĐ-SNNMT", level=SignatureLevel.B_B),
        SignOptions(role=SignRole.INVISIBLE, level=SignatureLevel.B_T),
    ],
    ids=["personal", "copy", "attachment", "invisible"],
)
def test_signing_keeps_pdfa(sign: Sign, part: int, options: SignOptions) -> None:
    signed, _ = sign(options, pdf=pdfa_sample(part))
    _check_rules(signed, part)
    _check_validator(signed, part, signatures=1)


@pytest.mark.parametrize("part", [1, 2])
def test_personal_then_seal_at_b_lta_keeps_pdfa(sign: Sign, part: int) -> None:
    """Decree 30 order: personal certification (B-T), then the seal (B-LTA) over it."""
    first, _ = sign(
        SignOptions(role=SignRole.PERSONAL, certify=True, level=SignatureLevel.B_T, position=SIGNATURE_BOX),
        pdf=pdfa_sample(part),
    )
    both, _ = sign(SignOptions(role=SignRole.AGENCY, level=SignatureLevel.B_LTA), key="agency", pdf=first)
    _check_rules(both, part)
    _check_validator(both, part, signatures=3)
