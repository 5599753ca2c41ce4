"""The LGSP's own fault kinds, and how the shared ``status`` fault's answer looks on this platform.

The transport faults (latency, timeout, drop, HTTP status with ``Retry-After``) are the shared
ones of :mod:`hub.simulators.faults`; these are the protocol's: SOAP Client/Sender and
Server/Receiver faults (on REST: HTTP 400 and 500 with an ``MResult``), "already exists" and
other ``MResult`` rejections, and a revoked OAuth2 token (REST).
"""

from __future__ import annotations

from enum import StrEnum

from aiohttp import web

from hub.simulators.faults import Fault


class LgspFault(StrEnum):
    SOAP_CLIENT_FAULT = "soap_client_fault"
    """SOAP: a Client/Sender fault ("DocTypeCode không tồn tại"); REST: HTTP 400 ``Status`` 0."""
    SOAP_SERVER_FAULT = "soap_server_fault"
    """SOAP: a Server/Receiver fault ("Hệ thống đang bận", ``Retry-After`` if set); REST: HTTP 500."""
    ALREADY_EXISTS = "already_exists"
    """``MResult`` Status 0 "Hồ sơ đã tồn tại trên hệ thống"."""
    REJECT = "reject"
    """``MResult`` Status 0 "Dữ liệu không hợp lệ: thiếu thông tin bắt buộc"."""
    EXPIRED_TOKEN = "expired_token"
    """Revoke every issued token; REST answers this call 401 ``invalid_token`` (SOAP carries on)."""


#: ``MResult`` answers (Status, Message) of the rejection faults.
MRESULT_FAULTS: dict[str, tuple[int, str]] = {
    LgspFault.ALREADY_EXISTS: (0, "Hồ sơ đã tồn tại trên hệ thống (already exists)"),
    LgspFault.REJECT: (0, "Dữ liệu không hợp lệ: thiếu thông tin bắt buộc (injected)"),
}

CLIENT_FAULT_REASON = "Dữ liệu không hợp lệ: DocTypeCode không tồn tại (injected)"
SERVER_FAULT_REASON = "Hệ thống đang bận (injected)"


def retry_after_headers(fault: Fault) -> dict[str, str]:
    return {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}


def status_answer(fault: Fault) -> web.Response:
    """A proxy-style error page, as a WSO2 gateway or the IIS in front of it answers."""
    if fault.status == 500:
        return web.Response(
            status=500, body=b"<html><body>Internal Server Error</body></html>", content_type="text/html"
        )
    texts = {503: "Service Unavailable", 429: "Too Many Requests"}
    return web.Response(status=fault.status, text=texts.get(fault.status, f"HTTP {fault.status}"))
