"""How each report is written as a file of each :class:`~hub.reports.formats.FileFormat`
(docs/reports.md §5, §8, §10): one table for the API's and the console's downloads, the
command line and the scheduled exports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from hub.reports import usage_export
from hub.reports.export import to_csv, to_xlsx
from hub.reports.formats import FileFormat
from hub.reports.pdf import Letterhead, ontime_pdf, usage_pdf

__all__ = ["ONTIME_FILES", "USAGE_FILES", "ReportWriters"]

T = TypeVar("T")


@dataclass(frozen=True)
class ReportWriters(Generic[T]):
    """How a report is written as a CSV, XLSX or PDF file (docs/reports.md §5, §8)."""

    csv: Callable[[T], bytes]
    xlsx: Callable[[T], bytes]
    pdf: Callable[[T, Letterhead], bytes]

    def write(self, report: T, fmt: FileFormat, head: Letterhead) -> bytes:
        """``report`` as a ``fmt`` file; ``head`` heads the PDF."""
        if fmt == FileFormat.PDF:
            return self.pdf(report, head)
        return self.csv(report) if fmt == FileFormat.CSV else self.xlsx(report)


#: The on-time report's files.
ONTIME_FILES = ReportWriters(to_csv, to_xlsx, ontime_pdf)
#: The usage report's files.
USAGE_FILES = ReportWriters(usage_export.to_csv, usage_export.to_xlsx, usage_pdf)
