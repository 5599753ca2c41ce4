"""Uniform error bodies: ``{"error": {code, message, message_vi, details}}``.

:class:`HubError` subclasses answer with the status :func:`http_status_for` finds for their
class in :data:`HTTP_STATUS` (the errors themselves know nothing of HTTP); request validation
errors answer 422 with field paths (400 for malformed JSON); unknown routes and methods keep
their 404/405 in the same shape. Input values are never echoed back (they may hold personal
data). A database whose storage is full (SQLite ``SQLITE_FULL``, PostgreSQL SQLSTATE 53100)
answers 503 ``storage_full`` with ``Retry-After``: the request saved nothing and may be sent
again once space is freed; any other operational database error (the server down or
restarting, a connection lost, a lock or statement timeout, a busy SQLite file) answers 503
``database_unavailable`` with ``Retry-After``: an outage is not the client's fault, and the
request's transaction was rolled back (docs/delivery.md §13). Anything unexpected is logged and
answered with a generic 500.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas import errors as e
from schemas.errors import AuthenticationError, HubError, RetryableError

log = logging.getLogger("hub.api")


#: HTTP status per error class; the nearest class in an error's MRO wins.
HTTP_STATUS: dict[type[HubError], int] = {
    e.HubError: 500,
    e.PermanentError: 422,
    e.RetryableError: 503,
    e.TooManyRequestsError: 429,
    e.InvalidInputError: 422,
    e.MalformedJsonError: 400,
    e.PayloadTooLargeError: 413,
    e.UnsupportedMediaTypeError: 415,
    e.UnsafeXmlError: 400,
    e.InvalidTransitionError: 409,
    e.ConflictError: 409,
    e.NotFoundError: 404,
    e.ConfigurationError: 500,
    e.FeatureNotConfiguredError: 503,
    e.AuthenticationError: 401,
    e.PermissionDeniedError: 403,
    e.TokenPinError: 401,
    e.ExternalSigningExpiredError: 410,
    e.ExternalSignatureMismatchError: 422,
}


def http_status_for(error: HubError) -> int:
    """The HTTP status an API answer carries for ``error`` (see :data:`HTTP_STATUS`)."""
    for cls in type(error).__mro__:
        status = HTTP_STATUS.get(cls)
        if status is not None:
            return status
    return 500


class ErrorDetail(BaseModel):
    code: str
    message: str
    message_vi: str
    details: dict[str, Any]


class ErrorBody(BaseModel):
    """Every error answer of the API has this shape."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the uniform error body."""
    descriptions = {
        400: "Malformed JSON",
        401: "Missing, unknown or revoked API key",
        403: "The key's role may not do this",
        404: "Not found",
        409: "Conflict (invalid status transition, idempotency key reused)",
        413: "Body larger than api.max_body_bytes",
        415: "Content type not supported",
        422: "Validation failed (field paths in details.errors)",
        429: "Too many requests",
    }
    return {
        status: {"model": ErrorBody, "description": descriptions.get(status, "Error")} for status in statuses
    }


