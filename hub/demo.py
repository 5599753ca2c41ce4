"""``hub demo``: the whole hub on one machine, end to end, in well under a minute.

Everything is real and on loopback: a fresh SQLite database in the demo directory, the API,
the delivery worker, the **DVCQG simulator** (REST JSON adapter, docs/portal.md §3), the
**LGSP simulator** over **SOAP 1.2** (WS-Security, WS-Addressing, XSD-validated, §4) and the
**test PKI** (OCSP, CRL and an RFC 3161 TSA shaped like the Government PKI). As a sequence of
:class:`DemoStep` s:

1. sample Ninh Bình dossiers (agency ``000.00.18.H42``) go through the intake API along the
   one-stop procedure (§2.2): received → processing → supplement with re-dating (Mẫu 02) →
   processing → finished → returned. The first dossier's result paper is issued per Decree
   30/2020 — the competent person "Nguyễn Thị Lấp Lánh" signs (blue signature image, PAdES
   B-T, DocMDP P=2), the register's number and the issue date are written in
   (``01/GCN-SNNMT``, "Ninh Bình, ngày …"), then the agency seal (B-LTA, over the left
   third) — with the keys configured in ``[signing.keys]``, stored, and attached as
   ``DanhSachGiayToKetQua`` with the hub's download URL (:mod:`hub.services.results`);
2. the hub's verifier (``POST /api/v1/verification``) checks the signed paper (Circular
   15/2025 §2.3.4 verdict, in Vietnamese);
3. the worker delivers while the simulators misbehave: DVCQG expires the session once,
   answers 503 with ``Retry-After`` and drops a connection; LGSP answers a SOAP Receiver
   fault and a 429. One dossier uses a procedure code the portal no longer lists (re-announced
   under a new national code): a permanent rejection, dead-lettered, its later messages held;
4. the technician maps the old code to the new one (``procedure_map``), restarts the worker and
   replays the dead letter through the DLQ service;
5. the result URL the DVCQG simulator received is fetched over HTTP;
6. a summary from the database: per dossier and endpoint messages / delivered / retries /
   replayed, per endpoint the dead letters, the signature verdict and the result URL.

Then the console: the demo's technician account (:data:`TECHNICIAN`, a random password nobody
sees) and the console's address are printed; unless ``--exit``, the hub keeps serving and a
one-time sign-in link for that account is printed (valid once, 10 minutes, audited; served by
this hub only: :mod:`hub.accounts.signin_links`) until Ctrl-C.

The hub itself (API and delivery worker) is started by :mod:`hub.runtime`, as ``hub serve``
starts it. The demo narrates and does not judge: what it claims is checked by
``tests/cli/test_demo.py``, which runs ``hub demo --exit`` and reads the database it leaves.
The exit status is 1 only when a step could not be carried out (an error).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import shutil
import socket
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from hub import runtime
from hub.accounts.signin_links import SignInLinks
from hub.auth.keys import ApiKeyService, Principal
from hub.config import Settings, load_settings
from hub.console.signin_link import install_sign_in_links
from hub.db.migrate import upgrade
from hub.db.models import ApiRole, DeliveryAttempt, MessageState, OutboxMessage
from hub.db.session import Database
from hub.services.results import ResultSigningService, SignedResult
from hub.simulators.dvcqg import DvcqgFault, DvcqgSimulator, SimulatorConfig
from hub.simulators.faults import FaultKind
from hub.simulators.lgsp import LgspFault, LgspSimulator
from hub.simulators.pki import RunningPki, serve_test_pki
from schemas.errors import ConfigurationError, HubError
from schemas.masking import mask_pii
from schemas.status import DossierStatus
from schemas.timefmt import now_vn
from signing.report import render_report
from signing.samples import sample_pdf, sample_seal_png, sample_signature_png
from signing.verification import VerificationReport

MARKER = ".hub-demo"
AGENCY = "000.00.18.H42"
DVCQG = "cong-dvcqg"
LGSP = "lgsp-tinh"
ENDPOINTS = (DVCQG, LGSP)
#: Environment variable the demo's ``[signing.keys]`` name for the test PKI's PKCS#12 password.
PASSWORD_ENV = "HUB_DEMO_P12_PASSWORD"
#: Who signs the result paper: the competent person with her own key, then the clerk (văn thư)
#: with the agency seal key (API key names listed on the keys, docs/signing.md §10.5).
OFFICER = Principal("demo-lanh-ntl", ApiRole.OFFICER)
CLERK = Principal("demo-van-thu", ApiRole.CLERK)
#: A procedure re-announced under a new national code (the portal lists only the new one).
OLD_PROCEDURE, NEW_NATIONAL_PROCEDURE = "1.000105.H42", "1.001029"
SIM_USER, SIM_PASSWORD = "hub", "hub-secret"  # the local simulators' demo login
#: The console account the demo makes and signs in with a one-time link (docs/console.md).
TECHNICIAN, TECHNICIAN_NAME = "demo-kythuat", "Kỹ thuật viên demo"
Echo = Callable[[str], None]


# --- sample data ----------------------------------------------------------------------------


@dataclass
class SampleDossier:
    """One sample dossier and where the demo takes it (statuses after receipt)."""

    owner: str
    id_number: str
    phone: str
    procedure_code: str
    procedure_name: str
    path: list[DossierStatus]
    sign_result: bool = False
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
            sign_result=True,
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
            OLD_PROCEDURE,
            "Phê duyệt phương án bảo vệ đập, hồ chứa nước thủy lợi",
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


# --- context and steps ------------------------------------------------------------------------


@dataclass
class Simulators:
    dvcqg: DvcqgSimulator
    lgsp: LgspSimulator
    pki: RunningPki


@dataclass
class DemoContext:
    """What the steps share: the running hub (API and worker), API clients, the simulators."""

    hub: runtime.RunningHub
    api: httpx.AsyncClient
    officer_api: httpx.AsyncClient
    sims: Simulators
    echo: Echo
    directory: Path
    dossiers: list[SampleDossier] = field(default_factory=list)
    signed: SignedResult | None = None
    report: VerificationReport | None = None
    fetched_sha256: str | None = None
    result_url: str | None = None
    replayed: set[str] = field(default_factory=set)

    @property
    def settings(self) -> Settings:
        return self.hub.settings

    @property
    def db(self) -> Database:
        return self.hub.db

    @property
    def results(self) -> ResultSigningService:
        """The hub's result signing service (configured by :func:`demo_settings`)."""
        app = self.hub.app
        service = app.state.services.results if app is not None else None
        if not isinstance(service, ResultSigningService):
            raise RuntimeError("the result signing service is not configured")
        return service


