"""Placement on a Quyết định that LibreOffice itself laid out and exported (docs/signing.md §5.5).

The document is written in the test as HTML (the Decree 30 blocks: agency and national motto on
top, title, body, then "Nơi nhận" on the left and the signer's block on the right, with the
blank lines left for the signature) and converted by ``soffice --headless --convert-to pdf``
(Debian's ``libreoffice-writer-nogui``, installed by scripts/bootstrap.sh). The signature image
must land between the title line and the name that LibreOffice's PDF carries.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.pagetext import TextLine, page_text
from signing.signer_service import SigningService
from tests.signing.test_placement import KeyFactory, _sign, _widgets

SOFFICE = "soffice"

DECISION = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>
body {{ font-family: 'Liberation Serif'; font-size: 13pt; }}
td {{ vertical-align: top; text-align: center; }}
</style></head><body>
<table width="100%"><tr>
<td width="40%">UBND TỈNH NINH BÌNH<br><b>SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG</b><br>Số: /QĐ-SNNMT</td>
<td width="60%"><b>CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM</b><br><b>Độc lập - Tự do - Hạnh phúc</b>
<br><i>Ninh Bình, ngày tháng năm 2026</i></td></tr></table>
<p align="center"><b>QUYẾT ĐỊNH</b><br><b>Về việc cấp giấy chứng nhận cơ sở đủ điều kiện</b></p>
{body}
<table width="100%"><tr>
<td width="45%" style="text-align: left"><b><i>Nơi nhận:</i></b><br>- Như Điều 3;<br>- Lưu: VT, CCTY.</td>
<td width="55%"><b>KT. GIÁM ĐỐC</b><br><b>PHÓ GIÁM ĐỐC</b><br><br><br><br><br><br><b>{name}</b></td>
</tr></table></body></html>
"""
BODY = "<p>Điều {n}. Cấp giấy chứng nhận cho cơ sở theo hồ sơ đã tiếp nhận và thẩm định.</p>"


def _libreoffice_pdf(tmp_path: Path, name: str, articles: int) -> bytes:
    if shutil.which(SOFFICE) is None:
        pytest.fail(
            "these tests need LibreOffice (apt-get install libreoffice-writer-nogui; scripts/bootstrap.sh)"
        )
    source = tmp_path / "quyet-dinh.html"
    body = "".join(BODY.format(n=n) for n in range(1, articles + 1))
    source.write_text(DECISION.format(body=body, name=name), encoding="utf-8")
    profile = tmp_path / "lo-profile"
    subprocess.run(
        [
            SOFFICE,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            "pdf:writer_pdf_Export",
            "--outdir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return (tmp_path / "quyet-dinh.pdf").read_bytes()


def _line(lines: tuple[TextLine, ...], text: str) -> TextLine:
    return next(line for line in lines if line.text.strip() == text)


@pytest.mark.parametrize("articles", [3, 40], ids=["one-page", "block-on-a-later-page"])
def test_signature_between_title_and_name_in_a_libreoffice_pdf(
    articles: int, tmp_path: Path, signing_service: SigningService, p12_key: KeyFactory
) -> None:
    pdf = _libreoffice_pdf(tmp_path, "Nguyễn Văn An", articles)
    producer = PdfFileReader(io.BytesIO(pdf)).trailer["/Info"]["/Producer"]
    assert str(producer).startswith("LibreOffice")  # laid out by LibreOffice itself
    signed = _sign(signing_service, p12_key("officer"), pdf, certify=True)
    page, (x0, y0, x1, y1) = _widgets(signed)["Sig_personal"]
    text = page_text(pdf, page)
    title, name = _line(text.lines, "PHÓ GIÁM ĐỐC"), _line(text.lines, "Nguyễn Văn An")
    assert y0 >= name.y1 - 1, "the image overlaps the signer's name"
    assert y1 <= title.y0 + 1, "the image overlaps the title line"
    assert (y0 + y1) / 2 == pytest.approx((name.y1 + title.y0) / 2, abs=2)
    assert y1 - y0 > 30
    centre = ((title.x0 + title.x1) / 2 + (name.x0 + name.x1) / 2) / 2
    assert (x0 + x1) / 2 == pytest.approx(centre, abs=2)  # under the block, not at a fixed box
    if articles > 3:
        assert page > 0  # the block went to a later page and was found there
