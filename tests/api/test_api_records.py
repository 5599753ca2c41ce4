"""``GET /api/v1/reports/tracking-book``, ``GET /api/v1/dossiers/{code}/control-slip.pdf``, the
on-time report as PDF, and ``hub report tracking-book|control-slip`` (docs/reports.md §7)."""

from __future__ import annotations

import csv
import io
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.commands.report import app as report_app
from tests.api.livehub import LiveHub
from tests.reports.test_records import ID_NUMBER, NAME, _has_words, _named, _pages, _text
from tests.reports.test_report_sql import _dataset, _store

BOOK = "/api/v1/reports/tracking-book"


def _slip_url(code: str) -> str:
    return f"/api/v1/dossiers/{code}/control-slip.pdf"


def test_tracking_book_formats(full_hub: LiveHub) -> None:
    _store(full_hub.db, [_named()])
    params = {"from": "2025-03-01", "to": "2025-03-31"}
    with full_hub.client("officer") as client:
        pdf = client.get(BOOK, params=params)
        as_csv = client.get(BOOK, params={**params, "format": "csv"})
        as_xlsx = client.get(BOOK, params={**params, "format": "xlsx"})
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert 'filename="so-theo-doi-ho-so-20250301-20250331.pdf"' in pdf.headers["content-disposition"]
    text = _text(pdf.content)
    assert "SỔ THEO DÕI HỒ SƠ" in text
    assert _has_words(text, NAME)
    assert _named().code in text
    assert ID_NUMBER not in text.replace(" ", "")
    lines = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert len(lines) == 2
    assert lines[1][1] == _named().code
    assert lines[1][3] == NAME
    assert all(unicodedata.is_normalized("NFC", cell) for line in lines for cell in line)
    assert as_xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")


def test_control_slip_and_ontime_pdf(full_hub: LiveHub) -> None:
    _store(full_hub.db, [_named(), *_dataset()[:50]])
    with full_hub.client("clerk") as client:
        slip = client.get(_slip_url(_named().code))
        missing = client.get(_slip_url("000.00.18.H42-250310-0999"))
        bad = client.get(_slip_url("not-a-code"))
        ontime = client.get("/api/v1/reports/ontime", params={"period": "2025-03", "format": "pdf"})
        data = client.get("/api/v1/reports/ontime", params={"period": "2025-03"}).json()
    assert slip.status_code == 200, slip.text
    text = _text(slip.content)
    assert "PHIẾU KIỂM SOÁT QUÁ TRÌNH GIẢI QUYẾT HỒ SƠ" in text
    assert "Trước hạn" in text
    assert "Quá hạn" in text
    assert missing.status_code == 404
    assert "error" in missing.json()
    assert bad.status_code == 422
    assert ontime.status_code == 200
    assert ontime.headers["content-type"] == "application/pdf"
    text = _text(ontime.content)
    assert "Tình hình giải quyết hồ sơ theo thủ tục hành chính, từ 01/03/2025 đến 31/03/2025" in text
    assert "Tổng cộng" in text
    assert "Tỷ lệ đúng hạn" in text
    share = data["total"]["on_time_share"]
    assert f"{share:.1%}".replace(".", ",") in text.split()  # the shares as percentages


@pytest.mark.parametrize("params", [{"period": "2025-13"}, {"period": "2025", "format": "docx"}])
def test_bad_book_requests_are_422(full_hub: LiveHub, params: dict[str, str]) -> None:
    with full_hub.client("officer") as client:
        answer = client.get(BOOK, params=params)
    assert answer.status_code == 422, answer.text


def test_roles_and_signing_refusals(full_hub: LiveHub) -> None:
    _store(full_hub.db, [_named()])
    slip = _slip_url(_named().code)
    for role in ("source", "portal"):
        with full_hub.client(role) as client:
            assert client.get(BOOK, params={"period": "2025-03"}).status_code == 403, role
            assert client.get(slip).status_code == 403, role
    with full_hub.client(None) as client:
        assert client.get(slip).status_code == 401
    for role in ("officer", "clerk", "technician", "admin"):
        with full_hub.client(role) as client:
            assert client.get(slip).status_code == 200, role
    # Signing needs the agency key: none configured here (503), and never for a non-clerk.
    with full_hub.client("clerk") as client:
        answer = client.get(slip, params={"sign": "true"})
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "not_configured"


def test_cli(full_hub: LiveHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _store(full_hub.db, [_named()])
    monkeypatch.setenv("HUB_DATABASE_URL", full_hub.settings.database_url)
    runner = CliRunner()
    out = tmp_path / "book.pdf"
    result = runner.invoke(report_app, ["tracking-book", "--period", "2025-03", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert _pages(out.read_bytes()) == 1
    assert _has_words(_text(out.read_bytes()), NAME)
    as_csv = runner.invoke(report_app, ["tracking-book", "--period", "2025-03", "--format", "csv"])
    assert as_csv.exit_code == 0
    assert _named().code in as_csv.stdout
    slip = tmp_path / "slip.pdf"
    result = runner.invoke(report_app, ["control-slip", _named().code, "--out", str(slip)])
    assert result.exit_code == 0, result.output
    assert "PHIẾU KIỂM SOÁT" in _text(slip.read_bytes())
