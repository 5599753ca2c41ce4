"""Decree 30/2020/NĐ-CP Appendix I signature appearances (docs/signing.md §5.2).

* Personal signature of the competent person (box 7c, Part I.II.7d): the signature image, blue,
  transparent PNG, centred between the signer's title and name.
* Agency signature (box 8, 8a): the seal image, red, real size, transparent PNG, covering about
  the left third of the personal signature image (opacity 1.0).
* Electronic copies (Part II.I, box 14) and separate-file attachments/appendices (8b, III.1d): no
  image; text at the top right of page 1 — copy form or document number, agency name, signing
  time (ISO 8601 with the Vietnam offset) — Times New Roman, regular, 10 pt, black. We embed a
  Times-metric-compatible Unicode font (TCVN 6909:2001 requires Unicode Vietnamese).

Positions: the personal signature is placed between the signer's title and name found in the
page text (:mod:`signing.placement`), else at an explicit position or the box of a template
per procedure (:class:`AppearanceTemplate`); the seal follows the signature.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from pathlib import Path

from PIL import Image
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.layout import AxisAlignment, InnerScaling, Margins, SimpleBoxLayoutRule
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.stamp import BaseStampStyle, StaticStampStyle, TextStampStyle

from signing.pdfa import CidSetGlyphAccumulatorFactory, png_without_soft_mask
from signing.templates import DEFAULT_FONT_PATH, ISO8601_VN_FORMAT, PT_PER_MM, AppearanceTemplate, Box

__all__ = [
    "DEFAULT_FONT_PATH",
    "ISO8601_VN_FORMAT",
    "AppearanceTemplate",
    "Box",
    "pdfa_safe_image",
    "personal_style",
    "seal_box",
    "seal_style",
    "text_stamp_lines",
    "text_stamp_style",
]

_font_lock = threading.Lock()


def pdf_ready_font(path: Path) -> Path:
    """Return a copy of the font rescaled to 1000 units/em (cached on disk).

    pyHanko's glyph accumulator writes ``/W`` glyph widths and ``TJ`` adjustments in raw font
    units, which is only right for 1000-upem fonts; Liberation Serif and Times New Roman use
    2048, which renders letter-spaced text. Rescaling the font (fontTools) keeps the outlines
    and metrics and makes the embedded widths correct.
    """
    from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
    from fontTools.ttLib.scaleUpem import scale_upem  # type: ignore[import-untyped]

    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cache_dir = Path(os.environ.get("HUB_FONT_CACHE", Path(tempfile.gettempdir()) / "motcua-hub-fonts"))
    target = cache_dir / f"{path.stem}-{key}-upem1000v2{path.suffix}"
    if target.exists():
        return target
    with _font_lock:
        if target.exists():
            return target
        font = TTFont(str(path))
        if font["head"].unitsPerEm == 1000:
            return path
        scale_upem(font, 1000)
        if "FFTM" in font:  # FontForge timestamp table: fontTools cannot subset it (log noise)
            del font["FFTM"]
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".part")
        os.close(fd)
        font.save(tmp)
        os.replace(tmp, target)
    return target


def seal_box(template: AppearanceTemplate, p: Box) -> Box:
    """Seal at real size, centred vertically on the signature ``p``, covering its left third
    (Decree 30/2020 Art. 33(1b))."""
    size = template.seal_diameter_mm * PT_PER_MM
    right = p.x + p.width * template.seal_overlap_fraction
    cy = p.y + p.height / 2
    return Box(page=p.page, x=right - size, y=cy - size / 2, width=size, height=size)


def _image(png: bytes) -> PdfImage:
    img: Image.Image = Image.open(io.BytesIO(png))
    img.load()
    if img.mode not in ("RGBA", "LA"):
        img = img.convert("RGBA")
    return PdfImage(img)


def pdfa_safe_image(png: bytes, pdfa_part: int | None) -> PdfImage:
    """``png`` as a PDF image the document's PDF/A part allows: no soft mask in PDF/A-1
    (ISO 19005-1 §6.4; :mod:`signing.pdfa`), the PNG's own alpha otherwise."""
    return png_without_soft_mask(png) if pdfa_part == 1 else _image(png)


def _image_only_style(png: bytes, scaling: InnerScaling, pdfa_part: int | None = None) -> BaseStampStyle:
    """An appearance that is only ``png``, centred in the widget, opacity 1, no border."""
    return StaticStampStyle(
        background=pdfa_safe_image(png, pdfa_part),
        background_opacity=1.0,
        border_width=0,
        background_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MID,
            y_align=AxisAlignment.ALIGN_MID,
            inner_content_scaling=scaling,
        ),
    )


def personal_style(signature_png: bytes, *, pdfa_part: int | None = None) -> BaseStampStyle:
    """Image-only appearance for the competent person's signature (blue PNG, shrunk to fit)."""
    return _image_only_style(signature_png, InnerScaling.SHRINK_TO_FIT, pdfa_part)


def seal_style(seal_png: bytes, *, pdfa_part: int | None = None) -> BaseStampStyle:
    """Image-only appearance for the agency seal (red PNG filling its real-size box)."""
    return _image_only_style(seal_png, InnerScaling.STRETCH_TO_FIT, pdfa_part)


def text_stamp_lines(
    *, kind: str, copy_form: str, agency_name: str | None, document_number: str | None
) -> str:
    """Text template for copies ("SAO Y" …) and separate-file attachments (Appendix I).

    ``%(ts)s`` is filled by pyHanko with the signing time in :data:`ISO8601_VN_FORMAT`.
    """
    if kind == "copy":
        lines = [copy_form, agency_name or "", "%(ts)s"]
    else:
        lines = [document_number or "", agency_name or "", "%(ts)s"]
    return "\n".join(line.replace("%", "%%") if line != "%(ts)s" else line for line in lines if line)


def text_stamp_style(
    template: AppearanceTemplate,
    stamp_text: str,
    font_size: int | None = None,
    *,
    pdfa_part: int | None = None,
) -> TextStampStyle:
    """Black text (10 pt, or as fitted) in an embedded Times-compatible Unicode font, no border,
    no image (docs/signing.md §5.6); a PDF/A-1 font subset carries its ``/CIDSet``
    (:mod:`signing.pdfa`)."""
    size = template.font_size if font_size is None else font_size
    factory = CidSetGlyphAccumulatorFactory if pdfa_part == 1 else GlyphAccumulatorFactory
    font = factory(str(pdf_ready_font(template.resolved_font())), font_size=size)
    return TextStampStyle(
        stamp_text=stamp_text,
        timestamp_format=ISO8601_VN_FORMAT,
        border_width=0,
        text_box_style=TextBoxStyle(
            font=font,
            font_size=size,
            leading=size + 2,
            border_width=0,
            # no default 10 pt margin around the text (pyHanko DEFAULT_TEXT_BOX_MARGIN): the box
            # is sized to the text by signing/stamp_layout.py
            box_layout_rule=SimpleBoxLayoutRule(
                x_align=AxisAlignment.ALIGN_MIN,
                y_align=AxisAlignment.ALIGN_MAX,
                margins=Margins(0, 0, 0, 0),
                inner_content_scaling=InnerScaling.NO_SCALING,
            ),
        ),
        inner_content_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MAX,
            y_align=AxisAlignment.ALIGN_MAX,
            margins=Margins(2, 2, 2, 2),
            inner_content_scaling=InnerScaling.NO_SCALING,
        ),
    )