StepFunction = Callable[[DemoContext], Awaitable[None]]


@dataclass(frozen=True)
class DemoStep:
    title: str
    run: StepFunction


async def _post(client: httpx.AsyncClient, path: str, **kwargs: Any) -> dict[str, Any]:
    response = await client.post(path, **kwargs)
    if response.status_code >= 300:
        raise RuntimeError(f"POST {path}: HTTP {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


async def feed_dossiers(ctx: DemoContext) -> None:
    """Receive the sample dossiers and move them along the procedure through the intake API."""
    today = now_vn().date()
    start = now_vn().replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=3)
    for sample in ctx.dossiers:
        allocated = await _post(
            ctx.api, "/api/v1/dossier-codes", json={"agency_code": AGENCY, "day": str(today)}
        )
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
        await _post(ctx.api, "/api/v1/dossiers", json={"dossier": dossier, "version": 1})
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
                if sample.sign_result:
                    await sign_result(ctx, sample)
                else:
                    await _post(
                        ctx.api,
                        f"/api/v1/dossiers/{sample.code}/results/upload",
                        files={"file": ("giay-phep.pdf", _draft_pdf(sample), "application/pdf")},
                        data={"name": "Giấy phép", "result_code": f"GP-{sample.code[-4:]}"},
                    )
            await _post(
                ctx.api,
                f"/api/v1/dossiers/{sample.code}/status",
                json=change,
                headers={"Idempotency-Key": f"demo-{sample.code}-{status.value}-{at:%H%M}"},
            )
        ctx.echo(
            f"  {sample.code}  {sample.owner:20} {sample.procedure_code:14} → {sample.path[-1].label_vi}"
        )


def _draft_pdf(sample: SampleDossier) -> bytes:
    return sample_pdf(f"GIAY CHUNG NHAN {sample.code}")


