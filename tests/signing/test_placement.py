"""The competent person's signature image lands between the signer's title and name, read from
the page (Decree 30/2020 Appendix I box 7c), on LibreOffice- and Word-style documents, one and
two signers, the block alone on the last page; an explicit position or a template per procedure
otherwise, and a clear refusal when there is none."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from schemas.errors import SignaturePlacementError
from signing.appearance import AppearanceTemplate, Box
from signing.keys import Pkcs12KeySource
from signing.models import SignatureLevel, SignOptions, SignRole
from signing.settings import SigningSettings
from signing.signer_service import SigningConfig, SigningService, config_from_settings
from tests.signing.decree30_docs import KT_GIAM_DOC, LEFT, RIGHT, Built, Signer, Style, quyet_dinh, scan_like

KeyFactory = Callable[..., Pkcs12KeySource]
OFFICER_CN = "Nguyễn Thị Lấp Lánh"  # the test PKI's officer certificate


def _widgets(data: bytes) -> dict[str, tuple[int, tuple[float, float, float, float]]]:
    """Field name → (page index, rect) of every signature widget."""
    reader = PdfFileReader(io.BytesIO(data))
    out = {}
    for index in range(int(reader.root["/Pages"]["/Count"])):
        page, _ = reader.find_page_for_modification(index)  # type: ignore[no-untyped-call]
        for annot in page.get_object().get("/Annots", ()):
            w = annot.get_object()
            x0, y0, x1, y1 = (float(v) for v in w["/Rect"])
            out[str(w["/T"])] = (index, (x0, y0, x1, y1))
    return out


def _sign(service: SigningService, key: Pkcs12KeySource, pdf: bytes, **options: object) -> bytes:
    opts = SignOptions.model_validate({"level": SignatureLevel.B_B, "role": SignRole.PERSONAL, **options})
    return asyncio.run(service.sign_bytes(pdf, key, opts))[0]


def _assert_between(rect: tuple[float, float, float, float], doc: Built, title: str, name: str) -> None:
    t, n = doc.find(title), doc.find(name)
    x0, y0, x1, y1 = rect
    assert y0 >= n.y1 - 1, "the image overlaps the signer's name"
    assert y1 <= t.y0 + 1, "the image overlaps the title line"
    assert (y0 + y1) / 2 == pytest.approx((n.y1 + t.y0) / 2, abs=2)  # centred in the gap
    assert (x0 + x1) / 2 == pytest.approx(((t.x0 + t.x1) / 2 + (n.x0 + n.x1) / 2) / 2, abs=2)
    assert y1 - y0 > 30  # a real image, not a sliver


@pytest.mark.parametrize("style", ["libreoffice", "word"])
@pytest.mark.parametrize("own_page", [False, True], ids=["same-page", "own-page"])
def test_signature_between_title_and_name(
    style: Style, own_page: bool, signing_service: SigningService, p12_key: KeyFactory
) -> None:
    doc = quyet_dinh(style, own_page=own_page)
    signed = _sign(signing_service, p12_key("officer"), doc.pdf, certify=True)
    sealed = asyncio.run(
        signing_service.sign_bytes(
            signed, p12_key("agency"), SignOptions(level=SignatureLevel.B_B, role=SignRole.AGENCY)
        )
    )[0]
    widgets = _widgets(sealed)
    page, rect = widgets["Sig_personal"]
    assert page == (1 if own_page else 0)
    _assert_between(rect, doc, "PHÓ GIÁM ĐỐC", "Nguyễn Văn An")
    seal_page, seal = widgets["Sig_agency"]
    assert seal_page == page
    assert seal[2] == pytest.approx(rect[0] + (rect[2] - rect[0]) / 3, abs=1.5)  # left third


TWO = [
    Signer(("KT. GIÁM ĐỐC SỞ TÀI CHÍNH", "PHÓ GIÁM ĐỐC"), "Trần Thị Bình", LEFT + 95),
    Signer(("GIÁM ĐỐC",), OFFICER_CN, RIGHT - 110),
]


@pytest.mark.parametrize("style", ["libreoffice", "word"])
def test_two_signers_the_certificate_names_the_block(
    style: Style, signing_service: SigningService, p12_key: KeyFactory
) -> None:
    doc = quyet_dinh(style, TWO)
    signed = _sign(signing_service, p12_key("officer"), doc.pdf)
    _, rect = _widgets(signed)["Sig_personal"]
    _assert_between(rect, doc, "GIÁM ĐỐC", OFFICER_CN)


def test_two_signers_neither_is_the_signer(signing_service: SigningService, p12_key: KeyFactory) -> None:
    doc = quyet_dinh("libreoffice", [TWO[0], KT_GIAM_DOC])
    with pytest.raises(SignaturePlacementError) as exc:
        _sign(signing_service, p12_key("officer"), doc.pdf)
    assert exc.value.details["signers"] == ["Trần Thị Bình", "Nguyễn Văn An"]
    assert "vị trí chữ ký" in exc.value.message_vi
    # an explicit position settles it
    box = {"page": -1, "x": 100, "y": 200, "width": 150, "height": 60}
    _, rect = _widgets(_sign(signing_service, p12_key("officer"), doc.pdf, position=box))["Sig_personal"]
    assert rect == (100, 200, 250, 260)


def test_no_block_refused_unless_template_or_position(
    signing_config: SigningConfig, p12_key: KeyFactory
) -> None:
    signing_config.templates = {
        "default": AppearanceTemplate(),
        "ban-scan": AppearanceTemplate(personal_box=Box(page=-1, x=340, y=120, width=170, height=70)),
    }
    service = SigningService(signing_config)
    with pytest.raises(SignaturePlacementError) as exc:
        _sign(service, p12_key("officer"), scan_like())
    assert exc.value.code == "signature_placement_not_found"
    _, rect = _widgets(_sign(service, p12_key("officer"), scan_like(), template="ban-scan"))["Sig_personal"]
    assert rect == (340, 120, 510, 190)


def test_templates_from_settings() -> None:
    settings = SigningSettings.model_validate(
        {"templates": {"giay-phep": {"personal_box": {"page": -1, "x": 1, "y": 2, "width": 3, "height": 4}}}}
    )
    templates = config_from_settings(settings).templates
    assert set(templates) == {"default", "giay-phep"}
    assert templates["giay-phep"].personal_box == Box(page=-1, x=1, y=2, width=3, height=4)
