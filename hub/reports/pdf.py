"""The records and the on-time report as PDF (fpdf2, an embedded TrueType font).

Layout (docs/reports.md §7.3): A4, the header of an administrative document (Decree 30/2020/
NĐ-CP Appendix I: the governing body and the agency in capitals top left, the national motto top
right, the title centred in bold capitals), a table whose columns are the record's
:class:`hub.reports.records.RecordForm`, the column headings repeated on every page, and
"Trang x/y" at the foot. Text is Unicode NFC drawn with an embedded Liberation Serif (metric-
compatible with Times New Roman, TCVN 6909:2001 text); the core PDF fonts cover Latin-1 only.
The top margin leaves room for the agency signature's text stamp (docs/signing.md §5.6).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from hub.reports.records import ControlSlip, RecordForm, TrackingBook, nfc, vn_time
from schemas.errors import ConfigurationError

if TYPE_CHECKING:
    from fpdf import FPDF

    from hub.config import ReportSettings
    from hub.reports.query import Report
    from hub.reports.usage import UsageReport

FAMILY = "serif"
MOTTO = ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc")


class Letterhead(BaseModel):
    """Who issues the record and with which font (``[reports]``, docs/reports.md §7.3)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    agency_name: str
    parent_agency_name: str
    font_path: Path
    font_bold_path: Path
    font_italic_path: Path

    @classmethod
    def from_settings(cls, reports: ReportSettings) -> Letterhead:
        return cls.model_validate(reports)