async def sign_result(ctx: DemoContext, sample: SampleDossier) -> None:
    """The officer signs with their key; the clerk issues the paper: the register's number and
    today's date are written into its number and date places, then the agency seal goes on,
    and the paper is stored and attached (hub.services.results; Decree 30/2020 Art. 14, 15,
    17, 32(2), 33(2))."""
    files = ctx.results.files
    draft = await asyncio.to_thread(
        files.save,
        _draft_pdf(sample),
        filename="giay-chung-nhan-attp.pdf",
        media_type="application/pdf",
        dossier_code=sample.code,
    )
    try:
        approved = await ctx.results.asign_personal(OFFICER, sample.code, draft.id)
        signed = await ctx.results.aissue_and_attach(
            CLERK,
            sample.code,
            approved.file_id,
            name="Giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm",
            result_code=f"GCN-{sample.code[-4:]}",
        )
    except HubError as exc:
        ctx.echo(f"  KÝ SỐ THẤT BẠI / signing failed: {exc.message_vi}")
        raise
    ctx.signed = signed
    personal, agency = approved.signature, signed.signatures[0]
    number = signed.document_number
    ctx.echo(
        f"  ký số / signed {sample.code}: {_cn(personal.subject)} ({personal.level.value}, chữ ký cá nhân)"
    )
    ctx.echo(f"  cấp số / numbered: Số {number.symbol} — {number.date_line}")
    ctx.echo(f"  đóng dấu / sealed: {_cn(agency.subject)} ({agency.level.value}, con dấu)")
    ctx.echo(f"  đính kèm / attached: {signed.download_url}  SHA-256 {signed.sha256[:16]}…")


def _cn(subject: str | None) -> str:
    """The common name out of a certificate subject string."""
    if not subject:
        return "?"
    for part in subject.split(","):
        name, _, value = part.strip().partition(":")
        if name.strip() in ("Common Name", "CN"):
            return value.strip()
    return subject


async def verify_result(ctx: DemoContext) -> None:
    """The hub's verifier (Circular 15/2025 §2.3.4) on the signed result paper."""
    if ctx.signed is None:
        ctx.echo("  no signed result paper to verify")
        return
    _info, path = await asyncio.to_thread(ctx.results.files.get, ctx.signed.file_id)
    data = await asyncio.to_thread(path.read_bytes)
    response = await ctx.officer_api.post(
        "/api/v1/verification",
        files={"file": ("giay-chung-nhan-attp.signed.pdf", data, "application/pdf")},
    )
    if response.status_code != 200:
        raise RuntimeError(f"verification answered HTTP {response.status_code}: {response.text[:200]}")
    report = VerificationReport.model_validate(response.json())
    ctx.report = report
    text = render_report(report, lang="vi").splitlines()
    verdict_line = next(
        (line for line in text if line.startswith("Kết luận")), f"Kết luận: {report.verdict_vi}"
    )
    ctx.echo(f"  {verdict_line}")
    for sig in report.signatures:
        ctx.echo(f"    chữ ký {sig.index}: {sig.signer_name} — {sig.verdict_vi} ({sig.pades_level.value})")
        if sig.modifications.filled_fields:
            filled = ", ".join(sig.modifications.filled_fields)
            ctx.echo(f"      điền sau chữ ký (được phép) / filled after it (permitted): {filled}")


@dataclass(frozen=True)
class QueueSnapshot:
    """The outbox at one instant: states, and pending messages runnable or held behind a dead one."""

    counts: dict[str, int]
    runnable: int
    held: int

    @property
    def settled(self) -> bool:
        return self.counts.get(MessageState.IN_FLIGHT.value, 0) + self.runnable == 0


def queue_snapshot(db: Database) -> QueueSnapshot:
    """One consistent read (a claim between two reads could hide a message in flight)."""
    from hub.outbox.queue import blocked_by

    with db.sessions() as session:
        rows = session.execute(select(OutboxMessage.state, blocked_by(OutboxMessage))).all()
    counts: dict[str, int] = defaultdict(int)
    runnable = held = 0
    for state, dead_ahead in rows:
        counts[state] += 1
        if state == MessageState.PENDING.value:
            if dead_ahead is None:
                runnable += 1
            else:
                held += 1
    return QueueSnapshot(dict(counts), runnable, held)


