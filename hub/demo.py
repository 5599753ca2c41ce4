"""``hub demo``: the whole hub on one machine, end to end, in under a minute.

What it does, as a sequence of :class:`DemoStep` s (append more, e.g. the DVCQG and LGSP
simulators with faults, or signing a result with two signatures):

1. a fresh SQLite database in ``var/demo/``, the API on loopback, a local stand-in portal
   with two endpoints (``cong-dvcqg`` and ``lgsp-tinh``) and the delivery worker in-process;
2. sample Ninh Bình dossiers (agency ``000.00.18.H42``, procedures ``1.003901.H42`` …) fed
   through the intake API along the one-stop procedure (national-portal.md §2.2):
   received → processing → supplement with re-dating (Mẫu 02) → processing → finished (with
   an uploaded result served by download URL) → returned;
3. the stand-in portal answers 503 to the first attempt of every message (retries), and the
   provincial endpoint refuses one procedure with 422 until it is "configured" (a permanent
   error: dead letter, later messages of that dossier held back);
4. the operator fixes the endpoint and replays the dead letter through the DLQ service;
5. checks: every message delivered, each dossier's messages arrived in order per endpoint;
   prints a summary table. Exit status 0 only if every check passed.

Parts that are not installed (delivery worker, DLQ service) are reported as skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import shutil
import signal
import socket
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.api.app import create_app
from hub.auth.keys import ApiKeyService
from hub.config import Settings, load_settings
from hub.db.migrate import upgrade
from hub.db.models import DeliveryAttempt, MessageState, OutboxMessage
from hub.db.session import Database
from hub.errors import ConfigurationError
from schemas.status import DossierStatus
from schemas.timefmt import now_vn

MARKER = ".hub-demo"
AGENCY = "000.00.18.H42"
ENDPOINTS = ("cong-dvcqg", "lgsp-tinh")
Echo = Callable[[str], None]


# --- the stand-in portal ---------------------------------------------------------------------


@dataclass
class Arrival:
    endpoint: str
    message_id: str
    dossier_code: str
    kind: str
    revision: int
    attempt: int


@dataclass
class StandInPortal:
    """A flaky JSON receiver for the demo's two endpoints (``POST /<endpoint>/deliver``).

    * On the ``flaky`` endpoints the first ``transient_failures`` attempts of every message get
      HTTP 503 (retryable: the national portal is busy).
    * Messages of dossiers whose procedure is in ``unknown_procedures[endpoint]`` get 422
      (a business rejection: permanent, dead-lettered) until :meth:`configure_procedure`.
    * Accepted messages are recorded once per message id (de-duplication by ``X-Message-Id``).
    """

    transient_failures: int = 1
    flaky: frozenset[str] = frozenset({"cong-dvcqg"})
    unknown_procedures: dict[str, set[str]] = field(default_factory=dict)
    arrivals: list[Arrival] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)

    def configure_procedure(self, endpoint: str, procedure: str) -> None:
        self.unknown_procedures.get(endpoint, set()).discard(procedure)

    async def deliver(self, request: Request) -> JSONResponse:
        endpoint = request.path_params["endpoint"]
        if endpoint not in ENDPOINTS:
            return JSONResponse({"error": "unknown endpoint"}, status_code=404)
        message_id = request.headers.get("x-message-id", "")
        self.attempts[message_id] += 1
        if endpoint in self.flaky and self.attempts[message_id] <= self.transient_failures:
            return JSONResponse({"error": "he thong dang ban"}, status_code=503)
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"error": "invalid JSON"}, status_code=400)
        dossier = payload.get("dossier") or {}
        if dossier.get("procedure_code") in self.unknown_procedures.get(endpoint, set()):
            self.rejected[endpoint] += 1
            return JSONResponse(
                {"error": f"Thủ tục {dossier.get('procedure_code')} chưa được khai báo trên {endpoint}"},
                status_code=422,
            )
        if not any(a.message_id == message_id for a in self.arrivals):
            self.arrivals.append(
                Arrival(
                    endpoint=endpoint,
                    message_id=message_id,
                    dossier_code=request.headers.get("x-dossier-code", ""),
                    kind=request.headers.get("x-message-kind", ""),
                    revision=int(payload.get("revision", 0)),
                    attempt=int(request.headers.get("x-attempt", "0") or 0),
                )
            )
        return JSONResponse({"ok": True}, headers={"X-Receipt-Id": f"{endpoint}-{len(self.arrivals)}"})

    def asgi(self) -> Starlette:
        return Starlette(routes=[Route("/{endpoint}/deliver", self.deliver, methods=["POST"])])


# --- context and steps ------------------------------------------------------------------------


@dataclass
class SampleDossier:
    """One sample dossier and where the demo takes it (statuses after receipt)."""

    owner: str
    id_number: str
    phone: str
    procedure_code: str
    procedure_name: str
    path: list[DossierStatus]
    code: str = ""


def sample_dossiers() -> list[SampleDossier]:
    s = DossierStatus
    return [
        SampleDossier(
            "Nguyễn Văn An",
            "037099001234",
            "0912345678",
            "1.003901.H42",
            "Cấp Giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm",
            [s.PROCESSING, s.SUPPLEMENT_REQUESTED, s.PROCESSING, s.FINISHED, s.RETURNED],
        ),
        SampleDossier(
            "Trần Thị Bích Ngọc",
            "037185004321",
            "0987654321",
            "1.001822.H42",
            "Cấp giấy phép vận chuyển thuốc bảo vệ thực vật",
            [s.PROCESSING, s.FINISHED],
        ),
        SampleDossier(
            "Lê Hoàng Phúc",
            "035201007788",
            "0369123456",
            "2.001641.H42",
            "Cấp giấy chứng nhận đủ điều kiện buôn bán phân bón",
            [s.PROCESSING, s.FINISHED, s.RETURNED],
        ),
        SampleDossier(
            "Phạm Thị Thu Hà",
            "036190002468",
            "0834567890",
            "1.004650.H42",
            "Công nhận cây đầu dòng cây công nghiệp, cây ăn quả lâu năm",
            [s.REFUSED],
        ),
    ]


@dataclass
class DemoContext:
    settings: Settings
    db: Database
    api: httpx.AsyncClient
    portal: StandInPortal
    echo: Echo
    dossiers: list[SampleDossier] = field(default_factory=list)
    worker_running: bool = False
    dlq: Any = None
    """The DLQ service module (``hub.dlq.service``) when installed."""
    replayed: set[str] = field(default_factory=set)
    blocked_seen: int = 0
    skipped: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


StepFunction = Callable[[DemoContext], Awaitable[None]]


@dataclass(frozen=True)
class DemoStep:
    title: str
    run: StepFunction


class StepSkipped(Exception):
    """Raised by a step whose prerequisite is missing; the reason is printed."""


async def _post(ctx: DemoContext, path: str, **kwargs: Any) -> dict[str, Any]:
    response = await ctx.api.post(path, **kwargs)
    if response.status_code >= 300:
        raise RuntimeError(f"POST {path}: HTTP {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


async def feed_dossiers(ctx: DemoContext) -> None:
    """Receive the sample dossiers and move them along the procedure through the intake API."""
    today = now_vn().date()
    start = now_vn().replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=3)
    for sample in ctx.dossiers:
        allocated = await _post(ctx, "/api/v1/dossier-codes", json={"agency_code": AGENCY, "day": str(today)})
        sample.code = allocated["code"]
        dossier = {
            "code": sample.code,
            "agency_code": AGENCY,
            "procedure_code": sample.procedure_code,
            "procedure_name": sample.procedure_name,
            "processing_agency": "Trung tâm Phục vụ hành chính công tỉnh Ninh Bình",
            "owner": {"name": sample.owner, "id_number": sample.id_number},
            "contact": {"phone": sample.phone, "address": "Phường Hoa Lư, tỉnh Ninh Bình"},
            "summary": sample.procedure_name,
            "received_at": start.isoformat(),
            "due_at": (start + timedelta(days=7)).isoformat(),
            "status": DossierStatus.RECEIVED.value,
        }
        await _post(ctx, "/api/v1/dossiers", json={"dossier": dossier, "version": 1})
        at = start
        for status in sample.path:
            at += timedelta(hours=5)
            change: dict[str, Any] = {
                "status": status.value,
                "at": at.isoformat(),
                "handler": "Đinh Thị Lan",
                "position": "Chuyên viên",
                "department": "Phòng Quản lý chất lượng",
            }
            if status is DossierStatus.SUPPLEMENT_REQUESTED:
                change["reason"] = "Bổ sung bản sao Giấy chứng nhận đăng ký hộ kinh doanh"
                change["new_due_at"] = (start + timedelta(days=9)).isoformat()
            if status is DossierStatus.REFUSED:
                change["reason"] = "Hồ sơ không thuộc thẩm quyền giải quyết của Sở"
            if status is DossierStatus.FINISHED:
                await _post(
                    ctx,
                    f"/api/v1/dossiers/{sample.code}/results/upload",
                    files={"file": ("giay-chung-nhan.pdf", _sample_pdf(sample), "application/pdf")},
                    data={"name": "Giấy chứng nhận", "result_code": f"GCN-{sample.code[-4:]}"},
                )
            await _post(
                ctx,
                f"/api/v1/dossiers/{sample.code}/status",
                json=change,
                headers={"Idempotency-Key": f"demo-{sample.code}-{status.value}-{at:%H%M}"},
            )
        ctx.echo(
            f"  {sample.code}  {sample.owner:20} {sample.procedure_code:14} → {sample.path[-1].label_vi}"
        )


def _sample_pdf(sample: SampleDossier) -> bytes:
    text = f"Giay chung nhan {sample.code}".encode()
    return b"%PDF-1.4\n% demo result\n" + text + b"\n%%EOF\n"


def _counts(db: Database) -> dict[str, int]:
    with db.sessions() as session:
        rows = session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all()
    return {state: count for state, count in rows}


async def wait_until_settled(ctx: DemoContext, *, within: float = 90.0) -> dict[str, int]:
    """Wait until no message is pending or in flight, except those held behind a dead one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        counts = await asyncio.to_thread(_counts, ctx.db)
        active = counts.get(MessageState.IN_FLIGHT.value, 0) + await asyncio.to_thread(_runnable, ctx.db)
        if active == 0 or loop.time() > deadline:
            return counts
        await asyncio.sleep(0.2)


