# mypy: disable-error-code="no-untyped-call"
"""The number and date places of an issued e-document (Decree 30/2020/NĐ-CP Art. 15; Appendix I).

The competent person signs first; the system then writes the document's number and symbol
("số, ký hiệu", box 3) and its place and issue date ("địa danh và thời gian ban hành", box 4);
the clerk seals last (Art. 14, 15(3), 17; docs/signing.md §13). In the PDF the two places are
AcroForm text fields named :data:`NUMBER_FIELD` and :data:`DATE_FIELD`, created by the one-stop
software or by the hub (:func:`add_number_places`) *before* the competent person signs, so the
signature covers them empty. Her certification (DocMDP P=2) also carries a FieldMDP lock on
every other form field (:data:`OPEN_AFTER_SIGNATURE` stay open); filling the two places in an
incremental update (:func:`fill_number_places`) is then a permitted change that verifiers
report as form filling, while filling any other field or touching the content is not.

This module formats the symbol and the date line (Appendix I, Part I, II.3–4) and edits the
PDF; it never allocates numbers (the register lives in the hub).
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.form_tools import enumerate_fields_in, populate_static_text_field
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle

from schemas.errors import InvalidInputError, InvalidPdfError
from signing.appearance import DEFAULT_FONT_PATH, Box, pdf_ready_font
from signing.service import open_pdf
from signing.settings import ABBREVIATION_PATTERN

__all__ = [
    "DATE_FIELD",
    "NUMBER_FIELD",
    "OPEN_AFTER_SIGNATURE",
    "NumberPlaces",
    "add_number_places",
    "add_text_field",
    "date_line",
    "document_symbol",
    "ensure_number_places",
    "fill_number_places",
    "number_place_values",
]

#: Box 3 of Appendix I: "Số: 12/GCN-SNNMT".
NUMBER_FIELD = "so_ky_hieu"
#: Box 4 of Appendix I: "Ninh Bình, ngày 06 tháng 12 năm 2026".
DATE_FIELD = "ngay_ban_hanh"
#: Form fields the competent person's signature leaves open besides the signature fields
#: reserved with it (the seal, Art. 17): the two places. Everything else is locked (FieldMDP
#: /Exclude, ISO 32000-1 §13.8.2.4).
OPEN_AFTER_SIGNATURE: tuple[str, ...] = (NUMBER_FIELD, DATE_FIELD)


class NumberPlaces(BaseModel):
    """Where the hub draws the two places when the draft has none (A4, first page, under the
    agency name and under the national motto, Appendix I boxes 3 and 4), and the font:
    Times-compatible, 13 pt, the date in italics (Appendix I, Part I, II.3–4)."""

    model_config = ConfigDict(frozen=True)

    number_box: Box = Box(page=0, x=57, y=735, width=220, height=20)
    date_box: Box = Box(page=0, x=300, y=735, width=262, height=20)
    font_path: Path = DEFAULT_FONT_PATH
    italic_font_path: Path | None = Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Italic.ttf")
    font_size: int = Field(default=13, ge=6, le=20)


def document_symbol(number: int, document_type: str, agency: str) -> str:
    """``12/GCN-SNNMT``: the register number, then the abbreviations of the document type and of
    the issuing agency (Appendix I, Part I, II.3). Numbers below 10 carry a leading zero: the
    register "starts from number 01 on 1 January" (Art. 15(1))."""
    if number < 1:
        raise ValueError("register numbers start at 1")
    parts = {"document_type": document_type, "agency_abbreviation": agency}
    for field, value in parts.items():
        parts[field] = value = unicodedata.normalize("NFC", value)
        if not re.fullmatch(ABBREVIATION_PATTERN, value):
            raise InvalidInputError(
                f"{field} must be 1-20 upper-case letters or digits: {value!r}",
                message_vi="Chữ viết tắt trong ký hiệu văn bản chỉ gồm 1–20 chữ in hoa hoặc chữ số",
                details={"field": field},
            )
    return f"{number:02d}/{parts['document_type']}-{parts['agency_abbreviation']}"


def date_line(place: str, day: date) -> str:
    """``Ninh Bình, ngày 06 tháng 02 năm 2026``: the place, then the issue date in full, days
    below 10 and the months January and February with a leading zero (Appendix I, Part I,
    II.4.b)."""
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    text = f"{place.strip()}, ngày {day.day:02d} tháng {month} năm {day.year}"
    return unicodedata.normalize("NFC", text)


# --- reading ---------------------------------------------------------------------------------


def number_place_values(data: bytes) -> dict[str, str | None]:
    """The two places present in ``data`` and their values (``None`` = empty)."""
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        return _text_fields(reader.root)
    except (PdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidPdfError(
            f"cannot read the form fields: {exc}", message_vi="Không đọc được các trường biểu mẫu của tệp PDF"
        ) from exc


def _acroform(root: generic.DictionaryObject) -> generic.DictionaryObject | None:
    acroform = root.get("/AcroForm")
    if isinstance(acroform, generic.IndirectObject):
        acroform = acroform.get_object()
    return acroform if isinstance(acroform, generic.DictionaryObject) else None


def _text_fields(root: generic.DictionaryObject) -> dict[str, str | None]:
    acroform = _acroform(root)
    if acroform is None or "/Fields" not in acroform:
        return {}
    found = enumerate_fields_in(acroform["/Fields"], refs_seen=set(), target_field_type="/Tx")
    return {
        str(name): (str(value) or None) if value is not None else None
        for name, value, _ref in found
        if name in (NUMBER_FIELD, DATE_FIELD)
    }


# --- writing ---------------------------------------------------------------------------------


def add_number_places(writer: IncrementalPdfFileWriter, places: NumberPlaces) -> None:
    """Create whichever of the two empty text fields the document lacks (before any signature)."""
    present = _text_fields(writer.root)
    for name, box in ((NUMBER_FIELD, places.number_box), (DATE_FIELD, places.date_box)):
        if name not in present:
            add_text_field(writer, name, box)


def ensure_number_places(data: bytes, places: NumberPlaces | None = None) -> bytes:
    """``data`` with the two places, added in an incremental update when missing (a broken,
    encrypted or hostile PDF is refused as for signing: :func:`signing.service.open_pdf`)."""
    writer = open_pdf(data)
    if set(number_place_values(data)) == {NUMBER_FIELD, DATE_FIELD}:
        return data
    add_number_places(writer, places or NumberPlaces())
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def fill_number_places(data: bytes, values: Mapping[str, str], places: NumberPlaces | None = None) -> bytes:
    """Write ``values`` (field name → text) into their empty places in one incremental update
    (a form fill, permitted after a P=2 certification; the fields become read-only)."""
    places = places or NumberPlaces()
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    regular = _font(places.font_path, places.font_size)
    italic = _font(places.italic_font_path, places.font_size) if places.italic_font_path else regular
    try:
        for name, text in values.items():
            style = italic if name == DATE_FIELD else regular
            populate_static_text_field(writer, name, style, unicodedata.normalize("NFC", text))
    except PdfError as exc:
        raise InvalidPdfError(
            f"cannot fill {', '.join(values)}: {exc}",
            message_vi="Không điền được số, ký hiệu và ngày ban hành vào văn bản",
            details={"reason": "number_places_unusable"},
        ) from exc
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _font(path: Path | None, size: int) -> TextBoxStyle:
    font_path = path if path is not None and path.is_file() else DEFAULT_FONT_PATH
    factory = GlyphAccumulatorFactory(str(pdf_ready_font(font_path)), font_size=size)
    return TextBoxStyle(font=factory, font_size=size, border_width=0)


def add_text_field(writer: IncrementalPdfFileWriter, name: str, box: Box) -> None:
    """A text field merged with its widget on ``box.page`` (ISO 32000-1 §13.7.4.3)."""
    root = writer.root
    page_ref, _resources = writer.find_page_for_modification(box.page)
    field = generic.DictionaryObject(
        {
            generic.NameObject("/FT"): generic.NameObject("/Tx"),
            generic.NameObject("/T"): generic.TextStringObject(name),
            generic.NameObject("/Type"): generic.NameObject("/Annot"),
            generic.NameObject("/Subtype"): generic.NameObject("/Widget"),
            generic.NameObject("/Rect"): generic.ArrayObject(generic.NumberObject(v) for v in box.rect()),
            generic.NameObject("/F"): generic.NumberObject(4),  # print
            generic.NameObject("/P"): page_ref,
            generic.NameObject("/DA"): generic.TextStringObject("/Helv 0 Tf 0 g"),
        }
    )
    field_ref = writer.add_object(field)
    acroform = _acroform(root)
    if acroform is None:
        acroform = generic.DictionaryObject({generic.NameObject("/Fields"): generic.ArrayObject()})
        root[generic.NameObject("/AcroForm")] = writer.add_object(acroform)
        writer.update_root()
    else:
        writer.update_container(acroform)
    if "/Fields" not in acroform:
        acroform[generic.NameObject("/Fields")] = generic.ArrayObject()
    field_list = acroform.raw_get("/Fields")
    if isinstance(field_list, generic.IndirectObject):
        writer.mark_update(field_list)
    acroform["/Fields"].append(field_ref)
    page = page_ref.get_object()
    annots = page.get("/Annots")
    if annots is None:
        page[generic.NameObject("/Annots")] = generic.ArrayObject([field_ref])
    else:
        annots.get_object().append(field_ref)
        if isinstance(page.raw_get("/Annots"), generic.IndirectObject):
            writer.mark_update(page.raw_get("/Annots"))
    writer.update_container(page)
