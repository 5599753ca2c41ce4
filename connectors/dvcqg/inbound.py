"""Dossiers the national portal pushes to the province (docs/portal.md §6).

The body is one ``DongBoHoSoMC``-shaped record (§3.3; the transfer mechanism for ordinary
procedures is undocumented, §6, so the hub accepts the record format it already speaks). It is
validated strictly — JSON content type, size limit, well-formed UTF-8 JSON object, no duplicate
or unknown keys, the wire field rules, valid dossier and procedure codes — and converted to a
canonical :class:`~schemas.dossier.Dossier` before anything is stored.

Answers follow the OpenCPS inbound contract (§6): ``{"error_code": 0 | 1 | -1, "message":
"<MaHoSo>| <reason>"}``; 1 = duplicate (a ``MaHoSo`` already received), -1 = refused or failed.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from email.message import Message
from typing import Any

from pydantic import BaseModel, ValidationError

from connectors.dvcqg.mapping import wire_to_dossier
from connectors.dvcqg.wire import WireDossier
from schemas.dossier import Dossier
from schemas.errors import (
    HubError,
    InvalidInputError,
    MalformedJsonError,
    PayloadTooLargeError,
    RetryableError,
    UnsupportedMediaTypeError,
)
from schemas.jsonbody import parse_json_body

logger = logging.getLogger(__name__)

#: Records carry download URLs, not file contents, so a push is small.
DEFAULT_MAX_PUSH_BYTES = 1024 * 1024

#: ``accept(dossier, idempotency_key) -> created``; may be sync (run in a thread) or async.
InboundAccept = Callable[[Dossier, str], bool | Awaitable[bool]]


class InboundAnswer(BaseModel):
    error_code: int
    message: str


def check_content_type(content_type: str | None) -> None:
    message = Message()
    message["content-type"] = content_type or ""
    charset = (message.get_content_charset() or "utf-8").lower()
    if message.get_content_type() != "application/json" or charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaTypeError(
            f"content type {content_type!r} not accepted; send application/json (UTF-8)",
            message_vi="kiểu nội dung không được chấp nhận; hãy gửi application/json (UTF-8)",
        )


def parse_push(
    body: bytes, content_type: str | None, *, max_bytes: int = DEFAULT_MAX_PUSH_BYTES
) -> WireDossier:
    """Validate one pushed record; raises an :class:`~schemas.errors.InvalidInputError` subclass."""
    check_content_type(content_type)
    if len(body) > max_bytes:
        raise PayloadTooLargeError(
            f"push body of {len(body)} bytes exceeds the limit of {max_bytes}",
            message_vi=f"dữ liệu gửi sang vượt quá giới hạn {max_bytes} byte",
            details={"limit": max_bytes},
        )
    document = parse_json_body(body, unique_keys=True)
    if not isinstance(document, dict):
        raise MalformedJsonError(
            "body must be one JSON object (a DongBoHoSoMC record)",
            message_vi="dữ liệu phải là một đối tượng JSON (bản ghi DongBoHoSoMC)",
        )
    try:
        return WireDossier.model_validate(document)
    except ValidationError as exc:
        raise _invalid(exc, document) from None


def _invalid(exc: ValidationError, document: dict[str, Any]) -> InvalidInputError:
    # Field paths and messages only; input values may be personal data and are not echoed.
    errors = [
        {"loc": ".".join(str(p) for p in err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors()[:50]
    ]
    listed = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:10])
    return InvalidInputError(
        f"record refused: {listed}",
        message_vi=f"bản ghi không hợp lệ: {listed}",
        details={"errors": errors, "MaHoSo": _code_of(document)},
    )


def _code_of(document: object) -> str:
    if isinstance(document, dict):
        value = document.get("MaHoSo")
        if isinstance(value, str) and len(value) <= 64:
            return value
    return ""


def push_to_dossier(wire: WireDossier) -> Dossier:
    """Canonical dossier of a validated push; refuses invalid dossier/procedure codes."""
    try:
        return wire_to_dossier(wire)
    except ValidationError as exc:
        raise _invalid(exc, {"MaHoSo": wire.code}) from None


def _answer(code: int, dossier_code: str, reason: str) -> InboundAnswer:
    return InboundAnswer(error_code=code, message=f"{dossier_code}| {reason}")


async def handle_push(
    body: bytes,
    content_type: str | None,
    accept: InboundAccept,
    *,
    idempotency_key: str | None = None,
    max_bytes: int = DEFAULT_MAX_PUSH_BYTES,
    run_sync: Callable[[Callable[[], bool]], Awaitable[bool]] | None = None,
) -> tuple[HubError | None, InboundAnswer]:
    """Validate, convert and hand over one push; returns the refusal (``None`` when accepted or a
    duplicate) and the §6 answer. The API layer turns the refusal into an HTTP status.

    ``run_sync`` runs a synchronous ``accept`` off the event loop (the route passes
    Starlette's thread pool); without it a sync ``accept`` is called directly.
    """
    dossier_code = ""
    try:
        wire = parse_push(body, content_type, max_bytes=max_bytes)
        dossier_code = wire.code
        dossier = push_to_dossier(wire)
    except HubError as exc:
        dossier_code = dossier_code or str(exc.details.get("MaHoSo", ""))
        logger.info("DVCQG push refused (%s): %s", exc.code, exc.message)
        return exc, _answer(-1, dossier_code, exc.message)
    key = idempotency_key or f"dvcqg-push:{dossier.code}"
    try:
        if run_sync is not None and not inspect.iscoroutinefunction(accept):

            def call_sync() -> bool:
                return bool(accept(dossier, key))

            created = await run_sync(call_sync)
        else:
            outcome = accept(dossier, key)
            created = await outcome if inspect.isawaitable(outcome) else outcome
    except RetryableError as exc:
        logger.warning("DVCQG push %s not stored, retryable: %s", dossier.code, exc.message)
        return exc, _answer(-1, dossier.code, f"temporarily unavailable: {exc.message}")
    except HubError as exc:
        logger.info("DVCQG push %s refused by intake: %s", dossier.code, exc.message)
        return exc, _answer(-1, dossier.code, exc.message)
    if created:
        return None, _answer(0, dossier.code, "accepted")
    return None, _answer(1, dossier.code, "duplicate MaHoSo, already received")