def _runnable(db: Database) -> int:
    """Pending messages not held back by a dead message of the same dossier and endpoint."""
    with db.sessions() as session:
        rows = session.execute(
            select(OutboxMessage.endpoint, OutboxMessage.ordering_key, OutboxMessage.state).order_by(
                OutboxMessage.seq
            )
        ).all()
    dead: set[tuple[str, str]] = set()
    runnable = 0
    for endpoint, key, state in rows:
        if state == MessageState.DEAD.value:
            dead.add((endpoint, key))
        elif state == MessageState.PENDING.value and (endpoint, key) not in dead:
            runnable += 1
    return runnable


async def deliver(ctx: DemoContext) -> None:
    """Let the worker deliver; transient 503s are retried, the refused procedure dead-letters."""
    if not ctx.worker_running:
        raise StepSkipped("hub.delivery is not installed: messages stay in the outbox")
    counts = await wait_until_settled(ctx)
    held = await asyncio.to_thread(_blocked, ctx.db)
    ctx.blocked_seen = held
    retried = sum(ctx.portal.attempts.values()) - len({a.message_id for a in ctx.portal.arrivals})
    ctx.echo(
        f"  delivered={counts.get('delivered', 0)} dead={counts.get('dead', 0)} "
        f"blocked behind a dead letter={held}; the portal refused {retried} attempt(s) "
        f"(503 on first attempts to {', '.join(sorted(ctx.portal.flaky))}, "
        f"422 x{sum(ctx.portal.rejected.values())})"
    )


