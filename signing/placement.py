"""Where the competent person's signature image goes on the page (docs/signing.md §5.5).

Decree 30/2020/NĐ-CP Appendix I, box 7c and part I.II.7d: the image of the competent person's
digital signature is placed *between* the signer's authority/title line(s) (box 7a, e.g.
"KT. GIÁM ĐỐC / PHÓ GIÁM ĐỐC", upper case) and the signer's full name (box 7b, lower case);
the agency seal covers about the left third of it (Art. 33(1b), box 8).

The block is found in the text of the last page (:mod:`signing.pagetext`): a line in capitals
that is, or sits under, a title ("GIÁM ĐỐC", "CHỦ TỊCH", "… TRƯỞNG", "KT./TM./TL./TUQ./Q." …),
followed in the same column by a name-like line (two to seven capitalised words) with room for
an image between them. The image box keeps the image's aspect ratio, is centred horizontally
on the block and vertically in the gap, and never leaves the page.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass

from asn1crypto import x509
from PIL import Image
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from schemas.errors import SignaturePlacementError
from signing.appearance import Box
from signing.pagetext import PageText, TextLine

__all__ = [
    "DEFAULT_ASPECT",
    "SignerBlock",
    "certificate_name",
    "find_signer_blocks",
    "image_aspect",
    "locate_signature",
    "pdf_bytes",
    "signature_box",
    "signed_personal_box",
]

#: Title words of box 7a (folded: no diacritics, upper case).
_TITLE = re.compile(
    r"^(?:KT|TM|TL|TUQ|Q)\.\s"
    r"|\b(?:GIAM DOC|CHU TICH|CHANH (?:VAN PHONG|THANH TRA|AN)|VIEN TRUONG|TRUONG [A-Z]+|[A-Z]+ TRUONG"
    r"|BI THU|THU KY|KE TOAN TRUONG|NGUOI DUNG DAU)\b"
)
_NAME_WORD = re.compile(r"^[^\W\d_][^\W\d_'.-]*$")
#: Smallest gap between title and name that can hold a signature image (pt).
MIN_GAP = 24.0
#: Largest image drawn in a bigger gap (pt): about 32 mm high, 70 mm wide.
MAX_HEIGHT = 90.0
MAX_WIDTH = 200.0
#: Width / height assumed for a signature image not known yet (the seal's signer has none).
DEFAULT_ASPECT = 2.5
_PAD = 2.0
_PAGE_MARGIN = 8.0


def _fold(text: str) -> str:
    """Upper case without diacritics (Đ → D), single spaces: for matching titles and names."""
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return " ".join("".join(ch for ch in text if unicodedata.category(ch) != "Mn").upper().split())


def _is_capitals(line: TextLine) -> bool:
    letters = [ch for ch in line.text if ch.isalpha()]
    return len(letters) >= 2 and all(ch.isupper() for ch in letters)


def _is_name(line: TextLine) -> bool:
    """Box 7b: the full name, e.g. "Nguyễn Văn An" (capitalised words, no digits or marks)."""
    words = line.text.split()
    return (
        2 <= len(words) <= 7
        and not _is_capitals(line)
        and all(_NAME_WORD.match(w) and w[0].isupper() for w in words)
    )


def _same_column(a: TextLine, b: TextLine) -> bool:
    slack = max(20.0, 0.25 * max(a.x1 - a.x0, b.x1 - b.x0))
    return a.x0 - slack <= b.cx <= a.x1 + slack and b.x0 - slack <= a.cx <= b.x1 + slack


@dataclass(frozen=True)
class SignerBlock:
    """Box 7a (title lines, top to bottom) and 7b (name) of one signer on ``page``."""

    page: int
    titles: tuple[TextLine, ...]
    name: TextLine

    @property
    def gap(self) -> tuple[float, float]:
        """Bottom and top of the space between the last title line and the name (pt)."""
        return self.name.y1, self.titles[-1].y0

    @property
    def cx(self) -> float:
        return (self.titles[-1].cx + self.name.cx) / 2


def find_signer_blocks(page: PageText) -> list[SignerBlock]:
    """Every signer block on ``page``, left to right then top to bottom."""
    lines = page.lines
    blocks = []
    for line in lines:
        if not _is_capitals(line):
            continue
        below = sorted(
            (o for o in lines if o.y1 <= line.y0 + 1 and o is not line and _same_column(line, o)),
            key=lambda o: -o.y1,
        )
        if not below or not _is_name(below[0]) or line.y0 - below[0].y1 < MIN_GAP:
            continue
        # this line and the capital lines stacked right above it form the title (box 7a)
        titles = [line]
        while True:
            top = titles[0]
            above = [
                o
                for o in lines
                if o.y0 >= top.y1 - 1
                and o.y0 - top.y1 < 1.2 * top.height
                and _is_capitals(o)
                and _same_column(top, o)
            ]
            if not above:
                break
            titles.insert(0, min(above, key=lambda o: o.y0))
        if any(_TITLE.search(_fold(t.text)) for t in titles):
            blocks.append(SignerBlock(page.index, tuple(titles), below[0]))
    return sorted(blocks, key=lambda b: (round(b.cx), -b.name.y1))


def image_aspect(png: bytes) -> float:
    """Width / height of the image's visible (not fully transparent) part."""
    img = Image.open(io.BytesIO(png))
    bbox = img.convert("RGBA").getchannel("A").getbbox() or (0, 0, img.width, img.height)
    return max(bbox[2] - bbox[0], 1) / max(bbox[3] - bbox[1], 1)


