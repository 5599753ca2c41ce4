"""The one mapping from HTTP exchanges to hub errors, shared by every connector.

The webhook, DVCQG and LGSP (REST and SOAP) connectors talk HTTP through httpx; what can go
wrong maps onto :mod:`schemas.errors` the same way for all of them (docs/delivery.md §3):

=============================================  ===================================================
What happened                                  Error
=============================================  ===================================================
httpx ``TimeoutException`` (connect, read,     :class:`~schemas.errors.EndpointTimeoutError`: the
write, pool)                                   retry policy waits at least ``throttle_min_seconds``
refused/reset connection, DNS, protocol error  :class:`~schemas.errors.TransportError`
2xx                                            none: the connector reads the answer
408, 425, 429, 5xx                             :class:`~schemas.errors.EndpointBusyError` with
                                               ``Retry-After`` (RFC 9110 §15.5.9, §10.2.3;
                                               RFC 8470 §5.2; RFC 6585 §4)
401, 403                                       :class:`~schemas.errors.RemoteAuthenticationError`
other 4xx                                      permanent: ``BusinessRejectionError``, or the
                                               connector's own class (``SoapFaultError``)
=============================================  ===================================================

Protocol rules stay with their connector and run before :func:`classify_status`: DVCQG's
``error_code`` table and its 401/403 "log in again", LGSP REST's token refresh on 401, SOAP
faults on HTTP 400/500. The approach is httpx's own ``map_httpcore_exceptions``: one context
manager around the call instead of an ``except`` ladder in every connector.

Every error made here carries the exchange as typed attributes (``status_code``,
``request_summary``, ``response_summary``) that are bounded and PII-masked
(:func:`connectors.base.excerpt`), so the worker stores them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import httpx

from connectors.base import excerpt
from connectors.http import parse_retry_after
from schemas.errors import (
    BusinessRejectionError,
    EndpointBusyError,
    EndpointTimeoutError,
    HubError,
    PermanentError,
    RemoteAuthenticationError,
    TransportError,
)

#: Answer excerpts on errors are cut to this many characters.
RESPONSE_EXCERPT_CHARS = 500
#: What an answer said, quoted in an error message, is cut to this many characters.
REASON_CHARS = 300
#: "Not now" statuses besides 5xx: Request Timeout, Too Early, Too Many Requests.
RETRY_LATER_STATUSES = frozenset({408, 425, 429})

_E = TypeVar("_E", bound=HubError)


@dataclass(frozen=True, slots=True)
class Remote:
    """The party a connector talks to, as named in error messages (English, Vietnamese)."""

    name: str
    name_vi: str


def is_retry_later(status: int) -> bool:
    """408, 425, 429 and every 5xx: the same request may succeed later."""
    return status in RETRY_LATER_STATUSES or status >= 500


def describe(
    error: _E,
    *,
    status_code: int | None = None,
    request_summary: str | bytes | None = None,
    response_summary: str | bytes | None = None,
    keep_existing: bool = False,
) -> _E:
    """Attach one exchange to ``error`` as typed attributes, bounded and masked.

    ``keep_existing`` fills only what ``error`` does not carry yet (an inner call, such as the
    token request under an API call, described its own exchange already).
    """
    if status_code is not None and not (keep_existing and error.status_code is not None):
        error.status_code = status_code
    if request_summary is not None and not (keep_existing and error.request_summary is not None):
        error.request_summary = excerpt(request_summary)
    if response_summary is not None and not (keep_existing and error.response_summary is not None):
        error.response_summary = excerpt(response_summary, RESPONSE_EXCERPT_CHARS)
    return error


class map_transport_errors:  # used as a function: ``with map_transport_errors(...)``
    """httpx exceptions raised inside the block → :class:`TransportError` (timeouts: the subclass
    :class:`EndpointTimeoutError`), with the exception as the response summary.

    A class, not a generator context manager: it wraps every delivery, and entering and leaving
    it must cost next to nothing when nothing is raised.
    """

    __slots__ = ("_remote", "_request_summary")

    def __init__(self, remote: Remote, *, request_summary: str | None = None) -> None:
        self._remote = remote
        self._request_summary = request_summary

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if not isinstance(exc, httpx.HTTPError):
            return
        remote = self._remote
        if isinstance(exc, httpx.TimeoutException):
            error: TransportError = EndpointTimeoutError(
                f"{remote.name} timed out ({type(exc).__name__})",
                message_vi=f"{remote.name_vi}: hết thời gian chờ phản hồi",
            )
        else:
            what, what_vi = _connection_failure(exc)
            error = TransportError(
                f"{remote.name}: {what} ({type(exc).__name__}: {exc})",
                message_vi=f"{remote.name_vi}: {what_vi}",
            )
        raise _transport(error, exc, self._request_summary) from exc


def _connection_failure(exc: httpx.HTTPError) -> tuple[str, str]:
    """What happened to the connection (English, Vietnamese), for a failure that is not a timeout."""
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or unreachable", "không kết nối được"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "connection dropped without an answer", "kết nối bị ngắt, không có phản hồi"
    return "request failed", f"lỗi kết nối ({type(exc).__name__})"


def _transport(error: TransportError, exc: httpx.HTTPError, request_summary: str | None) -> TransportError:
    return describe(error, request_summary=request_summary, response_summary=f"{type(exc).__name__}: {exc}")


def busy_error(
    remote: Remote,
    why: str,
    *,
    status_code: int | None,
    retry_after: float | None = None,
    request_summary: str | None = None,
    response: str | bytes | None = None,
) -> EndpointBusyError:
    """The endpoint is overloaded or failing (an HTTP status or a portal's own "busy" code)."""
    reason = excerpt(why, REASON_CHARS)
    return describe(
        EndpointBusyError(
            f"{remote.name} busy or failing ({reason}); will retry",
            message_vi=f"{remote.name_vi} đang bận hoặc gặp lỗi ({reason}); sẽ gửi lại",
            retry_after=retry_after,
        ),
        status_code=status_code,
        request_summary=request_summary,
        response_summary=response,
    )


def rejection_error(
    remote: Remote,
    why: str,
    *,
    status_code: int | None,
    request_summary: str | None = None,
    response: str | bytes | None = None,
    error: type[PermanentError] = BusinessRejectionError,
) -> PermanentError:
    """The endpoint understood the request and refused it; retrying cannot help."""
    reason = excerpt(why, REASON_CHARS)
    return describe(
        error(
            f"{remote.name} rejected the request: {reason}",
            message_vi=f"{remote.name_vi} từ chối yêu cầu: {reason}",
        ),
        status_code=status_code,
        request_summary=request_summary,
        response_summary=response,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive look-up (``httpx.Headers`` is; a plain mapping may not be)."""
    if isinstance(headers, httpx.Headers):
        value: str | None = headers.get(name)
        return value
    return next((value for key, value in headers.items() if key.lower() == name), None)


def classify_status(
    status: int,
    remote: Remote,
    *,
    headers: Mapping[str, str] | None = None,
    retry_after: float | None = None,
    request_summary: str | None = None,
    response: str | bytes | None = None,
    rejection: type[PermanentError] = BusinessRejectionError,
    detail: str = "",
) -> HubError | None:
    """``None`` for 2xx, else the hub error for ``status`` (the caller raises it).

    ``retry_after`` comes from ``headers`` (``Retry-After``) unless given; ``rejection`` is the
    class of other 4xx answers and ``detail`` what the answer said about them.
    """
    if 200 <= status < 300:
        return None
    if is_retry_later(status):
        if retry_after is None and headers is not None:
            retry_after = parse_retry_after(_header(headers, "retry-after"))
        return busy_error(
            remote,
            f"HTTP {status}",
            status_code=status,
            retry_after=retry_after,
            request_summary=request_summary,
            response=response,
        )
    if status in (401, 403):
        return describe(
            RemoteAuthenticationError(
                f"{remote.name} refused the hub's credentials (HTTP {status})",
                message_vi=f"{remote.name_vi} từ chối thông tin xác thực (HTTP {status})",
            ),
            status_code=status,
            request_summary=request_summary,
            response_summary=response,
        )
    return rejection_error(
        remote,
        f"HTTP {status}: {detail}" if detail else f"HTTP {status}",
        status_code=status,
        request_summary=request_summary,
        response=response,
        error=rejection,
    )
