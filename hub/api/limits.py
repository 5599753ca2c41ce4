"""Request limits: body size (413, enforced while streaming) and JSON content type (415).

The size limit is an ASGI middleware so it sees every route, multipart uploads included: a
declared ``Content-Length`` above the limit is refused before any byte is read, and chunked
or lying bodies are counted as they arrive and cut off as soon as they pass the limit.
"""

from __future__ import annotations

import functools
import json
import re
from email.message import Message

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from hub.api.errors import error_body
from hub.api.http_middleware import HttpMiddleware
from schemas.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError

#: How much of a refused body is read and dropped so the client sees the 413 (not a reset).
DRAIN_BYTES = 4 * 1024 * 1024


class _BodyTooLarge(Exception):
    """Raised inside ``receive`` to abort reading; never leaves the middleware."""


class BodySizeLimitMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            error_body(
                "payload_too_large",
                f"request body larger than {self.max_bytes} bytes",
                f"nội dung yêu cầu lớn hơn {self.max_bytes} byte",
                {"limit": self.max_bytes},
            ),
            ensure_ascii=False,
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _drain(self, receive: Receive, already: int) -> None:
        """Read and drop what the client is still sending, up to :data:`DRAIN_BYTES`.

        Closing a connection with unread request bytes makes the kernel send a TCP reset, and
        the client may then lose the 413 answer; draining a bounded amount lets it read the
        answer (nginx's "lingering close"). Larger bodies are cut off by the close anyway.
        """
        drained = already
        while drained < self.max_bytes + DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._drain(receive, 0)
                    await self._refuse(send)
                    return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> AsgiMessage:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: AsgiMessage) -> None:
            nonlocal started
            if exceeded:
                return  # the app's answer to a truncated body is replaced by the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._drain(receive, received)
            await self._refuse(send)


#: A JSON ``\u0000`` escape that is not itself escaped (an even number of backslashes before it).
_NUL_ESCAPE = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000", re.IGNORECASE)
#: What every match of :data:`_NUL_ESCAPE` contains (its only letter is the ``u``): a body with
#: neither is answered by a substring search, without the expression, which tries a match at
#: every byte (on the 2-core development machine: 32 µs CPU for a 400-byte dossier, 3 ms for a
#: batch of 100; the substring search 1 µs and 58 µs).
_NUL_ESCAPE_TEXTS = (b"\\u0000", b"\\U0000")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def body_too_large(size: int, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"upload of {size}+ bytes exceeds the {limit}-byte limit",
        message_vi=f"Tệp tải lên vượt giới hạn {limit} byte",
        details={"limit": limit},
    )


async def read_body(request: Request, limit: int) -> bytes:
    """A route's own, tighter limit than the middleware's: the body, or
    :class:`PayloadTooLargeError` (413) as soon as it passes ``limit`` bytes (a larger declared
    ``Content-Length`` before any byte is read); nothing more is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise body_too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise body_too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def client_address(request: Request) -> str:
    """The address per-client limits count against (the lookup budget, failed authentication)."""
    return request.client.host if request.client else "unknown"


def control_character_error(field: str, field_vi: str | None = None) -> InvalidInputError:
    return InvalidInputError(
        f"{field} contains control characters (U+0000–U+001F are not allowed in text)",
        message_vi=f"{field_vi or field} chứa ký tự điều khiển không hợp lệ",
        details={"field": field},
    )


def reject_control_characters(field: str, value: str | None) -> None:
    """Form fields: NUL and other C0 controls are refused (PostgreSQL cannot store NUL)."""
    if value and _CONTROL.search(value):
        raise control_character_error(field)


async def require_json(request: Request) -> None:
    """Dependency for JSON routes: ``application/json`` (or ``+json``) only, else 415.

    Also refuses ``\u0000`` in JSON strings: PostgreSQL text and JSONB cannot hold NUL, and
    accepting it on SQLite only would make the two backends disagree.
    """
    content_type = request.headers.get("content-type")
    if content_type is None:
        return  # no body, or a bare client: FastAPI then reports the missing body as 422
    media_type = _media_type(content_type)
    if media_type is not None:
        raise UnsupportedMediaTypeError(
            f"content type {media_type!r} not supported; send application/json",
            message_vi="kiểu nội dung không được hỗ trợ; hãy gửi application/json",
            details={"content_type": media_type},
        )
    if has_nul_escape(await request.body()):
        raise control_character_error("request body", "nội dung yêu cầu")


def has_nul_escape(body: bytes) -> bool:
    """Whether a JSON ``body`` holds a ``\\u0000`` escape (not an escaped backslash then ``u0000``)."""
    lower, upper = _NUL_ESCAPE_TEXTS
    return (lower in body or upper in body) and _NUL_ESCAPE.search(body) is not None


@functools.lru_cache(maxsize=64)
def _media_type(content_type: str) -> str | None:
    """``None`` for a JSON ``Content-Type`` (``application/json`` or ``application/*+json``),
    else its media type as the 415 names it. Remembered: clients send the same header on every
    request (bounded, so varied headers only evict)."""
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    if message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json")):
        return None
    return message.get_content_type()