def signature_box(block: SignerBlock, page: PageText, aspect: float) -> Box:
    """The image box: centred in the gap under the title, image proportions, inside the page."""
    bottom, top = block.gap
    height = min(top - bottom - 2 * _PAD, MAX_HEIGHT)
    half_room = min(block.cx - page.x0, page.x1 - block.cx) - _PAGE_MARGIN
    width = height * aspect
    if width > min(2 * half_room, MAX_WIDTH):
        width = min(2 * half_room, MAX_WIDTH)
        height = width / aspect
    cy = (bottom + top) / 2
    return Box(page=block.page, x=block.cx - width / 2, y=cy - height / 2, width=width, height=height)


def _matches(block: SignerBlock, signer_name: str) -> bool:
    return _fold(block.name.text) == _fold(signer_name)


def locate_signature(page: PageText, aspect: float, signer_name: str | None = None) -> Box:
    """The signature box on ``page``; with several signer blocks, the one of ``signer_name``.

    Raises :class:`SignaturePlacementError` when no block (or no single block) is found.
    """
    blocks = find_signer_blocks(page)
    if len(blocks) > 1 and signer_name:
        blocks = [b for b in blocks if _matches(b, signer_name)] or blocks
    if len(blocks) == 1:
        return signature_box(blocks[0], page, aspect)
    if not blocks:
        raise SignaturePlacementError(
            f"no signer block (title line, then the signer's name) found on page {page.index + 1}; "
            "give an explicit position or an appearance template with a signature box",
            message_vi=(
                f"Không tìm thấy vị trí ký (chức vụ và họ tên người ký) trên trang {page.index + 1}; "
                "hãy chỉ định vị trí chữ ký hoặc mẫu trình bày"
            ),
            details={"page": page.index + 1},
        )
    names = [b.name.text for b in blocks]
    raise SignaturePlacementError(
        f"several signer blocks on page {page.index + 1} ({', '.join(names)}) and none is the "
        f"signer's ({signer_name or 'unknown'}); give an explicit position",
        message_vi=(
            f"Trang {page.index + 1} có nhiều vị trí ký ({', '.join(names)}); hãy chỉ định vị trí chữ ký"
        ),
        details={"page": page.index + 1, "signers": names},
    )


def certificate_name(cert: x509.Certificate | None) -> str | None:
    """The certificate subject's common name (an officer's full name, docs/signing.md §6.1)."""
    if cert is None:
        return None
    name = cert.subject.native.get("common_name")
    return name if isinstance(name, str) else None


def pdf_bytes(writer: IncrementalPdfFileWriter) -> bytes:
    """The bytes of the document ``writer`` updates."""
    stream = writer.prev.stream
    getvalue = getattr(stream, "getvalue", None)
    if getvalue is not None:
        return bytes(getvalue())
    stream.seek(0)
    return bytes(stream.read())


def signed_personal_box(reader: PdfFileReader, field_name: str = "Sig_personal") -> Box | None:
    """The box of the competent person's signature already signed in the document, if any."""
    count = int(reader.root["/Pages"]["/Count"])
    for index in range(count):
        page, _ = reader.find_page_for_modification(index)  # type: ignore[no-untyped-call]
        for annot in page.get_object().get("/Annots", ()):
            widget = annot.get_object()
            if widget.get("/T") == field_name and widget.get("/V") is not None and "/Rect" in widget:
                x0, y0, x1, y1 = (float(v) for v in widget["/Rect"])
                return Box(page=index, x=min(x0, x1), y=min(y0, y1), width=abs(x1 - x0), height=abs(y1 - y0))
    return None
