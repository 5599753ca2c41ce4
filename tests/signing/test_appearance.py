"""Decree 30/2020 Appendix I appearances: images, positions, and the copy/attachment text stamp
read back from the signed PDF with poppler's pdftotext (Vietnamese diacritics intact)."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader

from schemas.errors import ConfigurationError, SigningError
from signing.appearance import AppearanceTemplate, Box, seal_box, text_stamp_lines
from signing.keys import Pkcs12KeySource
from signing.models import SignatureLevel, SignOptions, SignRole
from signing.samples import sample_pdf, sample_seal_png, sample_signature_png
from signing.signer_service import SigningConfig, SigningService
from tests.signing.conftest import Sign
from tests.signing.decree30_docs import scan_like

KeyFactory = Callable[..., Pkcs12KeySource]
AGENCY = "Sở Nông nghiệp và Môi trường tỉnh Ninh Bình"
ISO_VN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+07:00")


def _pdftotext(data: bytes, tmp_path: Path, *, first_page_only: bool = True) -> str:
    src = tmp_path / "t.pdf"
    src.write_bytes(data)
    args = ["pdftotext", "-layout"]
    if first_page_only:
        args += ["-f", "1", "-l", "1"]
    return subprocess.run([*args, str(src), "-"], capture_output=True, text=True, check=True).stdout


def _widget_rects(data: bytes) -> dict[str, tuple[float, ...]]:
    reader = PdfFileReader(io.BytesIO(data))
    out = {}
    for sig in reader.embedded_signatures:
        field = sig.sig_field
        out[sig.field_name] = tuple(float(v) for v in field["/Rect"])
    return out


def _pixels(img: Image.Image) -> list[tuple[int, int, int, int]]:
    raw = img.tobytes()
    return [(raw[i], raw[i + 1], raw[i + 2], raw[i + 3]) for i in range(0, len(raw), 4)]


def test_sample_images_are_transparent_and_coloured() -> None:
    sig = Image.open(io.BytesIO(sample_signature_png())).convert("RGBA")
    seal = Image.open(io.BytesIO(sample_seal_png())).convert("RGBA")
    for img in (sig, seal):
        assert img.getpixel((0, 0))[3] == 0  # transparent background
    sig_ink = [p for p in _pixels(sig) if p[3] > 128]
    seal_ink = [p for p in _pixels(seal) if p[3] > 128]
    assert sig_ink
    assert seal_ink
    assert all(b > r for r, _, b, _ in sig_ink)  # blue
    assert all(r > b for r, _, b, _ in seal_ink)  # red


def test_seal_covers_left_third_of_signature() -> None:
    seal = seal_box(AppearanceTemplate(), Box(page=0, x=300, y=100, width=180, height=90))
    assert seal.x + seal.width == pytest.approx(300 + 180 / 3)
    assert seal.width == pytest.approx(36 * 72 / 25.4)  # real size, 36 mm
    assert seal.y + seal.height / 2 == pytest.approx(100 + 45)


@pytest.mark.parametrize("form", ["SAO Y", "SAO LỤC", "TRÍCH SAO"])
def test_copy_stamp_text_round_trip(
    form: str,
    signing_service: SigningService,
    p12_key: KeyFactory,
    tmp_path: Path,
    pdfsig: Callable[[Path], str],
) -> None:
    signed, result = asyncio.run(
        signing_service.sign_bytes(
            sample_pdf(),
            p12_key("agency"),
            SignOptions(level=SignatureLevel.B_T, role=SignRole.COPY, copy_form=form, agency_name=AGENCY),  # type: ignore[arg-type]
        )
    )
    text = unicodedata.normalize("NFC", _pdftotext(signed, tmp_path))
    assert form.capitalize() in text  # "chữ in thường" (Appendix I part II): "Sao y"
    assert AGENCY in text
    stamp_time = ISO_VN.search(text)
    assert stamp_time is not None
    assert stamp_time.group(0) == result.signed_at.strftime("%Y-%m-%dT%H:%M:%S+07:00")
    # top right of page 1
    (rect,) = _widget_rects(signed).values()
    assert rect[0] > 595 / 2
    assert rect[3] > 842 - 100
    path = tmp_path / "c.pdf"
    path.write_bytes(signed)
    # the stamp font is an embedded subset of the Times-compatible font
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    liberation = [line for line in fonts.splitlines() if "LiberationSerif" in line]
    assert liberation
    assert " yes " in liberation[0]
    assert "Signature is Valid" in pdfsig(path)


def test_attachment_stamp_shows_document_number(sign: Sign, tmp_path: Path) -> None:
    options = SignOptions(
        level=SignatureLevel.B_B, role=SignRole.ATTACHMENT, document_number="123/QĐ-SNNMT", agency_name=AGENCY
    )
    signed, _ = sign(options, key="agency", pdf=sample_pdf("PHU LUC"))
    text = unicodedata.normalize("NFC", _pdftotext(signed, tmp_path))
    assert "123/QĐ-SNNMT" in text
    assert ISO_VN.search(text)


def test_personal_and_seal_widgets_overlap_per_decree(certified_then_sealed: tuple[bytes, bytes]) -> None:
    _, second = certified_then_sealed
    rects = _widget_rects(second)
    px1, _, px2, _ = rects["Sig_personal"]
    sx1, _, sx2, _ = rects["Sig_agency"]
    assert sx1 < px1 < sx2 < px2
    assert (sx2 - px1) == pytest.approx((px2 - px1) / 3, abs=1.5)
    # both on the last page (template page -1)
    reader = PdfFileReader(io.BytesIO(second))
    last_page = reader.root["/Pages"]["/Kids"][1].get_object()
    annots = [a.get_object().get("/T") for a in last_page["/Annots"]]
    assert {"Sig_personal", "Sig_agency"} <= set(annots)


def test_text_stamp_percent_signs_are_literal() -> None:
    lines = text_stamp_lines(kind="copy", copy_form="SAO Y", agency_name="Cơ quan 100%", document_number=None)
    assert "100%%" in lines
    assert lines.endswith("%(ts)s")


def test_missing_font_is_a_configuration_error(
    signing_config: SigningConfig, p12_key: KeyFactory, tmp_path: Path
) -> None:
    signing_config.templates = {"default": AppearanceTemplate(font_path=tmp_path / "missing.ttf")}
    service = SigningService(signing_config)
    with pytest.raises(ConfigurationError) as exc:
        asyncio.run(
            service.sign_bytes(
                sample_pdf(),
                p12_key("agency"),
                SignOptions(level=SignatureLevel.B_B, role=SignRole.COPY, agency_name=AGENCY),
            )
        )
    assert "phông chữ" in exc.value.message_vi


def test_template_page_out_of_range(signing_config: SigningConfig, p12_key: KeyFactory) -> None:
    """A template box is used where the page has no signer block (a scan)."""
    signing_config.templates = {
        "default": AppearanceTemplate(personal_box=Box(page=5, x=10, y=10, width=50, height=20))
    }
    service = SigningService(signing_config)
    with pytest.raises(SigningError, match="does not exist"):
        asyncio.run(
            service.sign_bytes(
                scan_like(),
                p12_key("officer"),
                SignOptions(level=SignatureLevel.B_B, role=SignRole.PERSONAL),
            )
        )


def test_unknown_template(signing_service: SigningService, p12_key: KeyFactory) -> None:
    with pytest.raises(SigningError) as exc:
        asyncio.run(
            signing_service.sign_bytes(
                sample_pdf(),
                p12_key("officer"),
                SignOptions(role=SignRole.PERSONAL, template="khong-co", level=SignatureLevel.B_B),
            )
        )
    assert "khong-co" in exc.value.message