def _blocked(db: Database) -> int:
    with db.sessions() as session:
        rows = session.execute(
            select(OutboxMessage.endpoint, OutboxMessage.ordering_key, OutboxMessage.state).order_by(
                OutboxMessage.seq
            )
        ).all()
    dead: set[tuple[str, str]] = set()
    blocked = 0
    for endpoint, key, state in rows:
        if state == MessageState.DEAD.value:
            dead.add((endpoint, key))
        elif state == MessageState.PENDING.value and (endpoint, key) in dead:
            blocked += 1
    return blocked


async def replay_dead_letters(ctx: DemoContext) -> None:
    """The technician configures the procedure on the provincial platform and replays the DLQ."""
    if not ctx.worker_running:
        raise StepSkipped("no worker, nothing was dead-lettered")
    if ctx.dlq is None:
        raise StepSkipped("hub.dlq is not installed: dead letters cannot be replayed")
    from hub.dlq.models import DlqFilter

    dead = await asyncio.to_thread(ctx.dlq.list_messages, ctx.db, DlqFilter())
    if not dead:
        ctx.echo("  no dead letters")
        return
    for procedures in ctx.portal.unknown_procedures.values():
        procedures.clear()
    for message in dead:
        await asyncio.to_thread(
            ctx.dlq.retry_message,
            ctx.db,
            message.seq,
            actor="demo-technician",
            reason="thủ tục đã được khai báo trên LGSP",
        )
        ctx.replayed.add(message.message_id)
        ctx.echo(f"  replayed {message.endpoint} {message.dossier_code} ({message.error_class})")
    await wait_until_settled(ctx)


