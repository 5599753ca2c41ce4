"""Copy and attachment stamps (Decree 30/2020 Appendix I part II, III.1): the whole text is
drawn — wrapped or shrunk, never clipped — in the free top right of page 1 without covering
the page's text (the national motto in a 20 mm top margin), in lower case ("chữ in thường"),
Times-compatible, 10 pt where it fits, with the ISO 8601 time at +07:00."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.appearance import Box
from signing.keys import Pkcs12KeySource
from signing.models import SignatureLevel, SignOptions, SignRole
from signing.signer_service import SigningService
from signing.stamp_layout import agency_lower_case
from tests.signing.conftest import Sign
from tests.signing.decree30_docs import quyet_dinh

KeyFactory = Callable[..., Pkcs12KeySource]
LONG_AGENCY = "SỞ NÔNG NGHIỆP VÀ PHÁT TRIỂN NÔNG THÔN TỈNH NINH BÌNH"
LOWER_AGENCY = "Sở Nông nghiệp và Phát triển nông thôn tỉnh Ninh Bình"
ISO_VN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+07:00")
Word = tuple[str, float, float, float, float]  # text, x0, y0, x1, y1 in PDF space


def _words(data: bytes, tmp_path: Path) -> list[Word]:
    """Words of page 1 with poppler's boxes (top-left origin turned to PDF space)."""
    src = tmp_path / "w.pdf"
    src.write_bytes(data)
    html = subprocess.run(
        ["pdftotext", "-bbox", "-f", "1", "-l", "1", str(src), "-"], capture_output=True, check=True
    ).stdout
    root = etree.fromstring(html, etree.HTMLParser(encoding="utf-8"))
    page = root.find(".//page")
    assert page is not None
    height = float(page.get("height", "0"))
    out = []
    for w in root.iter("word"):
        x0, y0, x1, y1 = (float(w.get(k, "0")) for k in ("xmin", "ymin", "xmax", "ymax"))
        out.append((w.text or "", x0, height - y1, x1, height - y0))
    return out


def _stamp_rect(data: bytes) -> tuple[float, float, float, float]:
    (sig,) = PdfFileReader(io.BytesIO(data)).embedded_signatures
    x0, y0, x1, y1 = (float(v) for v in sig.sig_field["/Rect"])
    return x0, y0, x1, y1


def _inside(word: Word, rect: tuple[float, float, float, float], slack: float = 0.5) -> bool:
    _, x0, y0, x1, y1 = word
    return x0 >= rect[0] - slack and x1 <= rect[2] + slack and y0 >= rect[1] - slack and y1 <= rect[3] + slack


def _overlaps(word: Word, rect: tuple[float, float, float, float]) -> bool:
    _, x0, y0, x1, y1 = word
    return x0 < rect[2] and x1 > rect[0] and y0 < rect[3] and y1 > rect[1]


def test_lower_case_rule() -> None:
    assert agency_lower_case(LONG_AGENCY) == LOWER_AGENCY
    assert agency_lower_case("ỦY BAN NHÂN DÂN TỈNH NINH BÌNH") == "Ủy ban nhân dân tỉnh Ninh Bình"
    assert agency_lower_case("Sở Tài chính tỉnh Ninh Bình") == "Sở Tài chính tỉnh Ninh Bình"  # as given


@pytest.mark.parametrize("style", ["libreoffice", "word"])
def test_long_copy_stamp_is_whole_and_covers_no_text(
    style: str, signing_service: SigningService, p12_key: KeyFactory, tmp_path: Path
) -> None:
    doc = quyet_dinh(style)  # type: ignore[arg-type]
    before = _words(doc.pdf, tmp_path)
    signed, result = asyncio.run(
        signing_service.sign_bytes(
            doc.pdf,
            p12_key("agency"),
            SignOptions(
                level=SignatureLevel.B_B, role=SignRole.COPY, copy_form="SAO Y", agency_name=LONG_AGENCY
            ),
        )
    )
    rect = _stamp_rect(signed)
    assert rect[0] > 595 / 2  # top right of page 1
    assert rect[3] > 842 - 20 * 72 / 25.4  # in the top margin
    assert not [w for w in before if _overlaps(w, rect)], "the stamp covers the page's text"
    added = [w for w in _words(signed, tmp_path) if w not in before]
    text = " ".join(w[0] for w in added)
    assert text.startswith("Sao y ")
    assert LOWER_AGENCY in text
    stamp_time = ISO_VN.search(text)
    assert stamp_time is not None
    assert stamp_time.group(0) == result.signed_at.strftime("%Y-%m-%dT%H:%M:%S+07:00")
    assert all(_inside(w, rect) for w in added), "stamp text drawn outside its box (clipped)"
    heights = {round(w[4] - w[2]) for w in added}
    assert max(heights) <= 12  # 10 pt type (poppler's word box is about 1.1 em)


def test_stamp_shrinks_into_an_explicit_box(sign: Sign, tmp_path: Path) -> None:
    doc = quyet_dinh()
    box = Box(page=0, x=380, y=790, width=170, height=34)
    options = SignOptions(
        level=SignatureLevel.B_B,
        role=SignRole.ATTACHMENT,
        document_number="123/QĐ-SNNMT",
        agency_name=LONG_AGENCY,
        position=box,
    )
    signed, _ = sign(options, key="agency", pdf=doc.pdf)
    rect = _stamp_rect(signed)
    assert rect == (380, 790, 550, 824)
    added = [w for w in _words(signed, tmp_path) if w not in _words(doc.pdf, tmp_path)]
    assert "123/QĐ-SNNMT" in [w[0] for w in added]
    assert all(_inside(w, rect) for w in added)
    assert ISO_VN.search(" ".join(w[0] for w in added))
