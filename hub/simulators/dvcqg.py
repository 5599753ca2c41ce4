"""A national-portal (DVCQG adapter) simulator: a real HTTP server for tests, demos and benchmarks.

It speaks the adapter protocol of docs/portal.md §3 — login (§3.1), ``DongBoHoSoMC``,
``CapNhatTienDoHoSoMC``, ``TraCuuHoSo`` and the reference-data services (§3.2) — and checks
what it receives against the field rules of §3.3/§3.4/§3.6/§3.7 (required keys, strict string
types, status codes 1–10, ``yyyyMMddHHmmss`` times, string booleans, lengths, unknown keys
refused, dossier and procedure code formats). Accepted records are kept for inspection.

It runs on the shared harness (:mod:`hub.simulators.harness`): faults come from the one fault
model (``simulator.faults.add(...)`` or ``POST /_control/faults``) — the transport ones (hangs,
HTTP 500/503/429 with ``Retry-After``, slow answers, dropped connections before or after
processing) plus this protocol's own (:class:`DvcqgFault`: expired sessions, "already exists",
business errors and busy codes, plain-text answers), each selected per service (``operation``;
``"login"`` for the login call) and firing ``times`` times (``None`` = until cleared), which gives
"fail N times then succeed" patterns. Control routes beyond the shared ones:
``GET /_control/records/{code}``, ``GET /_control/requests``, ``POST /_control/expire-sessions``.

What the real portal answers in several cases is not public (§10): the texts and codes used
here ("đã tồn tại", ``error_code`` "401" for an expired session) are the simulator's choices,
matched by the connector's configurable defaults. The built-in procedure catalogue is sample
data shaped like Ninh Bình's codes (``1.003901.H42`` → ``1.003901``), not the official list.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any, ClassVar, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.dvcqg.wire import (
    LoginRequest,
    LookupEnvelope,
    ProgressEnvelope,
    SyncEnvelope,
    WireDossier,
)
from hub.simulators.faults import Fault
from hub.simulators.harness import Simulator, json_response, serve_until_cancelled
from schemas.codes import parse_dossier_code
from schemas.errors import InvalidInputError
from schemas.timefmt import from_dvcqg

logger = logging.getLogger(__name__)

_NATIONAL_PART = re.compile(r"^([1-3]\.[0-9]{6})")


class DvcqgFault(StrEnum):
    """This protocol's own fault kinds (the shared ones are :class:`hub.simulators.faults.FaultKind`)."""

    EXPIRE_SESSION = "expire_session"
    """Invalidate every session before handling the call (so it is answered "expired")."""
    ALREADY_EXISTS = "already_exists"
    """Answer "Hồ sơ đã tồn tại" (HTTP 200, ``error_code`` -1) without storing."""
    BUSINESS_ERROR = "business_error"
    """Answer ``{"error_code": code, "message": message}`` with HTTP 200."""
    PLAIN_TEXT = "plain_text"
    """Handle normally but answer the message as plain text (progress endpoint style, §3.8)."""


class SimulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str = "/apiDVC-GPLX/tcdbdvcdata"
    """Adapter base path; login at ``{prefix}/mapi/login``, data at ``{prefix}/mapi/g`` (§3.1)."""
    username: str = "hub"
    password: str = "hub-secret"
    madonvi: str | None = None
    """When set, every envelope's ``madonvi`` must equal it."""
    session_ttl_seconds: float = Field(default=1800, gt=0)
    expired_http_status: Literal[200, 401] = 200
    """Expired sessions: ``error_code`` "401" with HTTP 200 (default) or a plain HTTP 401."""
    progress_answer: Literal["json", "text"] = "json"
    require_catalogue_procedure: bool = True
    hang_seconds: float = Field(default=600, gt=0)
    """How long a ``timeout`` fault without ``delay_seconds`` holds the call."""
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)


class RequestLogEntry(BaseModel):
    service: str
    message_id: str | None
    outcome: str
    dossier_codes: list[str] = Field(default_factory=list)


#: Sample procedures shaped like Ninh Bình's codes (§5.2/§5.3): code, name, field code, field
#: name. Names are illustrative.
_PROCEDURES = [
    ("1.003901", "Cấp giấy chứng nhận cơ sở đủ điều kiện", "NN-TT", "Trồng trọt"),
    ("1.001822", "Cấp lại giấy phép", "NN-CN", "Chăn nuôi"),
    ("2.001641", "Xác nhận nguồn gốc", "NN-LN", "Lâm nghiệp"),
    ("1.004650", "Công nhận cơ sở", "NN-TS", "Thủy sản"),
    ("1.001029", "Phê duyệt phương án", "NN-TL", "Thủy lợi"),
]
#: The same procedures as the catalogue service returns them, by code.
CATALOGUE: dict[str, dict[str, Any]] = {
    code: {
        "TENTTHC": f"{name} (thủ tục mẫu {code})",
        "LINHVUCTHUCHIEN": [{"MALINHVUC": field_code, "TENLINHVUC": field_name}],
    }
    for code, name, field_code, field_name in _PROCEDURES
}
AGENCIES = [
    {"MADONVI": "000.00.00.H42", "TENDONVI": "UBND tỉnh Ninh Bình"},
    {"MADONVI": "000.00.18.H42", "TENDONVI": "Đơn vị cấp 2 mã 18 (mô phỏng)"},
]


