"""The tracking book and the control slip (docs/reports.md §7), on both backends: rows from the
stored dossiers, outcomes by the on-time rule, Vietnamese text as drawn in the PDF (pdftotext),
no ID numbers, page numbers."""

from __future__ import annotations

import csv
import io
import subprocess
import unicodedata
from datetime import timedelta
from pathlib import Path

import pytest

from hub.config import load_settings
from hub.db.session import Database
from hub.reports.ontime import Bucket, Period, classify, facts_of
from hub.reports.query import day_range
from hub.reports.record_service import RecordService
from hub.reports.records import BUCKET_LABELS, RecordLayout, control_slip
from schemas.dossier import Dossier, LateEntryMark, Owner, ProcessingStep
from schemas.errors import ConfigurationError
from schemas.status import DossierStatus as S
from tests.reports.support import at, dossier, generate
from tests.reports.test_ontime_rule import WORKING
from tests.reports.test_report_sql import _store

NOW = at("2025-11-20", 10)
ID_NUMBER = "037099001234"
#: Decomposed (NFD) on input: the hub must print it composed.
NAME_NFD = unicodedata.normalize("NFD", "Trần Thị Hồng Nhung")
NAME = unicodedata.normalize("NFC", NAME_NFD)


def _text(pdf: bytes) -> str:
    """The PDF's text in reading order, a cell's wrapped lines joined by single spaces."""
    out = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout
    return " ".join(out.decode().split())


def _has_words(text: str, phrase: str) -> bool:
    """``phrase``'s words appear in order (a table cell's lines are interleaved with the lines of
    the cells beside it in the extracted text)."""
    words = iter(text.split())
    return all(word in words for word in phrase.split())


def _pages(pdf: bytes) -> int:
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def _service(db: Database, tmp_path: Path, **reports: object) -> RecordService:
    settings = load_settings(
        data_dir=tmp_path,
        reports={
            "agency_name": "Sở Nông nghiệp và Môi trường",
            "parent_agency_name": "UBND tỉnh Ninh Bình",
            **reports,
        },
    )
    return RecordService(db, settings)


def _steps() -> list[ProcessingStep]:
    """Reception → Phòng Chăn nuôi (step due 12/03 17:00, handed over on 11/03: early) → the
    head (due 13/03 17:00, handed over 14/03: late) → result (entered late)."""
    return [
        ProcessingStep(
            handler="Lê Văn Bình",
            department="Phòng Chăn nuôi",
            at=at("2025-03-10", 10),
            content="Thẩm định hồ sơ",
            status=S.PROCESSING,
            step_due_at=at("2025-03-12", 17),
        ),
        ProcessingStep(
            handler="Phạm Quốc Hùng",
            position="Phó Giám đốc",
            department="Ban Giám đốc",
            at=at("2025-03-11", 15),
            content="Trình ký",
            status=S.PROCESSING,
            step_due_at=at("2025-03-13", 17),
        ),
        ProcessingStep(
            handler="Nguyễn Thu Hà",
            department="Bộ phận Một cửa",
            at=at("2025-03-14", 9),
            content=f"Có kết quả; CCCD {ID_NUMBER}",
            status=S.FINISHED,
            late_entry=LateEntryMark(
                entered_by="Nguyễn Thu Hà", entered_at=at("2025-03-15", 8), reason="Mất điện toàn sở"
            ),
        ),
    ]


def _named() -> Dossier:
    return Dossier.model_validate(
        {
            **dossier(900, at("2025-03-10", 8), at("2025-03-14", 17)).model_dump(),
            "owner": Owner(name=NAME_NFD, id_number=ID_NUMBER),
            "procedure_name": "Cấp giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm",
            "status": S.FINISHED,
            "finished_at": at("2025-03-14", 9),
            "steps": _steps(),
        }
    )


def test_tracking_book_rows_outcomes_and_pdf(db: Database, tmp_path: Path) -> None:
    dossiers = [*generate(120, 2025, seed=5), _named()]
    _store(db, dossiers)
    records = _service(db, tmp_path)
    window = day_range(period="2025-03")
    book = records.book(window, now=NOW)

    period = window.period()
    march = sorted(
        (d for d in dossiers if period.start <= d.received_at < period.end), key=lambda d: d.received_at
    )
    assert [row.code for row in book.rows] == [d.code for d in march]
    as_of = Period(start=period.start, end=NOW)
    for row, d in zip(book.rows, march, strict=True):
        assert row.bucket is classify(facts_of(d), as_of, WORKING, NOW), d.code
    named = next(row for row in book.rows if row.code == _named().code)
    assert named.bucket is Bucket.ON_TIME
    assert (named.owner, named.transferred_at, named.result_at) == (
        NAME,
        at("2025-03-10", 10),
        at("2025-03-14", 9),
    )
    assert "Mất điện toàn sở" in named.note

    headings, _ = records.book_rows(book)
    lines = list(csv.reader(io.StringIO(records.book_csv(book).decode("utf-8-sig"))))
    assert lines[0] == headings == [c.heading for c in RecordLayout.load().tracking_book.columns]
    assert len(lines) == 1 + len(march)
    line = next(cells for cells in lines if cells[1] == named.code)
    assert line[3] == NAME
    assert line[4] == "10/03/2025 08:00"
    assert line[9] == "Đúng hạn"
    assert not any(ID_NUMBER in cell for cells in lines for cell in cells)

    pdf = records.book_pdf(book)
    text = _text(pdf)
    assert unicodedata.is_normalized("NFC", text)
    for expected in (
        "SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
    ):
        assert expected in text
    assert "SỔ THEO DÕI HỒ SƠ" in text
    assert "Từ ngày 01/03/2025 đến ngày 31/03/2025" in text
    assert _has_words(text, NAME)
    assert _has_words(text, "Mất điện toàn sở")
    assert _has_words(text, "Cấp giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm")
    assert ID_NUMBER not in text.replace(" ", "")
    assert text.count("Nguyễn Văn An") == len(march) - 1  # the other applicants, one row each
    for bucket in {row.bucket for row in book.rows} & {Bucket.EARLY, Bucket.ON_TIME, Bucket.LATE}:
        assert BUCKET_LABELS[bucket] in text
    pages = _pages(pdf)
    assert f"Trang 1/{pages}" in text
    assert f"Trang {pages}/{pages}" in text


