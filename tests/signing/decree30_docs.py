"""Decree 30/2020 layout documents for placement tests, written with pyHanko's PDF writer and an
embedded Times-compatible font (Liberation Serif), in the ways real producers write text:

* ``"libreoffice"``: one text object per line, one shaped run (``TJ``) per line;
* ``"word"``: one positioned run per word, drawn out of reading order, under a ``cm`` scale
  (the page drawn in 0.75 pt units, as Word and browsers do).

Every drawn line is returned with its box, so tests check positions against what was drawn,
not against the hub's own text reader. A4, margins 20 mm top and bottom, 30 mm left, 15 mm
right (Decree 30/2020 Appendix I, I.1).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from typing import Literal

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.writer import PdfFileWriter

from signing.appearance import DEFAULT_FONT_PATH, pdf_ready_font

Style = Literal["libreoffice", "word"]
PAGE_W, PAGE_H = 595.0, 842.0
MM = 72 / 25.4
TOP = PAGE_H - 20 * MM
LEFT = 30 * MM
RIGHT = PAGE_W - 15 * MM
BOLD_PATH = DEFAULT_FONT_PATH.with_name("LiberationSerif-Bold.ttf")


@dataclass(frozen=True)
class Drawn:
    text: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass
class Signer:
    titles: tuple[str, ...]
    name: str
    cx: float


@dataclass
class DocPage:
    lines: list[tuple[str, float, float, int, bool]] = field(
        default_factory=list
    )  # text, cx|x, y, size, bold

    def centred(self, text: str, cx: float, y: float, size: int = 13, bold: bool = False) -> None:
        self.lines.append((text, -cx, y, size, bold))  # negative x: centre on |x|

    def left(self, text: str, x: float, y: float, size: int = 13, bold: bool = False) -> None:
        self.lines.append((text, x, y, size, bold))


@dataclass
class Built:
    pdf: bytes
    drawn: list[list[Drawn]]

    def find(self, text: str, page: int = -1) -> Drawn:
        return next(d for d in self.drawn[page] if d.text == text)


def header_page(*, agency: str = "SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG", body_lines: int = 12) -> DocPage:
    """Page 1 of a Quyết định: agency (left), national motto (right), number, title, body."""
    page = DocPage()
    left_cx, right_cx = LEFT + 95, RIGHT - 125
    first = TOP - 12
    page.centred("UBND TỈNH NINH BÌNH", left_cx, first, 12)
    page.centred(agency, left_cx, first - 15, 12, True)
    page.centred("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", right_cx, first, 12, True)
    page.centred("Độc lập - Tự do - Hạnh phúc", right_cx, first - 15, 13, True)
    page.centred("Số: 123/QĐ-SNNMT", left_cx, first - 45, 13)
    page.centred("Ninh Bình, ngày 05 tháng 3 năm 2026", right_cx, first - 45, 13)
    page.centred("QUYẾT ĐỊNH", PAGE_W / 2, first - 90, 14, True)
    page.centred("Về việc cấp giấy phép khai thác thủy sản", PAGE_W / 2, first - 106, 14, True)
    for i in range(body_lines):
        page.left(
            f"Điều {i + 1}. Nội dung quyết định dòng thứ {i + 1} theo quy định hiện hành.",
            LEFT + 20,
            first - 140 - 20 * i,
        )
    return page


def signature_blocks(page: DocPage, signers: list[Signer], *, y_title: float, gap: float = 62) -> None:
    """Boxes 7a/7b of each signer, and "Nơi nhận" (9a/9b) at the left when there is room."""
    for signer in signers:
        y = y_title
        for title in signer.titles:
            page.centred(title, signer.cx, y, 13, True)
            y -= 15
        page.centred(signer.name, signer.cx, y + 15 - gap, 14, True)
    if len(signers) == 1:
        page.left("Nơi nhận:", LEFT, y_title, 12, True)
        page.left("- Như Điều 3;", LEFT, y_title - 14, 11)
        page.left("- Lưu: VT.", LEFT, y_title - 27, 11)


def build(pages: list[DocPage], style: Style = "libreoffice", *, seed: int = 3) -> Built:
    writer = PdfFileWriter()
    if not any(page.lines for page in pages):  # a scan: no text, no fonts
        pages = []
    fonts: dict[bool, GlyphAccumulator] = {}
    if pages:  # the accumulators register objects with the writer as they are made
        fonts[False] = GlyphAccumulator(writer, open(pdf_ready_font(DEFAULT_FONT_PATH), "rb"), 13)  # noqa: SIM115
        fonts[True] = GlyphAccumulator(writer, open(pdf_ready_font(BOLD_PATH), "rb"), 13)  # noqa: SIM115
    rng = random.Random(seed)
    page_objs = []
    drawn: list[list[Drawn]] = []
    for page in pages:
        ops: list[bytes] = []
        boxes: list[Drawn] = []
        for text, x, y, size, bold in page.lines:
            font = fonts[bold]
            width = font.shape(text).x_advance * size
            x0 = -x - width / 2 if x < 0 else x
            boxes.append(Drawn(text, x0, y - 0.22 * size, x0 + width, y + 0.9 * size))
            fname = b"/F2" if bold else b"/F1"
            if style == "libreoffice":
                ops.append(
                    b"BT %s %d Tf %.2f %.2f Td %s ET"
                    % (fname, size, x0, y, font.shape(text, with_actual_text=False).graphics_ops)
                )
            else:
                pos = x0
                words = []
                for word in text.split(" "):
                    words.append((pos, word))
                    pos += (font.shape(word + " ").x_advance) * size
                for wx, word in words:
                    shaped = font.shape(word, with_actual_text=False).graphics_ops
                    # page in 0.75 pt units: coordinates divided by 0.75, font size too
                    ops.append(
                        b"BT %s %.3f Tf 1 0 0 1 %.3f %.3f Tm %s ET"
                        % (fname, size / 0.75, wx / 0.75, y / 0.75, shaped)
                    )
        if style == "word":
            rng.shuffle(ops)
            ops = [b"q 0.75 0 0 0.75 0 0 cm", *ops, b"Q"]
        stream = writer.add_object(generic.StreamObject(stream_data=b"\n".join(ops)))
        page_objs.append(stream)
        drawn.append(boxes)
    resources = generic.DictionaryObject()
    if pages:
        for font in fonts.values():
            font.prepare_write()
        resources[generic.NameObject("/Font")] = generic.DictionaryObject(
            {
                generic.NameObject("/F1"): fonts[False].as_resource(),
                generic.NameObject("/F2"): fonts[True].as_resource(),
            }
        )
    if not pages:
        page_objs.append(writer.add_object(generic.StreamObject(stream_data=b"0.8 g 60 60 475 722 re f")))
        drawn.append([])
    for stream in page_objs:
        writer.insert_page(
            generic.DictionaryObject(
                {
                    generic.NameObject("/Type"): generic.NameObject("/Page"),
                    generic.NameObject("/MediaBox"): generic.ArrayObject(
                        [generic.FloatObject(v) for v in (0, 0, PAGE_W, PAGE_H)]
                    ),
                    generic.NameObject("/Contents"): stream,
                    generic.NameObject("/Resources"): resources,
                }
            )
        )
    out = io.BytesIO()
    writer.write(out)
    return Built(out.getvalue(), drawn)


KT_GIAM_DOC = Signer(("KT. GIÁM ĐỐC", "PHÓ GIÁM ĐỐC"), "Nguyễn Văn An", RIGHT - 110)


def quyet_dinh(
    style: Style = "libreoffice", signers: list[Signer] | None = None, *, own_page: bool = False
) -> Built:
    """A Quyết định with its signature block(s) at the bottom of page 1, or alone on page 2."""
    signers = signers or [KT_GIAM_DOC]
    first = header_page(body_lines=30 if own_page else 12)
    if own_page:
        last = DocPage()
        signature_blocks(last, signers, y_title=TOP - 20)
        return build([first, last], style)
    signature_blocks(first, signers, y_title=330)
    return build([first], style)


def scan_like() -> bytes:
    """A page with no text at all (a scan): no signer block can be found."""
    return build([DocPage()]).pdf
