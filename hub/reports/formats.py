"""The file formats of the reports (docs/reports.md §5, §7, §10): declared once for the API, the
command line, the console's downloads and the scheduled exports."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["MEDIA_TYPES", "FileFormat"]


class FileFormat(StrEnum):
    """A report written as a file, in the order the console offers the downloads."""

    XLSX = "xlsx"
    CSV = "csv"
    PDF = "pdf"


#: The media type of each file format (a download's ``Content-Type``, a scheduled export's
#: ``content_type``).
MEDIA_TYPES: dict[str, str] = {
    FileFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    FileFormat.CSV: "text/csv; charset=utf-8",
    FileFormat.PDF: "application/pdf",
}