def error_body(
    code: str, message: str, message_vi: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "message_vi": message_vi or message,
            "details": details or {},
        }
    }


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic errors as ``{"loc": "body.dossier.code", "msg": ..., "type": ...}``, no inputs."""
    return [
        {
            "loc": _location(err.get("loc", ())),
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in errors
    ]


def error_headers(exc: HubError) -> dict[str, str]:
    """``WWW-Authenticate`` for 401, ``Retry-After`` where the error knows when to retry."""
    headers: dict[str, str] = {}
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="hub"'
    if isinstance(exc, RetryableError) and exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return headers


def hub_error_response(exc: HubError) -> JSONResponse:
    body = error_body(exc.code, exc.message, exc.message_vi, exc.details)
    return JSONResponse(body, status_code=http_status_for(exc), headers=error_headers(exc))


async def _hub_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HubError)
    if http_status_for(exc) >= 500:
        log.error("request failed: %s (%s)", exc.message, exc.code)
    return hub_error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError | ValidationError)
    errors = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        where = next(err.get("loc", ()) for err in errors if err.get("type") == "json_invalid")
        reason = next((err.get("ctx", {}).get("error") for err in errors if err.get("ctx")), None)
        detail = {"position": where[-1] if where else None, "reason": reason}
        return JSONResponse(
            error_body(
                "malformed_json",
                "request body is not valid JSON",
                "nội dung yêu cầu không phải JSON hợp lệ",
                detail,
            ),
            status_code=400,
        )
    return JSONResponse(
        error_body(
            "invalid_input",
            "request failed validation",
            "dữ liệu yêu cầu không hợp lệ",
            {"errors": field_errors(errors)},
        ),
        status_code=422,
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "payload_too_large"}
    messages_vi = {
        404: "không tìm thấy",
        405: "phương thức không được hỗ trợ",
        400: "yêu cầu không hợp lệ",
        413: "nội dung yêu cầu quá lớn",
    }
    code = codes.get(exc.status_code, f"http_{exc.status_code}")
    headers = dict(exc.headers or {})
    return JSONResponse(
        error_body(code, str(exc.detail), messages_vi.get(exc.status_code)),
        status_code=exc.status_code,
        headers=headers,
    )


async def _database_refused(_request: Request, exc: Exception) -> JSONResponse:
    """A value the schema let through but the database refused (e.g. an integer overflow)."""
    log.warning("database refused a value: %s", type(getattr(exc, "orig", exc)).__name__)
    return JSONResponse(
        error_body(
            "invalid_input",
            "a value was refused by the database (out-of-range number or invalid characters)",
            "cơ sở dữ liệu từ chối một giá trị (số quá lớn hoặc ký tự không hợp lệ)",
        ),
        status_code=422,
    )


#: Seconds a client is asked to wait before resending a request refused for a full storage.
STORAGE_FULL_RETRY_AFTER_SECONDS = 60
#: Seconds a client is asked to wait before resending a request refused during a database outage.
DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS = 5
#: PostgreSQL's SQLSTATE ``disk_full`` (class 53, insufficient resources).
PG_DISK_FULL = "53100"


def is_storage_full(exc: OperationalError) -> bool:
    """The database could not grow: SQLite ``SQLITE_FULL`` ("database or disk is full") or
    PostgreSQL ``disk_full`` (SQLSTATE 53100, "could not extend file")."""
    driver_error = exc.orig
    return (
        getattr(driver_error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        or getattr(driver_error, "sqlstate", None) == PG_DISK_FULL
    )


async def _operational_error(_request: Request, exc: Exception) -> JSONResponse:
    """The database could not do its part: a full storage, or an outage (server down, connection
    lost, lock or statement timeout, SQLite busy). Both are the operator's problem, not the
    client's: 503 with ``Retry-After``, one log line without a traceback (the outage itself is
    reported once by the availability monitor, hub/db/availability.py)."""
    assert isinstance(exc, OperationalError)
    cause = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
    if is_storage_full(exc):
        log.error("database storage is full: %s", cause)
        body = error_body(
            "storage_full",
            "the hub's database storage is full: nothing was saved; send the request again later",
            "bộ nhớ cơ sở dữ liệu của hệ thống đã đầy: yêu cầu chưa được lưu; vui lòng gửi lại sau",
        )
        retry_after = STORAGE_FULL_RETRY_AFTER_SECONDS
    else:
        log.error("database unavailable: %s", cause)
        body = error_body(
            "database_unavailable",
            "the hub's database is unavailable: nothing was saved; send the request again later",
            "cơ sở dữ liệu của hệ thống tạm thời không truy cập được: yêu cầu chưa được lưu; "
            "vui lòng gửi lại sau",
        )
        retry_after = DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(retry_after)})


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error: %s", type(exc).__name__)
    return JSONResponse(
        error_body("internal_error", "internal error", "lỗi hệ thống, vui lòng thử lại sau"),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HubError, _hub_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _database_refused)
    # SQLite's driver raises a bare OverflowError for integers beyond 64 bits.
    app.add_exception_handler(OverflowError, _database_refused)
    app.add_exception_handler(OperationalError, _operational_error)
    app.add_exception_handler(Exception, _unexpected)