def _answer(error_code: int | str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error_code": error_code, "message": message, **extra}


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(gốc)'}: {err['msg']}" for err in exc.errors()[:20]
    )


class _Invalid(Exception):
    """A record the simulator refuses (answered with error_code -1)."""


class DvcqgSimulator(Simulator):
    """The simulator; run it in a thread (:meth:`start`) or inside a loop (:meth:`start_async`)."""

    protocol_faults: ClassVar[frozenset[str]] = frozenset(kind.value for kind in DvcqgFault)
    name: ClassVar[str] = "dvcqg-simulator"

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or SimulatorConfig()
        super().__init__(
            host=host,
            port=port,
            max_body_bytes=self.config.max_body_bytes,
            hang_seconds=self.config.hang_seconds,
            clock=clock,
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}
        self._progress: dict[str, list[dict[str, Any]]] = {}
        self._sessions: dict[str, float] = {}
        self._log: list[RequestLogEntry] = []
        self._replies: dict[str, tuple[str, bytes]] = {}
        self.login_count = 0

    # --- Python API -------------------------------------------------------------------------

    @property
    def adapter_url(self) -> str:
        """What the hub configures as the endpoint ``url``."""
        return self.base_url + self.config.prefix

    def expire_sessions(self) -> None:
        with self._lock:
            self._sessions.clear()

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
            self._progress.clear()
            self._sessions.clear()
            self._log.clear()
            self._replies.clear()
            self.login_count = 0
        super().reset()

    def records(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._records))  # type: ignore[no-any-return]

    def records_json(self) -> dict[str, dict[str, Any]]:
        return self.records()

    def record(self, code: str) -> dict[str, Any] | None:
        return self.records().get(code)

    def progress(self, code: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(p) for p in self._progress.get(code, [])]

    def requests(self) -> list[RequestLogEntry]:
        with self._lock:
            return list(self._log)

    def put_record(self, record: dict[str, Any]) -> None:
        """Seed a record as if another system had synced it (validated like a create)."""
        wire = WireDossier.model_validate(record)
        with self._lock:
            self._records[wire.code] = wire.wire()

    # --- routes -----------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        prefix = self.config.prefix.rstrip("/")
        app.router.add_post(f"{prefix}/mapi/login", self._handle_login)
        app.router.add_post(f"{prefix}/mapi/g", self._handle_data)

    def add_control_routes(self, app: web.Application) -> None:
        app.router.add_get("/_control/records/{code}", self._control_record)
        app.router.add_get("/_control/requests", self._control_requests)
        app.router.add_post("/_control/expire-sessions", self._control_expire)

    def status_answer(self, fault: Fault, operation: str) -> web.Response:
        return web.Response(status=fault.status, text=f"HTTP {fault.status} (mô phỏng)")

    # --- helpers ----------------------------------------------------------------------------

    def _note(self, service: str, message_id: str | None, outcome: str, codes: list[str]) -> None:
        with self._lock:
            self._log.append(
                RequestLogEntry(service=service, message_id=message_id, outcome=outcome, dossier_codes=codes)
            )

    @staticmethod
    def _json(data: Any, status: int = 200) -> web.Response:
        return json_response(data, status)

    async def _read_json(self, request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
        if request.content_type != "application/json":
            return None, self._json(_answer("-1", "Content-Type phải là application/json"), 415)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return None, self._json(_answer("-1", "Dữ liệu vượt quá kích thước cho phép"), 413)
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None, self._json(_answer("-1", "Dữ liệu không đúng định dạng JSON"), 400)
        if not isinstance(document, dict):
            return None, self._json(_answer("-1", "Dữ liệu phải là một đối tượng JSON"), 400)
        return document, None

    async def _apply_fault(
        self, request: web.Request, fault: Fault | None, service: str
    ) -> web.StreamResponse | None:
        """The shared transport faults, then this protocol's; an answer replacing the call, or ``None``."""
        if fault is None:
            return None
        replaced = await self.transport_fault(request, fault, service)
        if replaced is not None:
            return replaced
        if fault.kind == DvcqgFault.EXPIRE_SESSION:
            self.expire_sessions()
        elif fault.kind == DvcqgFault.ALREADY_EXISTS:
            return self._json(_answer("-1", "Hồ sơ đã tồn tại trên hệ thống"))
        elif fault.kind == DvcqgFault.BUSINESS_ERROR:
            return self._json(_answer(fault.code or "-1", fault.message or "Lỗi nghiệp vụ (mô phỏng)"))
        return None

    # --- handlers ---------------------------------------------------------------------------

    async def _handle_login(self, request: web.Request) -> web.StreamResponse:
        fault = self.faults.take("login", wildcard=False)
        replaced = await self._apply_fault(request, fault, "login")
        if fault is not None and replaced is not None:
            self._note("login", None, f"fault:{fault.kind}", [])
            return replaced
        document, error = await self._read_json(request)
        if error is not None or document is None:
            return error or self._json(_answer("-1", "?"), 400)
        try:
            creds = LoginRequest.model_validate(document)
        except ValidationError as exc:
            return self._json(_answer("-1", f"Thiếu thông tin đăng nhập: {_problems(exc)}"))
        if not (
            secrets.compare_digest(creds.username, self.config.username)
            and secrets.compare_digest(creds.password, self.config.password)
        ):
            self._note("login", None, "refused", [])
            return self._json(_answer("-1", "Sai tên đăng nhập hoặc mật khẩu"))
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[token] = self._clock() + self.config.session_ttl_seconds
            self.login_count += 1
        self._note("login", None, "ok", [])
        return self.finish(request, self._json(_answer(0, "Đăng nhập thành công", session=token)), fault)

    def _session_valid(self, token: object) -> bool:
        with self._lock:
            expires = self._sessions.get(token) if isinstance(token, str) else None
            if expires is None:
                return False
            if expires <= self._clock():
                del self._sessions[token]  # type: ignore[arg-type]
                return False
            return True

    async def _handle_data(self, request: web.Request) -> web.StreamResponse:
        message_id = request.headers.get("X-Message-Id")
        document, error = await self._read_json(request)
        if error is not None or document is None:
            self._note("?", message_id, "malformed", [])
            return error or self._json(_answer("-1", "?"), 400)
        service = str(document.get("service", ""))
        fault = self.faults.take(service, message_id)
        replaced = await self._apply_fault(request, fault, service)
        if fault is not None and replaced is not None:
            self._note(service, message_id, f"fault:{fault.kind}", [])
            return replaced
        text_answer = fault is not None and fault.kind == DvcqgFault.PLAIN_TEXT
        if not self._session_valid(document.get("session")):
            self._note(service, message_id, "session_expired", [])
            if self.config.expired_http_status == 401:
                return web.Response(status=401, text="Unauthorized")
            return self._json(_answer("401", "Phiên làm việc đã hết hạn, vui lòng đăng nhập lại"))
        if self.config.madonvi is not None and document.get("madonvi") != self.config.madonvi:
            self._note(service, message_id, "rejected", [])
            return self._json(_answer("-1", f"Mã đơn vị {document.get('madonvi')!r} không hợp lệ"))

        digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
        if message_id is not None and service in ("DongBoHoSoMC", "CapNhatTienDoHoSoMC"):
            with self._lock:
                replay = self._replies.get(message_id)
            if replay is not None and replay[0] == digest:
                self._note(service, message_id, "replayed", [])
                return web.Response(body=replay[1], content_type="application/json", charset="utf-8")

        answer, codes, outcome = self._dispatch(service, document)
        self._note(service, message_id, outcome, codes)
        if text_answer or (service == "CapNhatTienDoHoSoMC" and self.config.progress_answer == "text"):
            response: web.Response = web.Response(text=str(answer.get("message", "")))
        else:
            response = self._json(answer)
        if message_id is not None and outcome == "ok" and response.body is not None:
            with self._lock:
                self._replies[message_id] = (digest, bytes(response.body))  # type: ignore[arg-type]
        return self.finish(request, response, fault)

    def _dispatch(self, service: str, document: dict[str, Any]) -> tuple[dict[str, Any], list[str], str]:
        try:
            if service == "DongBoHoSoMC":
                return self._sync(document)
            if service == "CapNhatTienDoHoSoMC":
                return self._progress_update(document)
            if service == "TraCuuHoSo":
                envelope = LookupEnvelope.model_validate(document)
                found = self.record(envelope.mahoso)
                return _answer(0, "Thành công", result=[found] if found else []), [envelope.mahoso], "ok"
            if service == "LayThuTuc":
                code = str(document.get("maTTHC", ""))
                row = CATALOGUE.get(code)
                result = [{"MATTHC": code, **row}] if row else []
                return _answer(0, "Thành công", result=result), [], "ok"
            if service == "LayDanhSachTTHC":
                rows = [{"MATTHC": c, "TENTTHC": r["TENTTHC"]} for c, r in CATALOGUE.items()]
                return _answer(0, "Thành công", result=rows), [], "ok"
            if service == "LayDanhMucCoQuan":
                return _answer(0, "Thành công", result=AGENCIES), [], "ok"
            if service == "LayDanhMucLinhVuc":
                fields = {f["MALINHVUC"]: f for r in CATALOGUE.values() for f in r["LINHVUCTHUCHIEN"]}
                return _answer(0, "Thành công", result=list(fields.values())), [], "ok"
        except ValidationError as exc:
            return _answer("-1", f"Dữ liệu không hợp lệ: {_problems(exc)}"), [], "rejected"
        except _Invalid as exc:
            return _answer("-1", f"Dữ liệu không hợp lệ: {exc}"), [], "rejected"
        return _answer("-1", f"Dịch vụ {service!r} không tồn tại"), [], "rejected"

    def _check_record(self, record: WireDossier) -> None:
        """Semantic rules beyond the field types (§3.3, §3.5, §5.1, §5.3)."""
        try:
            parse_dossier_code(record.code)
        except InvalidInputError as exc:
            raise _Invalid(f"MaHoSo: {exc.message_vi}") from None
        match = _NATIONAL_PART.match(record.procedure_code)
        if match is None:
            raise _Invalid(f"MaTTHC {record.procedure_code!r} không đúng định dạng")
        if self.config.require_catalogue_procedure and match.group(1) not in CATALOGUE:
            raise _Invalid(f"MaTTHC {record.procedure_code!r} không có trong danh mục")
        received = from_dvcqg(record.received_at)
        due = from_dvcqg(record.due_at)
        if received is not None and due is not None and due < received:
            raise _Invalid("NgayHenTra trước NgayTiepNhan")
        if record.status == "10" and not record.returned_at:
            raise _Invalid("TrangThaiHoSo 10 cần NgayTra")
        if record.email and "@" not in record.email:
            raise _Invalid("Email không hợp lệ")

    def _sync(self, document: dict[str, Any]) -> tuple[dict[str, Any], list[str], str]:
        envelope = SyncEnvelope.model_validate(document)
        for record in envelope.data:
            self._check_record(record)
        codes = [r.code for r in envelope.data]
        updating = envelope.is_updating == "True"
        with self._lock:
            for code in codes:
                exists = code in self._records
                if not updating and exists:
                    return _answer("-1", f"Hồ sơ {code} đã tồn tại"), codes, "duplicate"
                if updating and not exists:
                    return _answer("-1", f"Hồ sơ {code} không tồn tại, không thể cập nhật"), codes, "rejected"
            for record in envelope.data:
                self._records[record.code] = record.wire()
        return _answer(0, "Đồng bộ hồ sơ thành công"), codes, "ok"

    def _progress_update(self, document: dict[str, Any]) -> tuple[dict[str, Any], list[str], str]:
        envelope = ProgressEnvelope.model_validate(document)
        codes = sorted({r.code for r in envelope.data})
        with self._lock:
            unknown = [c for c in codes if c not in self._records]
            if unknown:
                return (
                    _answer("-1", f"Hồ sơ {', '.join(unknown)} chưa được đồng bộ"),
                    codes,
                    "rejected",
                )
            for record in envelope.data:
                self._progress.setdefault(record.code, []).append(record.wire())
        return _answer(0, "Cập nhật tiến độ hồ sơ thành công"), codes, "ok"

    # --- control routes of this simulator ---------------------------------------------------

    async def _control_record(self, request: web.Request) -> web.Response:
        code = request.match_info["code"]
        record = self.record(code)
        if record is None:
            return self._json({"error": "not found"}, 404)
        return self._json({"record": record, "progress": self.progress(code)})

    async def _control_requests(self, request: web.Request) -> web.Response:
        return self._json([entry.model_dump() for entry in self.requests()])

    async def _control_expire(self, request: web.Request) -> web.Response:
        self.expire_sessions()
        return self._json({"expired": True})


async def serve_forever(config: SimulatorConfig, host: str, port: int) -> None:
    """Run until cancelled (the ``hub simulate dvcqg`` command)."""

    def announce(simulator: Simulator) -> None:
        assert isinstance(simulator, DvcqgSimulator)
        print(f"DVCQG simulator listening: adapter URL {simulator.adapter_url}", flush=True)
        logger.info("DVCQG simulator at %s", simulator.base_url)

    await serve_until_cancelled(DvcqgSimulator(config, host=host, port=port), announce)
