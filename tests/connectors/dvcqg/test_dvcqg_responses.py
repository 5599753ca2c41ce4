"""Classification table of DVCQG answers (docs/portal.md §3.8)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from connectors.dvcqg.options import DvcqgOptions
from connectors.dvcqg.responses import PORTAL, Outcome, classify_response
from connectors.http import parse_retry_after
from connectors.http_errors import map_transport_errors
from schemas.errors import BusinessRejectionError, EndpointBusyError, RetryableError, TransportError

OPTIONS = DvcqgOptions(madonvi="000.00.18.H42", busy_codes=("99",))


def body(doc: object) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("status", "content", "outcome"),
    [
        (200, body({"error_code": 0, "message": "ok"}), Outcome.OK),
        (200, body({"error_code": "0", "message": "ok"}), Outcome.OK),
        (200, body({"error_code": "00", "message": "ok"}), Outcome.OK),
        (
            200,
            body({"error_code": "-1", "message": "Hồ sơ 000.00.18.H42-250612-0001 đã tồn tại"}),
            Outcome.DUPLICATE,
        ),
        (200, body({"error_code": "401", "message": "x"}), Outcome.SESSION_EXPIRED),
        (200, body({"error_code": "-5", "message": "Phiên làm việc đã hết hạn"}), Outcome.SESSION_EXPIRED),
        (401, b"Unauthorized", Outcome.SESSION_EXPIRED),
        (403, b"", Outcome.SESSION_EXPIRED),
        (200, "Cập nhật tiến độ thành công".encode(), Outcome.OK),
        (200, body({"result": [{"MaHoSo": "x"}]}), Outcome.OK),
        (200, body([{"MATTHC": "1.003901"}]), Outcome.OK),
    ],
)
def test_answers_the_caller_acts_on(status: int, content: bytes, outcome: Outcome) -> None:
    assert classify_response(status, {}, content, OPTIONS).outcome is outcome


def test_nfd_text_is_matched() -> None:
    import unicodedata

    nfd = unicodedata.normalize("NFD", "Hồ sơ đã tồn tại")
    answer = classify_response(200, {}, body({"error_code": "-1", "message": nfd}), OPTIONS)
    assert answer.outcome is Outcome.DUPLICATE


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (500, {}, None),
        (503, {"retry-after": "7"}, 7.0),
        (429, {"retry-after": "120"}, 120.0),
        (502, {}, None),
        (408, {}, None),
    ],
)
def test_http_busy_is_retryable_with_retry_after(
    status: int, headers: dict[str, str], retry_after: float | None
) -> None:
    with pytest.raises(EndpointBusyError) as info:
        classify_response(status, headers, b"busy", OPTIONS, request_summary="POST /mapi/g")
    assert info.value.retryable
    assert info.value.retry_after == retry_after
    assert info.value.status_code == status
    assert info.value.request_summary == "POST /mapi/g"
    assert info.value.response_summary == "busy"


def test_configured_busy_code_is_retryable() -> None:
    with pytest.raises(EndpointBusyError):
        classify_response(200, {}, body({"error_code": "99", "message": "Hệ thống bận"}), OPTIONS)


@pytest.mark.parametrize(
    ("status", "content"),
    [
        (200, body({"error_code": "-1", "message": "Dữ liệu không hợp lệ: MaTTHC"})),
        (200, body({"error_code": "3", "message": "x"})),
        (200, body({"message": "không rõ"})),
        (200, "Lỗi không xác định".encode()),
        (200, b"<html>gateway</html>"),
        (400, body({"error_code": "-1"})),
        (404, b"not found"),
    ],
)
def test_business_errors_are_permanent(status: int, content: bytes) -> None:
    with pytest.raises(BusinessRejectionError) as info:
        classify_response(status, {}, content, OPTIONS)
    assert not info.value.retryable
    assert info.value.message_vi.startswith("Cổng DVCQG từ chối")


def test_success_codes_are_configurable() -> None:
    thanh_hoa = OPTIONS.model_copy(update={"success_codes": ("0", "00", "3", "-3")})
    assert classify_response(200, {}, body({"error_code": "-3"}), thanh_hoa).outcome is Outcome.OK


def test_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
def test_transport_failures_are_retryable(exc: httpx.HTTPError) -> None:
    with (
        pytest.raises(TransportError) as info,
        map_transport_errors(PORTAL, request_summary="POST /mapi/g service=DongBoHoSoMC"),
    ):
        raise exc
    error = info.value
    assert isinstance(error, TransportError)
    assert isinstance(error, RetryableError)
    assert error.request_summary == "POST /mapi/g service=DongBoHoSoMC"
