"""Text of copy and attachment stamps and where it goes (docs/signing.md §5.6).

Decree 30/2020/NĐ-CP Appendix I, part II (electronic copies) and III.1 (separate-file
attachments): no image; at the top right of the first page, the copy form (or the document's
number), the agency's name and the signing time (ISO 8601, Vietnam time), in Times New Roman,
**"chữ in thường"** (lower case, not capitals), upright, 10 pt, black.

* Letter case: the copy form is written "Sao y" / "Sao lục" / "Trích sao"; an agency name given
  in capitals is rewritten in the lower case Appendix II prescribes for names ("Sở Nông nghiệp
  và Phát triển nông thôn tỉnh Ninh Bình"); a name given in mixed case is kept as given.
* Size: the text is wrapped to the free width and set at 10 pt, or smaller (down to 6 pt) when
  10 pt does not fit; it is never clipped.
* Place: right-aligned at the right margin, from the top edge down to the first text of the
  page under it (the national motto block in a 20 mm top margin), read from the page.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from schemas.errors import SignaturePlacementError
from signing.appearance import Box
from signing.pagetext import PageText

__all__ = ["StampLayout", "agency_lower_case", "layout_text_stamp", "stamp_lines"]

_COPY_FORMS = {"SAO Y": "Sao y", "SAO LỤC": "Sao lục", "TRÍCH SAO": "Trích sao"}
_TYPE_WORDS = {"sở", "bộ", "cục", "vụ", "phòng", "ban", "viện", "chi", "tổng", "trung", "văn"}
_ADMIN_UNITS = ("thành phố", "thị xã", "thị trấn", "tỉnh", "huyện", "quận", "xã", "phường")
_ACRONYMS = {"ubnd", "hđnd", "tp.", "tw", "tp"}
_VOWELS = set("aăâeêioôơuưy")
#: A line as long as the time stamp, for measuring (``%(ts)s`` is filled in at signing).
TIME_SAMPLE = "2026-12-31T23:59:59+07:00"
TIME_FIELD = "%(ts)s"
#: Type sizes tried, largest first (pyHanko takes whole points); leading is size + 2 pt.
SIZES = (10, 9, 8, 7, 6)
_MM = 72 / 25.4
_PAD = 2.0


def _is_acronym(word: str) -> bool:
    if word.lower() in _ACRONYMS:
        return True
    base = unicodedata.normalize("NFD", word.lower())
    return not any(ch in _VOWELS for ch in base if ch.isalpha())


def _cap(word: str) -> str:
    return word[:1].upper() + word[1:].lower()


def agency_lower_case(name: str) -> str:
    """An agency name in capitals rewritten in lower case with Appendix II capitals: the first
    word, the field after a type word ("Sở Nông nghiệp") and after "và" ("và Phát triển"), and
    the place name after the last administrative unit ("tỉnh Ninh Bình"); acronyms kept."""
    if any(ch.islower() for ch in name):
        return name
    words = name.split()
    lowered = [w.lower() for w in words]
    unit_at, unit_len = len(words), 0
    for i in range(1, len(words)):
        rest = " ".join(lowered[i:]) + " "
        unit = next((u for u in _ADMIN_UNITS if rest.startswith(u + " ")), None)
        if unit is not None and i + len(unit.split()) < len(words):
            unit_at, unit_len = i, len(unit.split())
    out: list[str] = []
    capitalise_next = True
    for i, (word, low) in enumerate(zip(words[:unit_at], lowered[:unit_at], strict=True)):
        out.append(word if _is_acronym(word) else (_cap(low) if capitalise_next else low))
        capitalise_next = (i == 0 and low in _TYPE_WORDS) or low in ("và", "-")
    out += lowered[unit_at : unit_at + unit_len]
    out += [w if _is_acronym(w) else _cap(w) for w in words[unit_at + unit_len :]]
    return " ".join(out)


def stamp_lines(
    *, kind: str, copy_form: str, agency_name: str | None, document_number: str | None
) -> list[str]:
    """The stamp's lines, letter case per Appendix I; the last one is the signing time field."""
    first = _COPY_FORMS.get(copy_form, copy_form) if kind == "copy" else (document_number or "")
    agency = agency_lower_case(agency_name) if agency_name else ""
    return [line for line in (first, agency) if line] + [TIME_FIELD]


