"""Signing a PDF/A-1b or PDF/A-2b document keeps it PDF/A (docs/signing.md §5.4), each output
checked by :mod:`tests.signing.pdfa_checks`."""

from __future__ import annotations

import io

import page
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.models import SignatureLevel, SignOptions, SignRole
from signing.pdfa import PdfAPart, pdfa_part
from signing.templates import Box
from tests.signing.conftest import Sign
from tests.signing.pdfa_checks import check_pdfa_rules, check_pdfa_validator
from tests.signing.pdfa_samples import pdfa_sample

#: The samples carry no signer block to find: the signature goes where the caller says.
SIGNATURE_BOX = Box(page=0, x=330, y=150, width=160, height=64)


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
    check_pdfa_rules(signed, part)
    check_pdfa_validator(signed, part, signatures=1)


@pytest.mark.parametrize("part", [1, 2])
def test_personal_then_seal_at_b_lta_keeps_pdfa(sign: Sign, part: int) -> None:
    """Decree 30 order: personal certification (B-T), then the seal (B-LTA) over it."""
    first, _ = sign(
        SignOptions(role=SignRole.PERSONAL, certify=True, level=SignatureLevel.B_T, position=SIGNATURE_BOX),
        pdf=pdfa_sample(part),
    )
    both, _ = sign(SignOptions(role=SignRole.AGENCY, level=SignatureLevel.B_LTA), key="agency", pdf=first)
    check_pdfa_rules(both, part)
    check_pdfa_validator(both, part, signatures=3)