def test_many_rows_run_over_pages_with_headings(db: Database, tmp_path: Path) -> None:
    _store(db, generate(400, 2025, seed=9))
    records = _service(db, tmp_path)
    book = records.book(day_range(period="2025"), now=NOW)
    assert len(book.rows) == 400
    pdf = records.book_pdf(book)
    pages = _pages(pdf)
    assert pages >= 20  # about 13 rows of two lines a landscape page
    text = _text(pdf)
    assert f"Trang {pages}/{pages}" in text
    assert text.count("Tên thủ tục hành chính") == pages  # headings repeated on every page
    assert text.count("Nguyễn Văn An") == 400


def test_control_slip_hand_overs_and_step_outcomes(db: Database, tmp_path: Path) -> None:
    subject = _named()
    slip = control_slip(subject, WORKING, NOW)
    rows = [(h.sender, h.receiver, h.at, h.bucket) for h in slip.hand_overs]
    assert rows == [
        (
            "Bộ phận Tiếp nhận và Trả kết quả (000.00.18.H42)",
            "Phòng Chăn nuôi: Lê Văn Bình",
            at("2025-03-10", 10),
            None,
        ),
        (
            "Phòng Chăn nuôi: Lê Văn Bình",
            "Ban Giám đốc: Phạm Quốc Hùng, Phó Giám đốc",
            at("2025-03-11", 15),
            Bucket.EARLY,  # a working day (12/03) left before its due day
        ),
        (
            "Ban Giám đốc: Phạm Quốc Hùng, Phó Giám đốc",
            "Bộ phận Một cửa: Nguyễn Thu Hà",
            at("2025-03-14", 9),
            Bucket.LATE,
        ),
    ]
    assert slip.bucket is Bucket.ON_TIME
    on_time = subject.model_copy(deep=True)
    on_time.steps[1].at = at("2025-03-12", 16)  # handed over on the due day
    assert control_slip(on_time, WORKING, NOW).hand_overs[1].bucket is Bucket.ON_TIME

    pdf = _service(db, tmp_path).slip_pdf(subject, now=NOW)
    (tmp_path / "slip.pdf").write_bytes(pdf)
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    # Circular 01/2018/TT-VPCP prints forms 01–05 on A5 (210 × 148 mm landscape = 595 × 420 pt)
    assert "Page size:       595.28 x 419.53 pts" in info, info
    text = _text(pdf)
    assert unicodedata.is_normalized("NFC", text)
    assert "PHIẾU KIỂM SOÁT QUÁ TRÌNH GIẢI QUYẾT HỒ SƠ" in text
    assert subject.code in text
    assert NAME in text
    assert "Phó Giám đốc" in text
    assert "Trước hạn" in text
    assert "Quá hạn" in text
    assert "Nhập bổ sung 15/03/2025 08:00" in text
    assert ID_NUMBER not in text.replace(" ", "")  # masked in the step content too


def test_layout_is_data(db: Database, tmp_path: Path) -> None:
    layout = tmp_path / "layout.json"
    data = RecordLayout.load().model_dump(by_alias=True)
    data["tracking_book"]["columns"] = [
        {"field": "seq", "heading": "Số TT", "width": 10},
        {"field": "code", "heading": "Mã", "width": 40},
        {"field": "outcome", "heading": "Kết quả", "width": 30},
    ]
    import json

    layout.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    _store(db, [_named()])
    records = _service(db, tmp_path, records_layout_file=str(layout))
    lines = list(
        csv.reader(
            io.StringIO(
                records.book_csv(records.book(day_range(period="2025-03"), now=NOW)).decode("utf-8-sig")
            )
        )
    )
    assert lines == [["Số TT", "Mã", "Kết quả"], ["1", _named().code, "Đúng hạn"]]

    data["tracking_book"]["columns"].append({"field": "owner_id_number", "heading": "CCCD", "width": 10})
    layout.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    with pytest.raises(ConfigurationError, match="owner_id_number"):
        RecordLayout.load(layout)


def test_period_end_classifies_as_of_now_not_the_period(db: Database, tmp_path: Path) -> None:
    """A dossier received in March and finished in May is in the March book as finished."""
    late = dossier(1, at("2025-03-20"), at("2025-03-27", 17), [(S.FINISHED, at("2025-05-02"))])
    _store(db, [late])
    book = _service(db, tmp_path).book(day_range(period="2025-03"), now=late.received_at + timedelta(days=60))
    assert [row.bucket for row in book.rows] == [Bucket.LATE]