async def check_results(ctx: DemoContext) -> None:
    """Every message delivered; per dossier and endpoint, arrivals in outbox order."""
    if not ctx.worker_running:
        raise StepSkipped("no worker: delivery not checked")
    with ctx.db.sessions() as session:
        rows = session.execute(
            select(
                OutboxMessage.endpoint,
                OutboxMessage.dossier_code,
                OutboxMessage.message_id,
                OutboxMessage.state,
            ).order_by(OutboxMessage.seq)
        ).all()
    undelivered = [r for r in rows if r.state != MessageState.DELIVERED.value]
    if undelivered:
        ctx.failures.append(f"{len(undelivered)} message(s) not delivered")
    expected: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        expected[(row.endpoint, row.dossier_code or "")].append(row.message_id)
    arrived: dict[tuple[str, str], list[str]] = defaultdict(list)
    for arrival in ctx.portal.arrivals:
        arrived[(arrival.endpoint, arrival.dossier_code)].append(arrival.message_id)
    for key, ids in expected.items():
        if arrived.get(key, []) != ids:
            ctx.failures.append(f"order broken for {key[1]} on {key[0]}")
    ctx.echo(
        f"  {len(rows) - len(undelivered)}/{len(rows)} delivered; "
        f"per-dossier order checked on {len(expected)} queues"
    )


DEFAULT_STEPS: tuple[DemoStep, ...] = (
    DemoStep("Tiếp nhận và xử lý hồ sơ mẫu / feed sample dossiers", feed_dossiers),
    DemoStep("Gửi lên cổng (thử lại khi lỗi) / deliver with retries", deliver),
    DemoStep("Phát lại hàng đợi lỗi / replay the dead-letter queue", replay_dead_letters),
    DemoStep("Kiểm tra / checks", check_results),
)


# --- summary ----------------------------------------------------------------------------------


@dataclass
class SummaryRow:
    code: str
    owner: str
    status: str
    endpoint: str
    messages: int
    delivered: int
    attempts: int
    retries: int
    replayed: int
    in_order: bool


