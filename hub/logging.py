"""Structured logging with personal data masked in every record.

Decree 13/2023/NĐ-CP on personal data protection: ID numbers (9-digit CMND, 12-digit CCCD),
phone numbers and credentials must not end up in logs. :class:`PiiMaskingFilter` rewrites
each record's message (after ``%`` formatting with its args) and exception text; attach it
to handlers (filters on a logger do not apply to records propagated from child loggers),
which :func:`configure_logging` does for the root handler.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_PHONE_RE = re.compile(r"(?<![\w+])(?:\+84|84|0)(?:[ .-]?\d){8,9}(?![\d])")
_ID_RE = re.compile(r"(?<![\w.-])(\d{12}|\d{9})(?![\w])")
_TOKEN_RE = re.compile(r"\bhub_([a-z0-9]{8})_[A-Za-z0-9_-]+")
_BEARER_RE = re.compile(r"(?i)\b(bearer|x-api-key[\"']?\s*[:=]\s*[\"']?)\s*([^\s\"',]{8,})")
_SECRET_FIELD_RE = re.compile(
    r"(?i)([\"']?(?:password|passwd|secret|token|client_secret|pin)[\"']?\s*[:=]\s*[\"']?)([^\s\"',&}]+)"
)

#: Attributes of a LogRecord that are not user-supplied ``extra`` fields.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime", "taskName"}
)


def mask_phone(value: str) -> str:
    """``0912345678`` → ``091*****78``; keeps enough to tell numbers apart in logs."""
    digits = re.sub(r"\D", "", value)
    if digits.startswith("84"):
        digits = "0" + digits[2:]
    if len(digits) < 6:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 5) + digits[-2:]


def _mask_id(match: re.Match[str]) -> str:
    number = match.group(1)
    return "*" * (len(number) - 3) + number[-3:]


def _mask_credential(match: re.Match[str]) -> str:
    label = match.group(1)
    return f"{label} ***" if label.lower() == "bearer" else f"{label}***"


def mask_pii(text: str) -> str:
    """Mask ID numbers, phone numbers, API tokens and secret-looking fields in ``text``."""
    text = _TOKEN_RE.sub(lambda m: f"hub_{m.group(1)}_***", text)
    text = _BEARER_RE.sub(_mask_credential, text)
    text = _SECRET_FIELD_RE.sub(lambda m: f"{m.group(1)}***", text)
    text = _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)
    return _ID_RE.sub(_mask_id, text)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, dict):
        return {key: _mask_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask_value(item) for item in value)
    return value


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
                record.__dict__[key] = _mask_value(value)
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