@lru_cache(maxsize=4)
def _font(path: Path) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), 1000)


def _width(text: str, size: int, font_path: Path) -> float:
    sample = TIME_SAMPLE if text == TIME_FIELD else text
    return float(_font(font_path).getlength(sample)) * size / 1000


def _wrap(line: str, size: int, width: float, font_path: Path) -> list[str] | None:
    """``line`` broken at spaces to fit ``width``; ``None`` if one word is wider."""
    out: list[str] = []
    current = ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if _width(candidate, size, font_path) <= width:
            current = candidate
            continue
        if not current or _width(word, size, font_path) > width:
            return None
        out.append(current)
        current = word
    out.append(current)
    return out


@dataclass(frozen=True)
class StampLayout:
    box: Box
    font_size: int
    #: pyHanko stamp text: wrapped lines, ``%`` escaped, the time as ``%(ts)s``.
    text: str


def _fit(lines: list[str], width: float, height: float, font_path: Path) -> tuple[int, list[str]] | None:
    """The largest size in :data:`SIZES` at which ``lines`` wrapped to ``width`` fit ``height``."""
    for size in SIZES:
        fitted = _fit_at(lines, size, width, font_path)
        if fitted is not None and len(fitted[1]) * (size + 2) + 2 * _PAD <= height:
            return fitted
    return None


def _text(lines: list[str]) -> str:
    return "\n".join(line if line == TIME_FIELD else line.replace("%", "%%") for line in lines)


def layout_text_stamp(
    lines: list[str], page: PageText, font_path: Path, position: Box | None = None
) -> StampLayout:
    """Fit ``lines`` in ``position``, or in the free top-right corner of ``page``."""
    if position is not None:
        fitted = _fit(lines, position.width, position.height, font_path)
        if fitted is None:
            raise SignaturePlacementError(
                "the stamp text does not fit in the given position even at 6 pt",
                message_vi="Nội dung dấu sao/đính kèm không vừa vị trí đã chỉ định",
            )
        return StampLayout(position, fitted[0], _text(fitted[1]))
    right = page.x1 - 15 * _MM  # right margin 15-20 mm (Appendix I, I.4)
    top = page.y1 - 4 * _MM
    max_width = (page.x1 - page.x0) / 2 - 15 * _MM
    for size in SIZES:
        fitted = _fit_at(lines, size, max_width, font_path)
        if fitted is None:
            continue
        wrapped = fitted[1]
        width = max(_width(line, size, font_path) for line in wrapped) + 2 * _PAD + 1
        height = len(wrapped) * (size + 2) + 2 * _PAD
        x0 = right - width
        below = [ln.y1 for ln in page.lines if ln.x1 > x0 and ln.x0 < right and ln.y1 <= top + 1]
        floor = max(below, default=page.y0) + 1
        if top - height >= floor:
            box = Box(page=page.index, x=x0, y=top - height, width=width, height=height)
            return StampLayout(box, size, _text(wrapped))
    raise SignaturePlacementError(
        f"no free space at the top right of page {page.index + 1} for the stamp text; "
        "give an explicit position",
        message_vi="Không còn chỗ trống ở góc trên bên phải trang đầu để trình bày dấu; hãy chỉ định vị trí",
        details={"page": page.index + 1},
    )


def _fit_at(lines: list[str], size: int, width: float, font_path: Path) -> tuple[int, list[str]] | None:
    wrapped: list[str] = []
    for line in lines:
        parts = _wrap(line, size, width - 2 * _PAD, font_path)
        if parts is None:
            return None
        wrapped += parts
    return size, wrapped
