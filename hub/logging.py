"""Structured logging with personal data masked in every record.

Decree 13/2023/NĐ-CP on personal data protection: ID numbers (9-digit CMND, 12-digit CCCD),
phone numbers and credentials must not end up in logs. :class:`PiiMaskingFilter` rewrites
each record's message (after ``%`` formatting with its args) and exception text; attach it
to handlers (filters on a logger do not apply to records propagated from child loggers),
which :func:`configure_logging` does for the root handler, after the
:class:`~hub.telemetry.correlation.CorrelationFilter` that puts the current request's or
delivery's ``correlation_id`` on every record (docs/deployment.md §6).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from hub.telemetry.correlation import CorrelationFilter
from schemas.masking import mask_json, mask_pii

#: Attributes of a LogRecord that are not user-supplied ``extra`` fields.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime", "taskName"}
)


class PiiMaskingFilter(logging.Filter):
    """Rewrite every record so its message, extras and exception text carry no personal data."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg} {record.args!r}"
        record.msg = mask_pii(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_pii(record.exc_text)
        record.exc_info = None if record.exc_text else record.exc_info
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS:
                record.__dict__[key] = mask_json(value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS:
                entry[key] = value
        if record.exc_text:
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")


def configure_logging(level: str = "INFO", *, json_lines: bool = True, stream: TextIO | None = None) -> None:
    """Install one masked handler on the root logger (replacing earlier hub handlers)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_hub_handler", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else ConsoleFormatter())
    handler.addFilter(CorrelationFilter())
    handler.addFilter(PiiMaskingFilter())
    handler._hub_handler = True  # type: ignore[attr-defined]  # marker to replace on re-configure
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
