# mypy: disable-error-code="no-untyped-call"
"""The number and date places of an issued document (Decree 30/2020 Art. 15, Appendix I).

Real signatures from the test PKI, the hub's verifier: the competent person's certification
locks every form field but the two places (FieldMDP), so filling them after her signature is a
permitted form fill the verifier names, the seal on top still validates, and a fill of any
other field or a content change after her signature is reported as not permitted.
"""

from __future__ import annotations

import io
from datetime import date

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from schemas.errors import InvalidInputError
from signing.appearance import Box
from signing.issuance import (
    DATE_FIELD,
    NUMBER_FIELD,
    OPEN_AFTER_SIGNATURE,
    NumberPlaces,
    add_number_places,
    add_text_field,
    date_line,
    document_symbol,
    ensure_number_places,
    fill_number_places,
    number_place_values,
)
from signing.models import SignatureLevel, SignOptions, SignRole
from signing.samples import sample_pdf
from signing.testpki import TestPki
from signing.verification import Verdict, VerificationPolicy, verify_pdf
from tests.signing.conftest import Sign

NUMBER = {NUMBER_FIELD: "Số: 07/GCN-SNNMT", DATE_FIELD: "Ninh Bình, ngày 06 tháng 12 năm 2026"}


@pytest.mark.parametrize(
    ("day", "line"),
    [
        (date(2026, 12, 6), "Ninh Bình, ngày 06 tháng 12 năm 2026"),
        (date(2026, 2, 1), "Ninh Bình, ngày 01 tháng 02 năm 2026"),
        (date(2026, 1, 15), "Ninh Bình, ngày 15 tháng 01 năm 2026"),
        (date(2026, 3, 9), "Ninh Bình, ngày 09 tháng 3 năm 2026"),
        (date(2026, 11, 30), "Ninh Bình, ngày 30 tháng 11 năm 2026"),
    ],
)
def test_date_line_pads_days_below_ten_and_january_february(day: date, line: str) -> None:
    assert date_line("Ninh Bình", day) == line


def test_symbol_is_number_type_and_agency() -> None:
    assert document_symbol(1, "GCN", "SNNMT") == "01/GCN-SNNMT"
    assert document_symbol(123, "QĐ", "SNN") == "123/QĐ-SNN"
    with pytest.raises(InvalidInputError) as caught:
        document_symbol(5, "gcn", "SNNMT")
    assert caught.value.details["field"] == "document_type"
    with pytest.raises(InvalidInputError):
        document_symbol(5, "GCN", "SNN/MT")


def test_places_are_added_once_and_empty() -> None:
    data = ensure_number_places(sample_pdf("GCN"))
    assert number_place_values(data) == {NUMBER_FIELD: None, DATE_FIELD: None}
    assert ensure_number_places(data) == data  # already there: untouched
    assert number_place_values(sample_pdf("GCN")) == {}


def _certified(sign: Sign, draft: bytes) -> bytes:
    """The competent person's P=2 certification, leaving the two places open."""
    options = SignOptions(
        level=SignatureLevel.B_T,
        role=SignRole.PERSONAL,
        certify=True,
        open_fields=list(OPEN_AFTER_SIGNATURE),
    )
    signed, _ = sign(options, key="officer", pdf=draft)
    return signed


def _draft_with_other_field() -> bytes:
    """A draft from the one-stop software: the two places plus a field of its own."""
    writer = IncrementalPdfFileWriter(io.BytesIO(sample_pdf("GCN")), strict=False)
    add_number_places(writer, NumberPlaces())
    add_text_field(writer, "noi_nhan", Box(page=0, x=57, y=300, width=200, height=20))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_number_fill_is_a_permitted_change_and_the_seal_validates(sign: Sign, test_pki: TestPki) -> None:
    policy = VerificationPolicy.from_paths(list(test_pki.trusted_anchor_files))
    signed = _certified(sign, ensure_number_places(sample_pdf("GCN")))
    filled = fill_number_places(signed, NUMBER)
    assert number_place_values(filled) == NUMBER

    report = verify_pdf(filled, policy)
    assert report.verdict is Verdict.VALID, report.reasons
    (officer,) = report.signatures
    assert officer.modifications.permitted is True
    assert officer.modifications.modification_level == "form_filling"
    assert officer.modifications.filled_fields == [DATE_FIELD, NUMBER_FIELD]
    codes = {r.code: r for r in officer.reasons}
    assert "later_changes_permitted" in codes
    assert "so_ky_hieu" in codes["form_fields_filled"].message
    assert "điền các trường biểu mẫu" in codes["form_fields_filled"].message_vi

    sealed, _ = sign(SignOptions(level=SignatureLevel.B_LTA, role=SignRole.AGENCY), key="agency", pdf=filled)
    report = verify_pdf(sealed, policy)
    assert report.verdict is Verdict.VALID, report.reasons
    officer, agency = report.signatures
    assert officer.docmdp_permission == 2
    assert officer.modifications.permitted is True
    assert officer.modifications.filled_fields == [DATE_FIELD, NUMBER_FIELD]
    assert agency.modifications.filled_fields == []  # nothing filled after the seal


def test_filling_another_field_after_the_signature_is_not_permitted(sign: Sign, test_pki: TestPki) -> None:
    policy = VerificationPolicy.from_paths(list(test_pki.trusted_anchor_files))
    signed = _certified(sign, _draft_with_other_field())
    tampered = fill_number_places(signed, {"noi_nhan": "Lưu: VT"})

    report = verify_pdf(tampered, policy)
    assert report.verdict is Verdict.INVALID
    (officer,) = report.signatures
    assert officer.modifications.permitted is False
    assert officer.modifications.tampered is True
    assert "noi_nhan" in (officer.modifications.detail or "")
    assert "modified_after_signing" in {r.code for r in officer.reasons}

    # the number places of the same draft stay open
    assert verify_pdf(fill_number_places(signed, NUMBER), policy).verdict is Verdict.VALID


def test_content_change_after_the_signature_is_not_permitted(sign: Sign, test_pki: TestPki) -> None:
    policy = VerificationPolicy.from_paths(list(test_pki.trusted_anchor_files))
    filled = fill_number_places(_certified(sign, ensure_number_places(sample_pdf("GCN"))), NUMBER)
    writer = IncrementalPdfFileWriter(io.BytesIO(filled), strict=False)
    stream = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 20 Tf 100 400 Td (SUA) Tj ET"))
    writer.add_stream_to_page(0, stream)
    out = io.BytesIO()
    writer.write(out)

    report = verify_pdf(out.getvalue(), policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].modifications.permitted is False
    assert report.signatures[0].modifications.modification_level == "other"
