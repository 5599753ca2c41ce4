"""The usage report as files, in the formats of the on-time report (docs/reports.md §5, §7):
CSV (UTF-8 with a BOM; one block per section: its title, headings, rows, a blank line) and
XLSX (one sheet per section). Headings are Vietnamese, text NFC."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from hub.reports.export import append_headings, as_of_line, csv_bytes, workbook_bytes
from hub.reports.usage import UsageReport


@dataclass(frozen=True, slots=True)
class Section:
    field: str
    """The list of :class:`UsageReport` it shows."""
    title: str
    sheet: str
    """The XLSX sheet name (at most 31 characters)."""
    columns: dict[str, str]
    """Field of the row → heading."""


SECTIONS: tuple[Section, ...] = (
    Section(
        "dossiers",
        "Hồ sơ tiếp nhận, xử lý qua hệ thống theo kênh",
        "Hồ sơ theo kênh",
        {"channel": "Mã kênh", "label": "Kênh thực hiện", "received": "Tiếp nhận", "ended": "Kết thúc xử lý"},
    ),
    Section(
        "deliveries",
        "Đồng bộ đến các hệ thống (tin đưa vào hàng đợi trong kỳ)",
        "Đồng bộ",
        {
            "endpoint": "Hệ thống nhận",
            "queued": "Đưa vào hàng đợi",
            "delivered": "Gửi thành công",
            "retried": "Phải gửi lại",
            "dead": "Trong hàng đợi lỗi",
            "discarded": "Đã hủy",
            "waiting": "Đang chờ gửi",
            "median_seconds": "Thời gian gửi, trung vị (giây)",
            "p95_seconds": "Thời gian gửi, 95% (giây)",
        },
    ),
    Section(
        "signatures",
        "Chữ ký số đã thực hiện",
        "Chữ ký số",
        {"purpose": "Loại khóa", "path": "Chức năng", "signed": "Số chữ ký"},
    ),
    Section(
        "lookups",
        "Tra cứu đã trả lời",
        "Tra cứu",
        {"channel": "Kênh", "outcome": "Kết quả", "count": "Số lượt"},
    ),
    Section(
        "downtime",
        "Thời gian ngừng hoạt động",
        "Ngừng hoạt động",
        {"kind": "Loại", "outages": "Số lần", "seconds": "Tổng thời gian (giây)"},
    ),
)


def title(report: UsageReport) -> str:
    return unicodedata.normalize(
        "NFC",
        f"Báo cáo tình hình sử dụng hệ thống, từ {report.first:%d/%m/%Y} đến {report.last:%d/%m/%Y}",
    )


def section_rows(report: UsageReport, section: Section) -> Iterator[list[Any]]:
    rows: Sequence[BaseModel] = getattr(report, section.field)
    for row in rows:
        yield [getattr(row, name) for name in section.columns]


def to_csv(report: UsageReport) -> bytes:
    lines: list[Sequence[Any]] = [[title(report)], [as_of_line(report.as_of)], []]
    for section in SECTIONS:
        lines += [[section.title], list(section.columns.values()), *section_rows(report, section), []]
    return csv_bytes(lines)


def to_xlsx(report: UsageReport) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for section in SECTIONS:
        sheet = book.create_sheet(section.sheet)
        sheet.append([unicodedata.normalize("NFC", f"{title(report)}: {section.title.lower()}")])
        sheet["A1"].font = Font(bold=True, size=13)
        sheet.append([as_of_line(report.as_of)])
        header_row = append_headings(sheet, section.columns.values())
        for line in section_rows(report, section):
            sheet.append(line)
        sheet.column_dimensions["A"].width = 24
        sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
    return workbook_bytes(book)
