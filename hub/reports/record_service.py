"""The records service: the tracking book of a period and a dossier's control slip as files,
and the agency signature on them when asked (docs/reports.md §7).

Files: PDF (:mod:`hub.reports.pdf`), CSV (UTF-8 with a BOM) and XLSX for the book, with the
layout's columns. Signing goes through the signing gate (:class:`hub.services.signing_authority.
SigningGate`): the clerk listed on ``[signing] result_agency_key`` applies the agency signature
in the text-stamp appearance of a separate-file record (no competent person's signature comes
first on a record of the unit's work), and the gate audits every attempt (docs/signing.md §10.5).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import TYPE_CHECKING

from hub.config import Settings
from hub.db.session import Database
from hub.reports.pdf import Letterhead, control_slip_pdf, tracking_book_pdf
from hub.reports.query import DayRange
from hub.reports.records import RecordLayout, TrackingBook, control_slip, tracking_book
from hub.reports.service import day_rules
from schemas.dossier import Dossier
from schemas.errors import FeatureNotConfiguredError
from schemas.timefmt import now_utc

if TYPE_CHECKING:
    from hub.auth.keys import Principal
    from hub.services.signing_authority import SigningGate


class RecordService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._rules = day_rules(settings)
        self._layout = RecordLayout.load(settings.reports.records_layout_file)
        self._head = Letterhead.from_settings(settings.reports)

    @property
    def layout(self) -> RecordLayout:
        return self._layout

    def book(
        self, window: DayRange, *, agency_code: str | None = None, now: datetime | None = None
    ) -> TrackingBook:
        with self._db.sessions() as session:
            return tracking_book(
                session.connection(), window, self._rules, now or now_utc(), agency_code=agency_code
            )

    def book_pdf(self, book: TrackingBook) -> bytes:
        return tracking_book_pdf(book, self._layout.tracking_book, self._head)

    def book_rows(self, book: TrackingBook) -> tuple[list[str], list[list[str]]]:
        """Headings and cell texts of the book in the layout's columns (CSV and XLSX)."""
        columns = self._layout.tracking_book.columns
        return [c.heading for c in columns], [[row.text(c.field) for c in columns] for row in book.rows]

    def book_csv(self, book: TrackingBook) -> bytes:
        headings, rows = self.book_rows(book)
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows([headings, *rows])
        return out.getvalue().encode("utf-8-sig")

    def book_xlsx(self, book: TrackingBook) -> bytes:
        from openpyxl import Workbook
        from openpyxl.styles import Alignment, Font

        headings, rows = self.book_rows(book)
        workbook = Workbook()
        sheet = workbook.active
        assert sheet is not None
        sheet.title = "Sổ theo dõi hồ sơ"
        form = self._layout.tracking_book
        sheet.append([f"{form.title} ({book.window.first:%d/%m/%Y} – {book.window.last:%d/%m/%Y})"])
        sheet.append(headings)
        for cell in sheet[2]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for row in rows:
            sheet.append(row)
        sheet["A1"].font = Font(bold=True, size=13)
        sheet.freeze_panes = "A3"
        out = io.BytesIO()
        workbook.save(out)
        return out.getvalue()

    def slip_pdf(self, dossier: Dossier, now: datetime | None = None) -> bytes:
        at = now or now_utc()
        slip = control_slip(dossier, self._rules, at)
        return control_slip_pdf(slip, self._layout.control_slip, self._head, at)

    async def sign(
        self,
        gate: SigningGate,
        principal: Principal,
        pdf: bytes,
        number: str,
        *,
        dossier_code: str | None = None,
    ) -> bytes:
        """The agency signature on a record (docs/reports.md §7.4): key ``[signing]
        result_agency_key``, appearance ``attachment`` (text stamp top right: ``number`` and the
        signing time, Decree 30/2020 Appendix I III.1), PAdES B-LTA; 403 unless ``principal`` is
        the clerk listed on the key; audited as ``signing.records``."""
        from signing.models import SignatureLevel, SignOptions, SignRole

        key_id = self._settings.signing.result_agency_key
        if not key_id:
            raise FeatureNotConfiguredError(
                "the agency key is not configured ([signing] result_agency_key)",
                message_vi="Chưa cấu hình khóa của cơ quan ([signing] result_agency_key)",
            )
        options = SignOptions(
            level=SignatureLevel.B_LTA,
            role=SignRole.ATTACHMENT,
            document_number=number[:80],
            reason="Xác nhận sổ, phiếu của Bộ phận Một cửa",
        )
        signed, _result = await gate.sign_document(
            principal, pdf, key_id, options, dossier_code=dossier_code, path="records"
        )
        return signed
