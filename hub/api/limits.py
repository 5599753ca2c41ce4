"""Request limits: body size (413, enforced while streaming) and JSON content type (415).

The size limit is an ASGI middleware so it sees every route, multipart uploads included: a
declared ``Content-Length`` above the limit is refused before any byte is read, and chunked
or lying bodies are counted as they arrive and cut off as soon as they pass the limit.
"""

from __future__ import annotations

import json
from email.message import Message

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from hub.api.errors import error_body
from hub.errors import UnsupportedMediaTypeError


class _BodyTooLarge(Exception):
    """Raised inside ``receive`` to abort reading; never leaves the middleware."""


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
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
            await self._refuse(send)


def require_json(request: Request) -> None:
    """Dependency for JSON routes: anything but ``application/json`` (or ``+json``) is 415."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return  # no body, or a bare client: FastAPI then reports the missing body as 422
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    if message.get_content_maintype() != "application" or not (
        subtype == "json" or subtype.endswith("+json")
    ):
        raise UnsupportedMediaTypeError(
            f"content type {message.get_content_type()!r} not supported; send application/json",
            message_vi="kiểu nội dung không được hỗ trợ; hãy gửi application/json",
            details={"content_type": message.get_content_type()},
        )
