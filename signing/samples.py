# mypy: disable-error-code="no-untyped-call"
"""Sample material for tests and demos: a blue signature PNG, a red round seal PNG and a small
A4 PDF. Generated programmatically (Pillow / pyHanko writer); no real signature or seal images.

Decree 30/2020 Appendix I: the personal signature image is blue PNG with a transparent
background; the agency seal is red PNG, real size, transparent background.
"""

from __future__ import annotations

import io
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PdfFileWriter

from signing.appearance import DEFAULT_FONT_PATH

__all__ = [
    "sample_pdf",
    "sample_seal_png",
    "sample_signature_png",
    "write_sample_images",
    "write_sample_pdfs",
]

_BLUE = (20, 40, 170, 255)
_RED = (210, 20, 30, 255)


def sample_signature_png(seed: int = 7, size: tuple[int, int] = (600, 240)) -> bytes:
    """A blue handwritten-looking scribble on a transparent background (PNG bytes)."""
    rng = random.Random(seed)
    w, h = size
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    points: list[tuple[float, float]] = []
    x = w * 0.08
    while x < w * 0.9:
        t = x / w * 9 * math.pi
        y = h * 0.5 + math.sin(t) * h * 0.25 * rng.uniform(0.6, 1.1) + rng.uniform(-8, 8)
        points.append((x, y))
        x += rng.uniform(6, 14)
    draw.line(points, fill=_BLUE, width=7, joint="curve")
    draw.line([(w * 0.15, h * 0.78), (w * 0.85, h * 0.7)], fill=_BLUE, width=5)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def sample_seal_png(
    text: str = "SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG * TỈNH NINH BÌNH *",
    *,
    diameter_px: int = 425,  # 36 mm at 300 dpi
    font_path: Path = DEFAULT_FONT_PATH,
) -> bytes:
    """A red round seal (two rings, text around, star in the centre), transparent PNG."""
    d = diameter_px
    img = Image.new("RGBA", (d, d), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    c = d / 2
    draw.ellipse((4, 4, d - 4, d - 4), outline=_RED, width=max(6, d // 60))
    draw.ellipse((d * 0.17, d * 0.17, d * 0.83, d * 0.83), outline=_RED, width=max(3, d // 120))
    star = []
    for i in range(10):
        r = d * 0.16 if i % 2 == 0 else d * 0.065
        a = -math.pi / 2 + i * math.pi / 5
        star.append((c + r * math.cos(a), c + r * math.sin(a)))
    draw.polygon(star, fill=_RED)
    try:
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype(str(font_path), int(d * 0.07))
    except OSError:
        font = ImageFont.load_default()
    radius = d * 0.415
    n = len(text)
    for i, ch in enumerate(text):
        angle = -math.pi / 2 - math.pi * 0.95 + (2 * math.pi * 0.95) * i / max(n - 1, 1)
        glyph = Image.new("RGBA", (int(d * 0.1), int(d * 0.1)), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((d * 0.05, d * 0.05), ch, font=font, fill=_RED, anchor="mm")
        rotated = glyph.rotate(-math.degrees(angle) - 90, resample=Image.Resampling.BICUBIC)
        gx = c + radius * math.cos(angle) - rotated.width / 2
        gy = c + radius * math.sin(angle) - rotated.height / 2
        img.alpha_composite(rotated, (int(gx), int(gy)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def sample_pdf(title: str = "QUYET DINH", *, pages: int = 1, padding_bytes: int = 0) -> bytes:
    """A small A4 PDF (Helvetica text, ASCII) to sign in tests and benchmarks."""
    w = PdfFileWriter()
    font = w.add_object(
        generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Font"),
                generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
                generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica"),
                generic.NameObject("/Encoding"): generic.NameObject("/WinAnsiEncoding"),
            }
        )
    )
    for n in range(pages):
        body = (
            f"BT /F1 13 Tf 85 770 Td (UBND TINH NINH BINH) Tj ET\n"
            f"BT /F1 16 Tf 230 650 Td ({title}) Tj ET\n"
            f"BT /F1 11 Tf 85 600 Td (Trang {n + 1}/{pages}) Tj ET\n"
            f"BT /F1 12 Tf 380 230 Td (GIAM DOC) Tj ET\n"
            f"BT /F1 12 Tf 365 120 Td (Nguyen Thi Lap Lanh) Tj ET\n"
        ).encode()
        if padding_bytes:
            body += b"% " + b"x" * padding_bytes + b"\n"
        stream = w.add_object(generic.StreamObject(stream_data=body))
        page = generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Page"),
                generic.NameObject("/MediaBox"): generic.ArrayObject(
                    [generic.NumberObject(v) for v in (0, 0, 595, 842)]
                ),
                generic.NameObject("/Contents"): stream,
                generic.NameObject("/Resources"): generic.DictionaryObject(
                    {generic.NameObject("/Font"): generic.DictionaryObject({generic.NameObject("/F1"): font})}
                ),
            }
        )
        w.insert_page(page)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def write_sample_pdfs(
    directory: Path, count: int, *, title: str = "QUYET DINH", pages: int = 1
) -> list[Path]:
    """``count`` sample PDFs ``qd-000.pdf``, ``qd-001.pdf``… in ``directory``, titled ``<title> <i>``
    (inputs of batch-signing tests and benchmarks)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = directory / f"qd-{i:03d}.pdf"
        path.write_bytes(sample_pdf(f"{title} {i}", pages=pages))
        paths.append(path)
    return paths


def write_sample_images(directory: Path) -> dict[str, Path]:
    """The officer's blue signature PNG ``chu-ky.png`` and the agency's red seal PNG
    ``con-dau.png`` in ``directory``, by key role (``officer``, ``agency``)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"officer": directory / "chu-ky.png", "agency": directory / "con-dau.png"}
    paths["officer"].write_bytes(sample_signature_png())
    paths["agency"].write_bytes(sample_seal_png())
    return paths
