"""The report as files: CSV (UTF-8 with a BOM, so spreadsheet software reads the Vietnamese
text) and XLSX (openpyxl). Column headings are Vietnamese, from :data:`COLUMNS`; text is NFC."""

from __future__ import annotations

import csv
import io
import unicodedata
from typing import Any

from hub.reports.query import Report, ReportRow
from schemas.timefmt import VN_TZ

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


def to_csv(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS.values())
    for row in _lines(report):
        writer.writerow(["" if (v := getattr(row, name)) is None else _nfc(v) for name in COLUMNS])
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(report: Report) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Báo cáo đúng hạn"
    sheet.append([title(report)])
    as_of = report.as_of.astimezone(VN_TZ)
    sheet.append([_nfc(f"Số liệu tính đến {as_of:%d/%m/%Y %H:%M} (giờ Việt Nam); quy tắc: {report.rule}")])
    sheet.append(list(COLUMNS.values()))
    header_row = sheet.max_row
    for cell in sheet[header_row]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
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
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
