"""The certify flow the hub uses for results (officer certifies and reserves the agency field, the
agency seals it): the red seal must lie *on top of* the left third of the blue signature
(Decree 30/2020 Art. 33(1b), Appendix I box 8). Checked on the page order of the widget
annotations and on the page as poppler renders it."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.keys import Pkcs12KeySource

KeyFactory = Callable[..., Pkcs12KeySource]
DPI = 200


def _render_last_page(data: bytes, tmp_path: Path, name: str) -> Image.Image:
    src = tmp_path / f"{name}.pdf"
    src.write_bytes(data)
    pages = int(PdfFileReader(io.BytesIO(data)).root["/Pages"]["/Count"])
    out = tmp_path / name
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            str(DPI),
            "-f",
            str(pages),
            "-l",
            str(pages),
            "-singlefile",
            "-png",
            str(src),
            str(out),
        ],
        check=True,
    )
    return Image.open(f"{out}.png").convert("RGB")


def _is_blue(p: object) -> bool:
    assert isinstance(p, tuple)
    r, g, b = (int(v) for v in p)
    return b > 120 and b > r + 60 and b > g + 40


def _is_red(p: object) -> bool:
    assert isinstance(p, tuple)
    r, g, b = (int(v) for v in p)
    return r > 120 and r > g + 60 and r > b + 60


def _annots(data: bytes) -> list[str]:
    reader = PdfFileReader(io.BytesIO(data))
    page = reader.root["/Pages"]["/Kids"][-1].get_object()
    return [str(a.get_object().get("/T")) for a in page["/Annots"]]


def test_seal_drawn_over_the_signature(certified_then_sealed: tuple[bytes, bytes], tmp_path: Path) -> None:
    officer, sealed = certified_then_sealed
    order = _annots(sealed)
    assert order.index("Sig_personal") < order.index("Sig_agency")  # later widgets are drawn on top

    before = _render_last_page(officer, tmp_path, "officer")
    after = _render_last_page(sealed, tmp_path, "sealed")
    # Where the seal's ink crosses the signature's ink the seal's red must show.
    width, height = before.size
    b_px = before.load()
    a_px = after.load()
    assert b_px is not None
    assert a_px is not None
    blue_before = [(x, y) for y in range(height) for x in range(width) if _is_blue(b_px[x, y])]
    assert blue_before
    now_red = [xy for xy in blue_before if _is_red(a_px[xy])]
    still_blue = [xy for xy in blue_before if _is_blue(a_px[xy])]
    assert len(now_red) > 10, "no signature pixel is covered by the seal"
    assert still_blue  # the right two thirds of the signature stay visible