def _document(head: Letterhead, orientation: str, created: datetime, paper: str = "A4") -> FPDF:
    from fpdf import FPDF

    class _Pdf(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(FAMILY, size=9)
            self.cell(0, 5, f"Trang {self.page_no()}/{{nb}}", align="C")

    # A5 by its ISO 216 size in mm: fpdf2 warns on the name (its A5 dimensions changed in 2.8.5)
    pdf = _Pdf(orientation=orientation, unit="mm", format=(148, 210) if paper == "A5" else paper)
    try:
        pdf.add_font(FAMILY, "", str(head.font_path))
        pdf.add_font(FAMILY, "B", str(head.font_bold_path))
        pdf.add_font(FAMILY, "I", str(head.font_italic_path))
    except (OSError, RuntimeError) as exc:
        raise ConfigurationError(f"reports font: {exc}", message_vi=f"Phông chữ báo cáo: {exc}") from exc
    # Decree 30/2020 Appendix I margins (left 30–35 mm, right 15–20 mm, top/bottom 20–25 mm),
    # narrower on the left for the wide landscape tables; an A5 form keeps 10–15 mm.
    if paper == "A5":
        pdf.set_margins(left=12, top=12, right=10)
        pdf.set_auto_page_break(auto=True, margin=14)
    else:
        pdf.set_margins(left=20, top=20, right=15)
        pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_creation_date(created)
    pdf.set_creator("motcua hub")
    pdf.add_page()
    return pdf


def _header(pdf: FPDF, head: Letterhead, title: str, subtitles: Sequence[str]) -> None:
    """Agency top left, national motto top right, the title centred (Decree 30/2020 App. I)."""
    half = (pdf.w - pdf.l_margin - pdf.r_margin) / 2
    top = pdf.get_y()
    pdf.set_font(FAMILY, size=12)
    if head.parent_agency_name:
        pdf.cell(half, 6, nfc(head.parent_agency_name.upper()), align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(FAMILY, "B", 12)
    pdf.cell(half, 6, nfc(head.agency_name.upper()), align="C", new_x="LEFT", new_y="NEXT")
    left_bottom = pdf.get_y()
    pdf.set_xy(pdf.l_margin + half, top)
    pdf.set_font(FAMILY, "B", 12)
    pdf.cell(half, 6, MOTTO[0], align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(FAMILY, "B", 13)
    pdf.cell(half, 6, MOTTO[1], align="C", new_x="LEFT", new_y="NEXT")
    line = pdf.get_string_width(MOTTO[1])
    centre = pdf.l_margin + half + half / 2
    pdf.line(centre - line / 2, pdf.get_y(), centre + line / 2, pdf.get_y())
    pdf.set_xy(pdf.l_margin, max(left_bottom, pdf.get_y()) + 6)
    pdf.set_font(FAMILY, "B", 14)
    pdf.multi_cell(0, 7, nfc(title), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "I", 11)
    for line_text in subtitles:
        if line_text:
            pdf.multi_cell(0, 5.5, nfc(line_text), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def _table(pdf: FPDF, form: RecordForm, rows: Sequence[Sequence[str]], size: float = 9) -> None:
    from fpdf.fonts import FontFace

    widths = tuple(c.width for c in form.columns)
    pdf.set_font(FAMILY, size=size)
    with pdf.table(
        col_widths=widths,
        line_height=size * 0.5,
        headings_style=FontFace(emphasis="BOLD"),
        text_align="CENTER",
        repeat_headings=1,
        padding=0.8,
    ) as table:
        heading = table.row()
        for column in form.columns:
            heading.cell(nfc(column.heading), align="C")
        for values in rows:
            row = table.row()
            for column, value in zip(form.columns, values, strict=True):
                row.cell(value, align=column.align)


def _note(pdf: FPDF, as_of: datetime, *, verified: bool = True) -> None:
    pdf.ln(3)
    pdf.set_font(FAMILY, "I", 9)
    lines = [f"Số liệu tính đến {vn_time(as_of)} (giờ Việt Nam)."]
    if not verified:
        lines.append(
            "Các cột theo bố cục cấu hình của hệ thống, chưa đối chiếu với văn bản chính thức của biểu mẫu."
        )
    for text in lines:
        pdf.multi_cell(0, 4.5, nfc(text), new_x="LMARGIN", new_y="NEXT")


def _bytes(pdf: FPDF) -> bytes:
    return bytes(pdf.output())


def tracking_book_pdf(book: TrackingBook, form: RecordForm, head: Letterhead) -> bytes:
    """The tracking book of a period (one row per dossier received in it)."""
    pdf = _document(head, form.orientation, book.as_of, form.paper)
    pdf.set_title(nfc(form.title))
    window = f"Từ ngày {book.window.first:%d/%m/%Y} đến ngày {book.window.last:%d/%m/%Y}"
    agency = f"Cơ quan tiếp nhận: {book.agency_code}" if book.agency_code else ""
    _header(pdf, head, form.title, [form.form, window, agency])
    rows = [[row.text(c.field) for c in form.columns] for row in book.rows]
    _table(pdf, form, rows)
    _note(pdf, book.as_of, verified=form.verified)
    return _bytes(pdf)


def control_slip_pdf(slip: ControlSlip, form: RecordForm, head: Letterhead, as_of: datetime) -> bytes:
    """A dossier's control slip: each hand-over with sender, receiver, time and outcome."""
    from hub.reports.records import BUCKET_LABELS

    dossier = slip.dossier
    pdf = _document(head, form.orientation, as_of, form.paper)
    pdf.set_title(nfc(f"{form.title} {dossier.code}"))
    _header(pdf, head, form.title, [form.form])
    pdf.set_font(FAMILY, size=11)
    facts = [
        ("Mã hồ sơ", dossier.code),
        ("Thủ tục hành chính", dossier.procedure_name or dossier.procedure_code),
        ("Người nộp", dossier.owner.name),
        ("Ngày nhận hồ sơ", vn_time(dossier.received_at)),
        ("Ngày hẹn trả kết quả", vn_time(slip.due_at)),
        ("Cơ quan giải quyết hồ sơ", dossier.processing_agency or ""),
        ("Kết quả giải quyết hồ sơ", BUCKET_LABELS[slip.bucket]),
    ]
    for label, value in facts:
        if value:
            pdf.multi_cell(0, 5.5, nfc(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    rows = [[h.text(c.field) for c in form.columns] for h in slip.hand_overs]
    _table(pdf, form, rows, size=10 if form.paper == "A4" else 8.5)
    _note(pdf, as_of, verified=form.verified)
    return _bytes(pdf)


def ontime_pdf(report: Report, head: Letterhead) -> bytes:
    """The on-time report (the same rows and columns as the CSV/XLSX, docs/reports.md §5)."""
    from hub.reports.export import COLUMNS, SHARES, title
    from hub.reports.records import Column

    columns = [
        Column(field=name, heading=heading, width=40 if name == "label" else 16 if name == "key" else 11)
        for name, heading in COLUMNS.items()
    ]
    for column in columns:
        column.align = "L" if column.field in ("key", "label") else "R"
    form = RecordForm(title="BÁO CÁO TÌNH HÌNH GIẢI QUYẾT HỒ SƠ", verified=True, columns=columns)
    pdf = _document(head, "L", report.as_of)
    pdf.set_title(form.title)
    _header(pdf, head, form.title, [title(report), f"Quy tắc: {report.rule}"])

    def cell(value: object, name: str) -> str:
        if value is None:
            return ""
        if name in SHARES and isinstance(value, float):
            return f"{value:.1%}".replace(".", ",")
        return nfc(str(value))

    rows = [[cell(getattr(row, c.field), c.field) for c in columns] for row in [*report.rows, report.total]]
    _table(pdf, form, rows, size=8)
    _note(pdf, report.as_of)
    return _bytes(pdf)


def usage_pdf(report: UsageReport, head: Letterhead) -> bytes:
    """The usage report (Decision 692/QĐ-SNN Art. 18): each section of the CSV/XLSX as a titled
    table with the same headings and figures (docs/reports.md §8)."""
    from hub.reports.records import Column
    from hub.reports.usage_export import SECTIONS, section_rows, title

    pdf = _document(head, "L", report.as_of)
    pdf.set_title("BÁO CÁO TÌNH HÌNH SỬ DỤNG HỆ THỐNG")
    _header(pdf, head, "BÁO CÁO TÌNH HÌNH SỬ DỤNG HỆ THỐNG", [title(report)])
    for section in SECTIONS:
        lines = list(section_rows(report, section))
        columns = [
            Column(
                field=name,
                heading=heading,
                width=30 if index == 0 else 18,
                # figures to the right, words (endpoint, channel, outcome) to the left
                align="R" if all(isinstance(line[index], int | float | None) for line in lines) else "L",
            )
            for index, (name, heading) in enumerate(section.columns.items())
        ]
        form = RecordForm(title=section.title, verified=True, columns=columns)
        pdf.set_font(FAMILY, "B", 11)
        pdf.multi_cell(0, 6, nfc(section.title), new_x="LMARGIN", new_y="NEXT")
        rows = [["" if value is None else nfc(str(value)) for value in line] for line in lines]
        if rows:
            _table(pdf, form, rows, size=9)
        else:
            pdf.set_font(FAMILY, "I", 10)
            pdf.multi_cell(0, 5, "Không có số liệu trong kỳ.", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    _note(pdf, report.as_of)
    return _bytes(pdf)
