"""Personal data never reaches log output: ID numbers, phone numbers, tokens, secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from hub.logging import JsonFormatter, PiiMaskingFilter, configure_logging
from schemas import masking
from schemas.masking import mask_phone, mask_pii

TOKEN = "hub_ab12cd34_" + "Z" * 43


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(PiiMaskingFilter())
    logger = logging.getLogger("tests.masking")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("text", "leaked", "shown"),
    [
        ("CCCD 001099012345", "001099012345", "*********345"),
        ("CMND: 123456789.", "123456789", "******789"),
        ("gọi 0912345678", "0912345678", "091*****78"),
        ("gọi +84912345678", "912345678", "091*****78"),
        ("gọi 84 912 345 678", "912 345 678", "091*****78"),
        ("gọi 0912.345.678", "0912.345.678", "091*****78"),
        ("gọi 0912-345-678.", "0912-345-678", "091*****78"),
        (f"Authorization: Bearer {TOKEN}", "ZZZZZZZZ", "Bearer ***"),
        (f"key {TOKEN}", "ZZZZZZZZ", "hub_ab12cd34_***"),
        ('{"password": "s3cr3t-value"}', "s3cr3t-value", '"password": "***'),
        ("/tra-cuu?MHS=000.00.18.H42-251125-0001&SGT=001099012345", "001099012345", "SGT=*********345"),
        # glued to letters, as citizens type them into an SMS
        ("HS 000.00.18.H42-251125-0001 CCCD001099012345", "001099012345", "CCCD*********345"),
        ("SGT001099012345x", "001099012345", "SGT*********345x"),
        ("cmnd:123456789abc", "123456789", "cmnd:******789abc"),
        ("file_001099012345.pdf", "001099012345", "file_*********345.pdf"),
        # pass=-style secrets
        ("HS 000.00.18.H42-251125-0001 pass=hunter2", "hunter2", "pass=***"),
        ("pwd: hunter2", "hunter2", "pwd: ***"),
        ("db_password=hunter2&x=1", "hunter2", "db_password=***"),
        ("api_key=abc123def", "abc123def", "api_key=***"),
        ("mat_khau=hunter2", "hunter2", "mat_khau=***"),
        ("mật khẩu: hunter2", "hunter2", "mật khẩu: ***"),
    ],
)
def test_mask_pii(text: str, leaked: str, shown: str) -> None:
    masked = mask_pii(text)
    assert leaked not in masked
    assert shown in masked


@pytest.mark.parametrize(
    "harmless",
    [
        "000.00.18.H42-251125-0001",
        "H42.018.05-260205-010001",
        "NgayTiepNhan=20250612080500",
        "procedure 1.003901.H42",
        "message 3f2a1b4c-1234-4abc-9def-0a1b2c3d4e5f",
        "X-Message-Id=7d0c7f0e-1111-4c1e-0330-470197ab1234",  # a UUID piece is not a phone number
        "took 1234 ms, 5 attempts",
        "bypass=1 compass=2",
        # a digit run inside a digest or a UUID is neither an ID nor a phone number
        "sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "digest ab12345678901234567890cdef0123456789abcdef0123456789abcdef012345",
        "message 3f2a1b4c-1234-4abc-9def-001099012345",
    ],
)
def test_identifiers_that_are_not_personal_data_stay_readable(harmless: str) -> None:
    assert mask_pii(harmless) == harmless


def test_filter_masks_message_args_extras_and_exceptions(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    try:
        raise ValueError("owner 001099012345 rejected")
    except ValueError:
        logger.exception(
            "lookup by %s from %s", "001099012345", "+84912345678", extra={"phone": "0987654321"}
        )
    record = json.loads(stream.getvalue())
    text = stream.getvalue()
    for leaked in ("001099012345", "912345678", "0987654321"):
        assert leaked not in text
    assert record["msg"] == "lookup by *********345 from 091*****78"
    assert record["phone"] == "098*****21"
    assert "*********345 rejected" in record["exc"]


def test_configure_logging_installs_one_masked_handler() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        configure_logging("INFO", stream=stream)
        configure_logging("INFO", stream=stream)
        hub_handlers = [h for h in root.handlers if getattr(h, "_hub_handler", False)]
        assert len(hub_handlers) == 1
        logging.getLogger("uvicorn.access").info('"GET /tra-cuu?SGT=001099012345 HTTP/1.1" 200')
        assert "001099012345" not in stream.getvalue()
        assert "SGT=*********345" in stream.getvalue()
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)


def test_mask_phone_keeps_ends_only() -> None:
    assert mask_phone("+84 912 345 678") == "091*****78"
    assert mask_phone("123") == "***"


def _every_pattern(text: str) -> str:
    """:func:`mask_pii` running every pattern on everything (no shortcut)."""
    text = masking._TOKEN_RE.sub(masking._mask_token, text)
    text = masking._BEARER_RE.sub(masking._mask_credential, text)
    text = masking._SECRET_FIELD_RE.sub(masking._mask_secret_field, text)
    parts = masking._HEX_RE.split(text)
    for index in range(0, len(parts), 2):
        phones_masked = masking._PHONE_RE.sub(lambda m: mask_phone(m.group(0)), parts[index])
        parts[index] = masking._ID_RE.sub(masking._mask_id, phones_masked)
    return "".join(parts)


@pytest.mark.parametrize(
    "text",
    [
        'HTTP 200 {"ok":true}',
        'HTTP 200 {"status":"OK","receipt":"R-1"}',
        "HTTP 500 Internal Server Error",
        f"Authorization: Bearer {TOKEN}",
        f"AUTHORIZATION: BEARER {TOKEN}",
        "X-API-KEY: 'abcdefgh12345'",
        f"key {TOKEN} and {TOKEN}",
        "PASSWORD=Hunter22 Token: abcdef PIN=1234 ApiKey=xyz12345",
        "MAT_KHAU=hunter2 MatKhau: x",
        "mật khẩu: hunter2",
        "Mật Khẩu=hunter2",
        "ſecret=hunter2",  # long s: Unicode text runs every pattern
        "K=1 kpin=2 tokenish: value",
        "bearer=short pass:",
        "gọi 0912345678, CCCD 001099012345",
        "",
    ],
)
def test_mask_pii_shortcuts_change_nothing(text: str) -> None:
    """The patterns mask_pii skips could not have matched (docs/delivery.md §9.3)."""
    assert mask_pii(text) == _every_pattern(text)