def summary_rows(ctx: DemoContext) -> list[SummaryRow]:
    with ctx.db.sessions() as session:
        messages = session.execute(
            select(
                OutboxMessage.seq,
                OutboxMessage.endpoint,
                OutboxMessage.dossier_code,
                OutboxMessage.message_id,
                OutboxMessage.state,
            ).order_by(OutboxMessage.seq)
        ).all()
        attempt_counts = dict(
            session.execute(
                select(DeliveryAttempt.message_seq, func.count()).group_by(DeliveryAttempt.message_seq)
            ).all()
        )
    arrived: dict[tuple[str, str], list[str]] = defaultdict(list)
    for arrival in ctx.portal.arrivals:
        arrived[(arrival.endpoint, arrival.dossier_code)].append(arrival.message_id)
    rows: list[SummaryRow] = []
    for sample in ctx.dossiers:
        status = sample.path[-1].label_vi if sample.path else DossierStatus.RECEIVED.label_vi
        for endpoint in ENDPOINTS:
            mine = [m for m in messages if m.dossier_code == sample.code and m.endpoint == endpoint]
            attempts = sum(attempt_counts.get(m.seq, 0) for m in mine)
            delivered = sum(1 for m in mine if m.state == MessageState.DELIVERED.value)
            rows.append(
                SummaryRow(
                    code=sample.code,
                    owner=sample.owner,
                    status=status,
                    endpoint=endpoint,
                    messages=len(mine),
                    delivered=delivered,
                    attempts=attempts,
                    retries=max(0, attempts - len(mine)),
                    replayed=sum(1 for m in mine if m.message_id in ctx.replayed),
                    in_order=arrived.get((endpoint, sample.code), []) == [m.message_id for m in mine],
                )
            )
    return rows


def render_summary(rows: Sequence[SummaryRow]) -> str:
    header = (
        f"{'Mã hồ sơ':27} {'Chủ hồ sơ':20} {'Trạng thái':24} {'Đầu nhận':11} "
        f"{'Tin':>3} {'Đã gửi':>6} {'Lần gửi':>7} {'Thử lại':>7} {'Phát lại':>8} {'Thứ tự':6}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.code:27} {r.owner:20} {r.status:24} {r.endpoint:11} {r.messages:>3} {r.delivered:>6} "
            f"{r.attempts:>7} {r.retries:>7} {r.replayed:>8} {'đúng' if r.in_order else 'SAI':6}"
        )
    total = sum(r.messages for r in rows)
    done = sum(r.delivered for r in rows)
    lines.append("-" * len(header))
    lines.append(
        f"TOTAL messages={total} delivered={done} retries={sum(r.retries for r in rows)} "
        f"replayed={sum(r.replayed for r in rows)}"
    )
    return "\n".join(lines)


# --- running ----------------------------------------------------------------------------------


def prepare_directory(directory: Path) -> None:
    """Empty a previous demo directory (only one this command created, marked by ``.hub-demo``)."""
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise ConfigurationError(
                f"{directory} is not empty and was not created by 'hub demo'; choose another --dir",
                message_vi=f"thư mục {directory} không trống; hãy chọn thư mục khác",
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("created by hub demo; emptied on the next run\n")


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {exc.strerror}; use --port",
            message_vi=f"không mở được cổng {host}:{port}",
        ) from None
    return sock


def demo_settings(directory: Path, api_port: int, portal_port: int) -> Settings:
    fast_retry = {
        "schedule_seconds": [0.3, 0.6, 1.0, 2.0],
        "jitter_ratio": 0.1,
        "retry_after_min_seconds": 0.1,
    }
    breaker = {"failure_threshold": 100, "open_seconds": 1}
    portal = f"http://127.0.0.1:{portal_port}"
    return load_settings(
        database_url=f"sqlite:///{(directory / 'hub.db').resolve()}",
        data_dir=directory,
        log_level="WARNING",
        api={"host": "127.0.0.1", "port": api_port, "public_base_url": f"http://127.0.0.1:{api_port}"},
        worker={"poll_interval_seconds": 0.1, "concurrency": 16},
        endpoints={
            name: {
                "kind": "webhook",
                "url": f"{portal}/{name}/deliver",
                "retry": fast_retry,
                "breaker": breaker,
            }
            for name in ENDPOINTS
        },
        routing=[{"kinds": ["dossier.sync", "dossier.progress"], "endpoints": list(ENDPOINTS)}],
    )


