"""The report as files: CSV (UTF-8 with a BOM, so spreadsheet software reads the Vietnamese
text) and XLSX (openpyxl). Column headings are Vietnamese, from :data:`COLUMNS`; text is NFC."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hub.reports.query import Report, ReportRow
from schemas.timefmt import VN_TZ

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

#: Report columns: field of :class:`ReportRow` → heading (the Circular 01/2020/TT-VPCP report
#: form's wording where it has one, docs/reports.md §5).
COLUMNS: dict[str, str] = {
    "key": "Mã",
    "label": "Tên",
    "received": "Tổng số hồ sơ nhận giải quyết",
    "carried_over": "Từ kỳ trước chuyển qua",
    "new": "Mới tiếp nhận trong kỳ",
    "new_online": "Mới tiếp nhận trực tuyến",
    "finished": "Đã giải quyết",
    "early": "Trước hạn",
    "on_time": "Đúng hạn",
    "late": "Quá hạn",
    "in_progress": "Đang giải quyết",
    "within_due": "Trong hạn",
    "overdue": "Quá hạn (đang giải quyết)",
    "supplement": "Chờ bổ sung",
    "withdrawn": "Rút hồ sơ, dừng xử lý",
    "refused": "Không được tiếp nhận",
    "on_time_share": "Tỷ lệ đúng hạn",
    "online_share": "Tỷ lệ trực tuyến",
}

GROUP_HEADINGS = {
    "procedure": "Thủ tục hành chính",
    "field": "Lĩnh vực",
    "unit": "Đơn vị tiếp nhận",
    "channel": "Kênh thực hiện",
}

SHARES = ("on_time_share", "online_share")


def _nfc(value: Any) -> Any:
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


def title(report: Report) -> str:
    heading = GROUP_HEADINGS[report.group_by.value]
    return unicodedata.normalize(
        "NFC",
        f"Tình hình giải quyết hồ sơ theo {heading.lower()}, "
        f"từ {report.first:%d/%m/%Y} đến {report.last:%d/%m/%Y}",
    )


def _lines(report: Report) -> list[ReportRow]:
    return [*report.rows, report.total]


def csv_bytes(lines: Iterable[Sequence[Any]]) -> bytes:
    """CSV in UTF-8 with a byte-order mark, CRLF line ends, text NFC, ``None`` as empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for line in lines:
        writer.writerow(["" if value is None else _nfc(value) for value in line])
    return out.getvalue().encode("utf-8-sig")


def to_csv(report: Report) -> bytes:
    return csv_bytes(
        [list(COLUMNS.values()), *([getattr(row, name) for name in COLUMNS] for row in _lines(report))]
    )


def append_headings(sheet: Worksheet, headings: Iterable[str]) -> int:
    """Append a bold, wrapped heading row; returns its row number."""
    from openpyxl.styles import Alignment, Font

    sheet.append([_nfc(heading) for heading in headings])
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    return int(sheet.max_row)


def as_of_line(as_of: datetime) -> str:
    return f"Số liệu tính đến {as_of.astimezone(VN_TZ):%d/%m/%Y %H:%M} (giờ Việt Nam)"


def workbook_bytes(book: Any) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_xlsx(report: Report) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Báo cáo đúng hạn"
    sheet.append([title(report)])
    sheet.append([_nfc(f"{as_of_line(report.as_of)}; quy tắc: {report.rule}")])
    header_row = append_headings(sheet, COLUMNS.values())
    for row in _lines(report):
        sheet.append([_nfc(getattr(row, name)) for name in COLUMNS])
        for index, name in enumerate(COLUMNS, start=1):
            if name in SHARES:
                sheet.cell(row=sheet.max_row, column=index).number_format = "0.0%"
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.column_dimensions["B"].width = 48
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=3)
    return workbook_bytes(book)