async def wait_until_settled(ctx: DemoContext, *, within: float = 45.0) -> QueueSnapshot:
    """Wait until no message is pending or in flight, except those held behind a dead one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        snapshot = await asyncio.to_thread(queue_snapshot, ctx.db)
        if snapshot.settled:
            return snapshot
        if loop.time() > deadline:
            ctx.echo(f"  still delivering after {within:.0f} s: {snapshot.counts}")
            return snapshot
        await asyncio.sleep(0.2)


async def deliver(ctx: DemoContext) -> None:
    """Let the worker deliver through the faults; the unknown procedure dead-letters."""
    snapshot = await wait_until_settled(ctx)
    stats = await asyncio.to_thread(endpoint_stats, ctx)
    ctx.echo(
        f"  delivered={snapshot.counts.get('delivered', 0)} dead={snapshot.counts.get('dead', 0)} "
        f"held behind a dead letter={snapshot.held}; "
        + "; ".join(f"{s.endpoint}: {s.retries} retries" for s in stats)
    )
    ctx.echo(
        f"  DVCQG logins={ctx.sims.dvcqg.login_count} (session expired once → re-login); "
        f"redeliveries de-duplicated by X-Message-Id={_deduplicated(ctx)}"
    )


async def fix_and_replay(ctx: DemoContext) -> None:
    """The technician maps the old procedure code to its new national code and replays the DLQ."""
    from hub.dlq.models import DlqFilter
    from hub.dlq.service import list_messages, retry_message

    dead = await asyncio.to_thread(list_messages, ctx.db, DlqFilter())
    for message in dead:
        ctx.echo(f"  dead letter: {message.endpoint} {message.dossier_code} ({message.error_class})")
    fixed = demo_settings(
        ctx.directory,
        ctx.settings.api.port,
        ctx.sims,
        procedure_map={OLD_PROCEDURE: NEW_NATIONAL_PROCEDURE},
    )
    await ctx.hub.restart_worker(fixed)
    ctx.echo(
        f"  fix: endpoints.{DVCQG}.options.procedure_map = {{'{OLD_PROCEDURE}': '{NEW_NATIONAL_PROCEDURE}'}}"
        " (thủ tục được công bố lại với mã mới); worker restarted"
    )
    for message in dead:
        await asyncio.to_thread(
            retry_message,
            ctx.db,
            message.seq,
            actor="demo-technician",
            reason=f"đã ánh xạ mã thủ tục {OLD_PROCEDURE} sang {NEW_NATIONAL_PROCEDURE}",
        )
        ctx.replayed.add(message.message_id)
        ctx.echo(f"  replayed {message.endpoint} {message.dossier_code}")
    await wait_until_settled(ctx)


async def fetch_result(ctx: DemoContext) -> None:
    """Fetch the result URL the DVCQG simulator received, as the portal would."""
    signed = ctx.signed
    if signed is None:
        ctx.echo("  no signed result paper was attached")
        return
    record = ctx.sims.dvcqg.record(signed.dossier_code) or {}
    urls = [r.get("DuongDanTepTinKetQua", "") for r in record.get("DanhSachGiayToKetQua", [])]
    ctx.echo(f"  DVCQG {signed.dossier_code} DanhSachGiayToKetQua: {', '.join(urls) or '(none)'}")
    if not urls:
        return
    ctx.result_url = urls[-1]
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(ctx.result_url)
    response.raise_for_status()
    ctx.fetched_sha256 = hashlib.sha256(response.content).hexdigest()
    ctx.echo(
        f"  GET {ctx.result_url}: {len(response.content)} bytes, SHA-256 {ctx.fetched_sha256[:16]}… "
        f"(attached as {signed.sha256[:16]}…)"
    )


def _outbox(db: Database) -> list[Any]:
    with db.sessions() as session:
        return list(
            session.execute(
                select(
                    OutboxMessage.seq,
                    OutboxMessage.endpoint,
                    OutboxMessage.dossier_code,
                    OutboxMessage.message_id,
                    OutboxMessage.state,
                ).order_by(OutboxMessage.seq)
            ).all()
        )


def _retried_errors(db: Database) -> dict[str, list[str]]:
    """Error classes of the attempts that were scheduled for a retry, per endpoint."""
    with db.sessions() as session:
        rows = session.execute(
            select(OutboxMessage.endpoint, DeliveryAttempt.error_class)
            .join(OutboxMessage, OutboxMessage.seq == DeliveryAttempt.message_seq)
            .where(DeliveryAttempt.outcome == "retry")
        ).all()
    errors: dict[str, list[str]] = {name: [] for name in ENDPOINTS}
    for endpoint, error_class in rows:
        errors.setdefault(endpoint, []).append(error_class or "?")
    return errors


def _deduplicated(ctx: DemoContext) -> int:
    """Redeliveries the DVCQG simulator recognised by ``X-Message-Id`` and answered from memory."""
    return sum(1 for entry in ctx.sims.dvcqg.requests() if entry.outcome == "replayed")


def _attempts(db: Database) -> list[Any]:
    with db.sessions() as session:
        return list(session.execute(select(DeliveryAttempt.message_seq, DeliveryAttempt.outcome)).all())


DEFAULT_STEPS: tuple[DemoStep, ...] = (
    DemoStep("Tiếp nhận, xử lý và ký số kết quả / feed sample dossiers, sign a result", feed_dossiers),
    DemoStep("Kiểm tra chữ ký số / verify the signed result", verify_result),
    DemoStep("Gửi lên DVCQG và LGSP (có sự cố) / deliver through faults", deliver),
    DemoStep("Sửa cấu hình, phát lại hàng đợi lỗi / fix and replay the DLQ", fix_and_replay),
    DemoStep("Tải kết quả theo đường dẫn / fetch the result URL", fetch_result),
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


@dataclass
class EndpointStats:
    endpoint: str
    kind: str
    messages: int
    delivered: int
    attempts: int
    retries: int
    dead_lettered: int
    replayed: int


def endpoint_stats(ctx: DemoContext) -> list[EndpointStats]:
    rows = _outbox(ctx.db)
    attempts = _attempts(ctx.db)
    endpoint_of = {r.seq: r.endpoint for r in rows}
    stats: list[EndpointStats] = []
    for name in ENDPOINTS:
        mine = [r for r in rows if r.endpoint == name]
        tries = [a for a in attempts if endpoint_of.get(a.message_seq) == name]
        stats.append(
            EndpointStats(
                endpoint=name,
                kind=ctx.settings.endpoints[name].kind.value,
                messages=len(mine),
                delivered=sum(1 for r in mine if r.state == MessageState.DELIVERED.value),
                attempts=len(tries),
                retries=sum(1 for a in tries if a.outcome == "retry"),
                dead_lettered=sum(1 for a in tries if a.outcome == "dead"),
                replayed=sum(1 for r in mine if r.message_id in ctx.replayed),
            )
        )
    return stats


def summary_rows(ctx: DemoContext) -> list[SummaryRow]:
    rows = _outbox(ctx.db)
    attempts = _attempts(ctx.db)
    per_message: dict[int, int] = defaultdict(int)
    for attempt in attempts:
        per_message[attempt.message_seq] += 1
    out: list[SummaryRow] = []
    for sample in ctx.dossiers:
        status = sample.path[-1].label_vi if sample.path else DossierStatus.RECEIVED.label_vi
        for endpoint in ENDPOINTS:
            mine = [m for m in rows if m.dossier_code == sample.code and m.endpoint == endpoint]
            tries = sum(per_message[m.seq] for m in mine)
            out.append(
                SummaryRow(
                    code=sample.code,
                    owner=sample.owner,
                    status=status,
                    endpoint=endpoint,
                    messages=len(mine),
                    delivered=sum(1 for m in mine if m.state == MessageState.DELIVERED.value),
                    attempts=tries,
                    retries=max(0, tries - len(mine)),
                    replayed=sum(1 for m in mine if m.message_id in ctx.replayed),
                )
            )
    return out


def render_summary(rows: Sequence[SummaryRow]) -> str:
    header = (
        f"{'Mã hồ sơ':27} {'Chủ hồ sơ':20} {'Trạng thái':24} {'Đầu nhận':11} "
        f"{'Tin':>3} {'Đã gửi':>6} {'Lần gửi':>7} {'Thử lại':>7} {'Phát lại':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.code:27} {r.owner:20} {r.status:24} {r.endpoint:11} {r.messages:>3} {r.delivered:>6} "
            f"{r.attempts:>7} {r.retries:>7} {r.replayed:>8}"
        )
    total = sum(r.messages for r in rows)
    done = sum(r.delivered for r in rows)
    lines.append("-" * len(header))
    lines.append(
        f"TOTAL messages={total} delivered={done} retries={sum(r.retries for r in rows)} "
        f"replayed={sum(r.replayed for r in rows)}"
    )
    return "\n".join(lines)


def render_endpoints(stats: Sequence[EndpointStats]) -> str:
    """One ``ENDPOINT`` line per endpoint (stable ``key=value`` fields)."""
    return "\n".join(
        f"ENDPOINT {s.endpoint} kind={s.kind} messages={s.messages} delivered={s.delivered} "
        f"attempts={s.attempts} retries={s.retries} dead_lettered={s.dead_lettered} "
        f"replayed={s.replayed}"
        for s in stats
    )


def render_signing(ctx: DemoContext) -> list[str]:
    lines: list[str] = []
    report = ctx.report
    if report is not None:
        signers = "; ".join(f"{s.signer_name} ({s.verdict_vi})" for s in report.signatures)
        lines.append(
            f'SIGNATURE verdict={report.verdict.value} verdict_vi="{report.verdict_vi}" '
            f"signatures={report.signature_count} — {signers}"
        )
    else:
        lines.append("SIGNATURE verdict=none")
    signed = ctx.signed
    if signed is not None:
        lines.append(
            f"RESULT_URL {ctx.result_url or signed.download_url} sha256={signed.sha256} "
            f"fetched_sha256={ctx.fetched_sha256 or '-'}"
        )
    return lines


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


def write_images(directory: Path) -> dict[str, Path]:
    """The officer's blue signature PNG and the agency's red seal PNG (generated samples)."""
    folder = directory / "images"
    folder.mkdir(exist_ok=True)
    paths = {"officer": folder / "chu-ky-nguyen-thi-lap-lanh.png", "agency": folder / "con-dau-so-nnmt.png"}
    paths["officer"].write_bytes(sample_signature_png())
    paths["agency"].write_bytes(sample_seal_png())
    return paths


def _demo_key(purpose: str, holder: Principal, p12: Path, image: Path) -> dict[str, Any]:
    """A demo signing key: a PKCS#12 file of the test PKI, opened with the demo password
    (``PASSWORD_ENV``), bound to the one principal who may use it."""
    return {
        "kind": "pkcs12",
        "purpose": purpose,
        "principals": [holder.name],
        "path": str(p12),
        "password_env": PASSWORD_ENV,
        "image_path": str(image),
    }


def demo_settings(
    directory: Path, api_port: int, sims: Simulators, *, procedure_map: dict[str, str] | None = None
) -> Settings:
    """Short retry schedules so the demo converges in seconds; real connectors to the simulators."""
    fast_retry = {
        "schedule_seconds": [0.3, 0.6, 1.0, 2.0],
        "jitter_ratio": 0.1,
        "retry_after_min_seconds": 0.1,
        "retry_after_max_seconds": 2,
        "throttle_min_seconds": 0.5,
    }
    breaker = {"failure_threshold": 100, "open_seconds": 1}
    pki = sims.pki.pki
    images = directory / "images"
    return load_settings(
        database_url=f"sqlite:///{(directory / 'hub.db').resolve()}",
        data_dir=directory,
        log_level="WARNING",
        api={"host": "127.0.0.1", "port": api_port, "public_base_url": f"http://127.0.0.1:{api_port}"},
        worker={"poll_interval_seconds": 0.1, "concurrency": 16, "shutdown_grace_seconds": 5},
        # plain HTTP on loopback: cookies without Secure (never so in production, docs/security.md §10)
        console={"secure_cookies": False},
        endpoints={
            DVCQG: {
                "kind": "dvcqg",
                "url": sims.dvcqg.adapter_url,
                "username": SIM_USER,
                "password": SIM_PASSWORD,
                "timeout_seconds": 10,
                "retry": fast_retry,
                "breaker": breaker,
                "options": {
                    "madonvi": AGENCY,
                    "login_backoff_seconds": 0.1,
                    "procedure_map": procedure_map or {},
                },
            },
            LGSP: {
                "kind": "lgsp_soap",
                "url": sims.lgsp.soap12_url,
                "username": SIM_USER,
                "password": SIM_PASSWORD,
                "timeout_seconds": 10,
                "retry": fast_retry,
                "breaker": breaker,
                "options": {"soap_version": "1.2"},
            },
        },
        routing=[{"kinds": ["dossier.sync", "dossier.progress"], "endpoints": list(ENDPOINTS)}],
        signing={
            "trust_anchor_paths": [str(path) for path in pki.trusted_anchor_files],
            # the test PKI's loopback services; never in the defaults (docs/signing.md §12)
            "revocation_fetch": {"allowed_hosts": [pki.service_host]},
            "tsa_url": sims.pki.tsa_url,
            "tsa_timeout_seconds": 20,
            "keys": {
                "lanh-ntl": _demo_key(
                    "personal", OFFICER, pki.officer_p12, images / "chu-ky-nguyen-thi-lap-lanh.png"
                ),
                "so-nnmt": _demo_key("seal", CLERK, pki.agency_p12, images / "con-dau-so-nnmt.png"),
            },
            "result_officer_key": "lanh-ntl",
            "result_agency_key": "so-nnmt",
            "issuance": {"agency_abbreviation": "SNNMT", "place": "Ninh Bình", "document_type": "GCN"},
        },
    )


def inject_faults(sims: Simulators) -> list[str]:
    """Misbehaviour for the worker to ride out; each fault fires once."""
    dvcqg, lgsp = sims.dvcqg, sims.lgsp
    dvcqg.faults.add(kind=DvcqgFault.EXPIRE_SESSION, operation="DongBoHoSoMC")
    dvcqg.faults.add(kind=FaultKind.STATUS, operation="DongBoHoSoMC", status=503, retry_after="1")
    dvcqg.faults.add(kind=FaultKind.DROP_AFTER, operation="CapNhatTienDoHoSoMC")
    lgsp.faults.add(kind=LgspFault.SOAP_SERVER_FAULT, operation="SyncDocument")
    lgsp.faults.add(kind=FaultKind.STATUS, status=429, retry_after="1")
    return [
        "DVCQG: phiên hết hạn / session expired ×1, HTTP 503 Retry-After: 1 ×1, "
        "mất kết nối sau khi đã lưu / connection dropped after storing ×1",
        "LGSP (SOAP 1.2): SOAP Receiver fault ×1, HTTP 429 Retry-After: 1 ×1",
        f"DVCQG: thủ tục {OLD_PROCEDURE} không còn trong danh mục (lỗi vĩnh viễn → hàng đợi lỗi)",
    ]


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


async def run_demo(
    directory: Path,
    *,
    port: int = 8080,
    keep_running: bool = False,
    echo: Echo = print,
    steps: Sequence[DemoStep] = DEFAULT_STEPS,
) -> int:
    """Run the demo; returns the exit status (1 when a step could not be carried out)."""
    prepare_directory(directory)
    try:
        api_sock = runtime.listen("127.0.0.1", port)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc.message}; use --port", message_vi=exc.message_vi) from None
    with contextlib.ExitStack() as stack:
        stack.callback(api_sock.close)
        pki = stack.enter_context(serve_test_pki(directory / "pki"))
        stack.enter_context(_environment(PASSWORD_ENV, pki.pki.p12_password))
        lgsp = LgspSimulator(username=SIM_USER, password=SIM_PASSWORD).start()
        stack.callback(lgsp.stop)
        dvcqg = DvcqgSimulator(SimulatorConfig(username=SIM_USER, password=SIM_PASSWORD, madonvi=AGENCY))
        await dvcqg.start_async()
        try:
            sims = Simulators(dvcqg=dvcqg, lgsp=lgsp, pki=pki)
            return await _run(directory, api_sock, sims, keep_running, echo, steps)
        finally:
            await dvcqg.stop_async()
    raise AssertionError("unreachable")  # pragma: no cover - the with block always returns


async def _run(
    directory: Path,
    api_sock: socket.socket,
    sims: Simulators,
    keep_running: bool,
    echo: Echo,
    steps: Sequence[DemoStep],
) -> int:
    write_images(directory)
    settings = demo_settings(directory, api_sock.getsockname()[1], sims)
    await asyncio.to_thread(upgrade, settings.database_url)
    # The hub as ``hub serve`` runs it: API on the demo's socket and the delivery worker.
    async with runtime.start(settings, sock=api_sock, access_log=False) as hub:
        keys = ApiKeyService(hub.db)
        token = keys.create("demo-source", "source", actor="hub demo", agency_codes=[AGENCY]).token
        officer_token = keys.create(OFFICER.name, OFFICER.role, actor="hub demo").token
        keys.create(CLERK.name, CLERK.role, actor="hub demo")
        links = await asyncio.to_thread(demo_technician, hub)
        base = hub.base_url
        echo(f"hub demo: API {base}/api/v1/docs  (database {settings.database_url})")
        echo(f"  DVCQG simulator {sims.dvcqg.adapter_url} (REST JSON, kind=dvcqg)")
        echo(f"  LGSP simulator  {sims.lgsp.soap12_url} (SOAP 1.2, kind=lgsp_soap)")
        echo(f"  test PKI        {sims.pki.base_url} (OCSP, CRL, TSA)")
        for line in inject_faults(sims):
            echo(f"  sự cố / fault: {line}")
        errors: list[str] = []
        async with (
            httpx.AsyncClient(base_url=base or "", headers=_bearer(token), timeout=60) as api,
            httpx.AsyncClient(base_url=base or "", headers=_bearer(officer_token), timeout=60) as officer_api,
        ):
            ctx = DemoContext(
                hub=hub, api=api, officer_api=officer_api, sims=sims, echo=echo, directory=directory
            )
            ctx.dossiers = sample_dossiers()
            for number, step in enumerate(steps, 1):
                echo(f"[{number}/{len(steps)}] {step.title}")
                try:
                    await step.run(ctx)
                except (HubError, httpx.HTTPError, RuntimeError) as exc:
                    errors.append(f"{step.title}: {exc}")
                    echo(f"  FAILED: {exc}")
            echo("")
            echo(render_summary(await asyncio.to_thread(summary_rows, ctx)))
            echo("")
            echo("Theo đầu nhận / per endpoint (thử lại = retries, hàng đợi lỗi = dead_lettered):")
            echo(render_endpoints(await asyncio.to_thread(endpoint_stats, ctx)))
            echo("Chữ ký số và đường dẫn kết quả / signature and result URL:")
            for line in render_signing(ctx):
                echo(line)
            if ctx.dossiers and ctx.dossiers[0].code:
                first = ctx.dossiers[0]
                # The page asks for the owner's ID number; the console never shows it in clear.
                echo(
                    f"Tra cứu / lookup: {base}/tra-cuu?MHS={first.code} "
                    f"(số giấy tờ chủ hồ sơ / owner's ID: {mask_pii(first.id_number)})"
                )
            echo(f"source API key (demo only): {token}")
        status = 1 if errors else 0
        if errors:
            echo(f"{len(errors)} step(s) FAILED; see above")
        echo(f"Bảng điều khiển / console: {base}/console/  (kỹ thuật viên / technician: {TECHNICIAN})")
        if keep_running:
            sign_in = await asyncio.to_thread(links.issue, TECHNICIAN, actor="hub demo")
            minutes = links.valid_seconds // 60
            echo(
                f"Đăng nhập một lần / one-time sign-in ({minutes} phút, một lần / {minutes} min, once): "
                f"{base}/console/login/once/{sign_in}"
            )
            echo("API, worker, simulators and test PKI still running; press Ctrl-C to stop.")
            await runtime.until_signalled(hub)
        return status
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns


def demo_technician(hub: runtime.RunningHub) -> SignInLinks:
    """The demo's technician account (a random password nobody sees) and the one-time sign-in
    links that open its console session, served by this hub only (hub.accounts.signin_links)."""
    assert hub.app is not None
    console = hub.app.state.console
    console.accounts.create(
        TECHNICIAN,
        TECHNICIAN_NAME,
        secrets.token_urlsafe(24),
        ["technician"],
        actor="hub demo",
        unit="Trung tâm Phục vụ hành chính công tỉnh Ninh Bình",
    )
    links = SignInLinks(hub.db, console.accounts)
    install_sign_in_links(hub.app, links)
    return links


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