def _optional(module: str) -> Any:
    try:
        if importlib.util.find_spec(module) is None:
            return None
    except ModuleNotFoundError:
        return None
    return importlib.import_module(module)


async def _until_signalled(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Wait for SIGINT/SIGTERM (or a server stopping on its own)."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    waiter = asyncio.create_task(stopped.wait())
    try:
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def run_demo(
    directory: Path,
    *,
    port: int = 8080,
    keep_running: bool = False,
    echo: Echo = print,
    steps: Sequence[DemoStep] = DEFAULT_STEPS,
) -> int:
    """Run the demo; returns the exit status (0 when every check passed)."""
    prepare_directory(directory)
    api_sock = bind("127.0.0.1", port)
    portal_sock = bind("127.0.0.1", 0)
    api_port, portal_port = api_sock.getsockname()[1], portal_sock.getsockname()[1]
    settings = demo_settings(directory, api_port, portal_port)
    await asyncio.to_thread(upgrade, settings.database_url)
    db = Database.connect(settings.database_url)
    delivery = _optional("hub.delivery")
    portal = StandInPortal(unknown_procedures={"lgsp-tinh": {"2.001641.H42"}})
    stop = asyncio.Event()
    servers: list[uvicorn.Server] = []
    tasks: list[asyncio.Task[Any]] = []
    try:
        token = ApiKeyService(db).create("demo-source", "source", actor="hub demo").token
        app = create_app(settings, db)
        for asgi, sock in ((portal.asgi(), portal_sock), (app, api_sock)):
            server = uvicorn.Server(uvicorn.Config(asgi, log_config=None, access_log=False, lifespan="on"))
            # One process, two servers: Ctrl-C is handled by asyncio.run, not by each server.
            server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
            servers.append(server)
            tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        while not all(s.started for s in servers):
            if any(t.done() for t in tasks):
                raise ConfigurationError("the demo servers did not start")
            await asyncio.sleep(0.02)
        base = f"http://127.0.0.1:{api_port}"
        echo(f"hub demo: API {base}/api/v1/docs  (database {settings.database_url})")
        if delivery is not None and hasattr(delivery, "run_worker"):
            tasks.append(asyncio.create_task(delivery.run_worker(settings, db, stop), name="worker"))
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as api:
            ctx = DemoContext(settings=settings, db=db, api=api, portal=portal, echo=echo)
            ctx.dossiers = sample_dossiers()
            ctx.worker_running = delivery is not None and hasattr(delivery, "run_worker")
            ctx.dlq = _optional("hub.dlq.service")
            for number, step in enumerate(steps, 1):
                echo(f"[{number}/{len(steps)}] {step.title}")
                try:
                    await step.run(ctx)
                except StepSkipped as exc:
                    ctx.skipped.append(f"{step.title}: {exc}")
                    echo(f"  skipped: {exc}")
            echo("")
            echo(render_summary(summary_rows(ctx)))
            for note in ctx.skipped:
                echo(f"SKIPPED {note}")
            for failure in ctx.failures:
                echo(f"FAILED {failure}")
            status = 1 if ctx.failures else 0
            echo("RESULT: " + ("OK, every message delivered or replayed" if status == 0 else "FAILED"))
            if ctx.dossiers:
                first = ctx.dossiers[0]
                echo(f"Tra cứu / lookup: {base}/tra-cuu?MHS={first.code}&SGT={first.id_number}")
            echo(f"source API key (demo only): {token}")
        if keep_running:
            echo("API still running; press Ctrl-C to stop.")
            await _until_signalled([t for t in tasks if t.get_name() != "worker"])
        return status
    finally:
        stop.set()
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        db.dispose()
