"""Text lines of a PDF page with their boxes, read with pdfminer.six (docs/signing.md §5.5).

pdfminer interprets the content stream (text matrices, ``cm`` transforms, ToUnicode maps of
embedded fonts) and groups glyphs into lines whatever the producer: LibreOffice writes one run
per line, Word and browsers often one run per word or glyph, in any order. The hub only needs
the lines: where the signer's title and name are (placement) and where the page already has
text (the copy stamp must not cover it).
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass

from pdfminer.converter import PDFPageAggregator
from pdfminer.layout import LAParams, LTPage, LTTextContainer, LTTextLine
from pdfminer.pdfdocument import PDFDocument
from pdfminer.pdfexceptions import PDFException
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser
from pdfminer.psexceptions import PSException

from schemas.errors import InvalidPdfError

__all__ = ["PageText", "TextLine", "page_text"]

#: Glyphs further apart than this many glyph widths start a new line (two signer blocks side
#: by side are two lines); words closer than ``word_margin`` are one word.
_JOIN_GAP = 0.8
_LAPARAMS = LAParams(char_margin=2.0, line_margin=0.3, word_margin=0.1, boxes_flow=None)


@dataclass(frozen=True)
class TextLine:
    """One line of text (NFC) and its box in PDF user space, origin bottom-left."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@dataclass(frozen=True)
class PageText:
    index: int
    x0: float
    y0: float
    x1: float
    y1: float
    lines: tuple[TextLine, ...]


def _lines(item: object, dx: float, dy: float) -> list[TextLine]:
    if isinstance(item, LTTextLine):
        text = unicodedata.normalize("NFC", " ".join(item.get_text().split()))
        if not text:
            return []
        x0, y0, x1, y1 = item.bbox
        return [TextLine(text, x0 + dx, y0 + dy, x1 + dx, y1 + dy)]
    if isinstance(item, LTTextContainer | LTPage):
        return [line for child in item for line in _lines(child, dx, dy)]
    return []


def page_text(data: bytes, page_index: int) -> PageText:
    """The text lines of page ``page_index`` (0-based; negative counts from the end)."""
    try:
        parser = PDFParser(io.BytesIO(data))
        document = PDFDocument(parser)
        pages = list(PDFPage.create_pages(document))
        page = pages[page_index]
        manager = PDFResourceManager()
        device = PDFPageAggregator(manager, laparams=_LAPARAMS)
        PDFPageInterpreter(manager, device).process_page(page)
        layout = device.get_result()
    except (PDFException, PSException, IndexError, ValueError, KeyError, TypeError) as exc:
        raise InvalidPdfError(
            f"the page text could not be read: {exc}",
            message_vi="Không đọc được nội dung trang văn bản để đặt chữ ký",
        ) from exc
    # pdfminer moves the media box origin to (0, 0); field rectangles are in user space.
    mx0, my0, mx1, my1 = (float(v) for v in page.mediabox)
    index = page_index if page_index >= 0 else len(pages) + page_index
    return PageText(index, mx0, my0, mx1, my1, tuple(_merge(_lines(layout, mx0, my0))))


def _merge(fragments: list[TextLine]) -> list[TextLine]:
    """Join fragments on one baseline that are closer than :data:`_JOIN_GAP` line heights.

    pdfminer only joins glyphs drawn one after the other; Word-style producers draw words
    (or glyphs) in any order, which leaves one fragment per word.
    """
    merged: list[TextLine] = []
    for frag in sorted(fragments, key=lambda f: (-round(f.y0), f.x0)):
        for i, line in enumerate(merged):
            tolerance = 0.3 * max(line.height, frag.height)
            gap = frag.x0 - line.x1
            if abs(line.y0 - frag.y0) <= tolerance and -tolerance <= gap <= _JOIN_GAP * line.height:
                joiner = " " if gap > 0.12 * line.height else ""
                merged[i] = TextLine(
                    line.text + joiner + frag.text,
                    line.x0,
                    min(line.y0, frag.y0),
                    max(line.x1, frag.x1),
                    max(line.y1, frag.y1),
                )
                break
        else:
            merged.append(frag)
    return merged
