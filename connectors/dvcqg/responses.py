"""Classification of DVCQG adapter answers (docs/portal.md §3.8, §10 item 3).

=====================================================  ==========================================
Answer                                                 Result
=====================================================  ==========================================
``error_code`` 0 / "0" / "00" (``success_codes``)      :attr:`Outcome.OK`
``message`` contains "đã tồn tại"                      :attr:`Outcome.DUPLICATE` (create → update)
HTTP 401/403, ``auth_error_codes``, session markers    :attr:`Outcome.SESSION_EXPIRED` (re-login)
plain text containing "thành công"                     :attr:`Outcome.OK` (progress endpoint, §3.8)
HTTP 408/425/429/5xx, ``busy_codes``                   :class:`~schemas.errors.EndpointBusyError`
any other ``error_code``, other 4xx, unreadable body   :class:`~schemas.errors.BusinessRejectionError`
timeouts, refused or dropped connections               :class:`~schemas.errors.TransportError`
=====================================================  ==========================================

HTTP statuses and transport failures go through the connectors' shared mapping
(:mod:`connectors.http_errors`) after the portal's own 401/403 rule; the ``error_code`` table
is DVCQG's. Retryable errors carry ``retry_after`` from ``Retry-After`` (seconds or HTTP date);
every error carries typed ``status_code``, ``request_summary`` and ``response_summary``,
bounded and PII-masked.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from connectors.base import excerpt
from connectors.dvcqg.options import DvcqgOptions
from connectors.http import parse_retry_after
from connectors.http_errors import Remote, busy_error, classify_status, rejection_error

#: How the portal is named in error messages.
PORTAL = Remote("DVCQG portal", "Cổng DVCQG")


class Outcome(StrEnum):
    OK = "ok"
    DUPLICATE = "duplicate"
    SESSION_EXPIRED = "session_expired"


class PortalAnswer(BaseModel):
    """A portal answer the caller still has to act on (success, duplicate, expired session)."""

    outcome: Outcome
    status_code: int
    error_code: str | None = None
    message: str = ""
    result: list[dict[str, Any]] = Field(default_factory=list)
    session: str | None = None
    """Only in login answers."""
    summary: str = ""
    """Bounded, PII-masked excerpt of the raw answer for the attempt log."""


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def _contains(text: str, markers: tuple[str, ...]) -> bool:
    folded = _fold(text)
    return any(_fold(marker) in folded for marker in markers)


def normalize_code(value: object) -> str | None:
    """``error_code`` may be a number or a string (0, "0", "00"); compare as text."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


def classify_response(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    options: DvcqgOptions,
    *,
    request_summary: str = "",
) -> PortalAnswer:
    """Turn one HTTP answer into a :class:`PortalAnswer` or raise the matching hub error.

    ``headers`` lookups use lower-case names (httpx ``Headers`` is case-insensitive anyway).
    """
    summary = excerpt(body)
    if status_code in (401, 403):
        return PortalAnswer(outcome=Outcome.SESSION_EXPIRED, status_code=status_code, summary=summary)
    error = classify_status(
        status_code, PORTAL, headers=headers, request_summary=request_summary, response=summary
    )
    if error is not None:
        raise error

    text = body.decode("utf-8", "replace").strip()
    try:
        document: Any = json.loads(text) if text else None
    except ValueError:
        document = text
    if isinstance(document, list):
        rows = [row for row in document if isinstance(row, dict)]
        return PortalAnswer(outcome=Outcome.OK, status_code=status_code, result=rows, summary=summary)
    if not isinstance(document, dict):
        return _classify_text(status_code, str(document or ""), options, request_summary, summary)

    code = normalize_code(document.get("error_code"))
    message = str(document.get("message") or document.get("Message") or "")
    raw_result = document.get("result")
    result = [row for row in raw_result if isinstance(row, dict)] if isinstance(raw_result, list) else []
    session = document.get("session")
    answer = PortalAnswer(
        outcome=Outcome.OK,
        status_code=status_code,
        error_code=code,
        message=message,
        result=result,
        session=session if isinstance(session, str) and session else None,
        summary=summary,
    )
    if code is not None and code in options.success_codes:
        return answer
    if _contains(message, options.duplicate_markers):
        return answer.model_copy(update={"outcome": Outcome.DUPLICATE})
    if (code is not None and code in options.auth_error_codes) or _contains(
        message, options.auth_error_markers
    ):
        return answer.model_copy(update={"outcome": Outcome.SESSION_EXPIRED})
    if code is not None and code in options.busy_codes:
        raise busy_error(
            PORTAL,
            f"error_code {code}: {message}",
            status_code=status_code,
            retry_after=parse_retry_after(headers.get("retry-after")),
            request_summary=request_summary,
            response=summary,
        )
    if code is None and (isinstance(raw_result, list) or _contains(message, options.text_success_markers)):
        return answer
    raise rejection_error(
        PORTAL,
        f"error_code {code}: {message or '(no message)'}",
        status_code=status_code,
        request_summary=request_summary,
        response=summary,
    )


def _classify_text(
    status_code: int, text: str, options: DvcqgOptions, request_summary: str, summary: str
) -> PortalAnswer:
    """Plain-text answers (the progress endpoint, §3.8)."""
    if _contains(text, options.duplicate_markers):
        return PortalAnswer(outcome=Outcome.DUPLICATE, status_code=status_code, message=text, summary=summary)
    if _contains(text, options.text_success_markers):
        return PortalAnswer(outcome=Outcome.OK, status_code=status_code, message=text, summary=summary)
    if _contains(text, options.auth_error_markers):
        return PortalAnswer(
            outcome=Outcome.SESSION_EXPIRED, status_code=status_code, message=text, summary=summary
        )
    raise rejection_error(
        PORTAL,
        f"unexpected answer {excerpt(text, 200)!r}",
        status_code=status_code,
        request_summary=request_summary,
        response=summary,
    )
