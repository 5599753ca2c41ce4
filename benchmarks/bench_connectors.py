"""Connector throughput: deliveries per second through a real connector to a simulator that runs
in a separate process, with N concurrent deliveries, plus a cProfile of the hub side.

Usage::

    .venv/bin/python benchmarks/bench_connectors.py                 # every case
    .venv/bin/python benchmarks/bench_connectors.py --case dvcqg-json -n 3000 -c 64
    .venv/bin/python benchmarks/bench_connectors.py --profile-top 20

Adding a case (e.g. the LGSP SOAP connector): write ``async def bench_x(opts: BenchOptions) ->
CaseResult`` that starts its simulator with :func:`start_process`, drives deliveries with
:func:`drive`, and register it with ``@case("name")``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.base import Connector, Delivery  # noqa: E402
from schemas.dossier import Channel, Dossier, Owner, ProcessingStep  # noqa: E402
from schemas.messages import DossierProgressPayload, DossierSyncPayload  # noqa: E402
from schemas.status import DossierStatus  # noqa: E402
from schemas.timefmt import VN_TZ  # noqa: E402


@dataclass
class BenchOptions:
    deliveries: int
    concurrency: int
    profile_top: int


@dataclass
class CaseResult:
    name: str
    deliveries: int
    concurrency: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    profile: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds if self.seconds else 0.0

    def lines(self) -> list[str]:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0.0

        return [
            f"case {self.name}: {self.deliveries} deliveries, concurrency {self.concurrency}",
            f"  throughput   {self.rate:8.1f} deliveries/s  ({self.seconds:.2f} s, {self.errors} errors)",
            f"  latency ms   p50 {pct(0.50):.1f}  p90 {pct(0.90):.1f}  p99 {pct(0.99):.1f}"
            f"  mean {statistics.fmean(lat) if lat else 0:.1f}",
            *(f"  note: {n}" for n in self.notes),
        ]


CASES: dict[str, Callable[[BenchOptions], Coroutine[Any, Any, CaseResult]]] = {}


def case(
    name: str,
) -> Callable[
    [Callable[[BenchOptions], Coroutine[Any, Any, CaseResult]]],
    Callable[[BenchOptions], Coroutine[Any, Any, CaseResult]],
]:
    def register(
        fn: Callable[[BenchOptions], Coroutine[Any, Any, CaseResult]],
    ) -> Callable[[BenchOptions], Coroutine[Any, Any, CaseResult]]:
        CASES[name] = fn
        return fn

    return register


# --- shared helpers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def start_process(args: list[str], ready_marker: str, timeout: float = 30) -> Iterator[subprocess.Popen[str]]:
    """Run a simulator in its own process until its stdout shows ``ready_marker``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env
    )
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if ready_marker in line:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"simulator exited early: {line}")
    else:
        proc.kill()
        raise RuntimeError("simulator did not start")
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


async def drive(
    connector: Connector, deliveries: list[Delivery], concurrency: int
) -> tuple[float, list[float], int]:
    """Deliver everything with at most ``concurrency`` in flight; wall time, latencies, errors."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors = 0

    async def one(delivery: Delivery) -> None:
        nonlocal errors
        async with gate:
            started = time.perf_counter()
            try:
                await connector.deliver(delivery)
            except Exception as exc:  # noqa: BLE001  counted and reported, the run goes on
                errors += 1
                if errors <= 3:
                    print(f"  error: {type(exc).__name__}: {exc}", file=sys.stderr)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one(d) for d in deliveries))
    return time.perf_counter() - started, latencies, errors


def profiled(top: int) -> tuple[cProfile.Profile, Callable[[], str]]:
    profile = cProfile.Profile()

    def report() -> str:
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out).strip_dirs().sort_stats("tottime")
        stats.print_stats(top)
        return out.getvalue()

    return profile, report


T0 = datetime(2025, 6, 12, 8, 5, tzinfo=VN_TZ)


def sample_dossier(n: int) -> Dossier:
    return Dossier(
        code=f"000.00.18.H42-250612-{n:05d}",
        agency_code="000.00.18.H42",
        procedure_code="1.003901.H42",
        procedure_name="Cấp giấy chứng nhận cơ sở đủ điều kiện",
        field_code="NN-TT",
        field_name="Trồng trọt",
        channel=Channel.ONLINE,
        owner=Owner(name="Nguyễn Thị Hoà", id_number="037190001234"),
        summary="Đề nghị cấp giấy chứng nhận cơ sở đủ điều kiện sản xuất giống cây trồng",
        status=DossierStatus.PROCESSING,
        received_at=T0,
        due_at=T0 + timedelta(days=10),
        processing_agency="Sở Nông nghiệp và Môi trường tỉnh Ninh Bình",
    )


# --- DVCQG JSON -----------------------------------------------------------------------------


def _sync_delivery(n: int) -> Delivery:
    payload = DossierSyncPayload(dossier=sample_dossier(n), revision=1).model_dump(mode="json")
    return Delivery(f"m-{n}", "dvcqg", "dossier.sync", payload)


def _progress_delivery(n: int) -> Delivery:
    steps = [
        ProcessingStep(
            handler="Cán bộ thụ lý",
            at=T0 + timedelta(hours=i),
            content="Thẩm định",
            status=DossierStatus.PROCESSING,
        )
        for i in range(10)
    ]
    dossier = sample_dossier(n)
    payload = DossierProgressPayload(dossier_code=dossier.code, steps=steps, dossier=dossier, revision=2)
    return Delivery(f"p-{n}", "dvcqg", "dossier.progress", payload.model_dump(mode="json"))


def _http_client(transport: str, concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(30, connect=5)
    if transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return httpx.AsyncClient(transport=AiohttpTransport(limits=limits), timeout=timeout)
    return httpx.AsyncClient(limits=limits, timeout=timeout)


async def _bench_dvcqg(opts: BenchOptions, transport: str) -> CaseResult:
    """``dossier.sync`` (DongBoHoSoMC create) through DvcqgConnector to the DVCQG simulator."""
    from connectors.dvcqg import build_dvcqg_connector
    from hub.config import EndpointSettings

    name = f"dvcqg-json ({transport} transport)"
    port = free_port()
    command = [sys.executable, "-m", "hub.commands.simulate_dvcqg", "--port", str(port)]
    with start_process(command, "simulator listening"):
        settings = EndpointSettings.model_validate(
            {
                "kind": "dvcqg",
                "url": f"http://127.0.0.1:{port}/apiDVC-GPLX/tcdbdvcdata",
                "username": "hub",
                "password": "hub-secret",
                "options": {"madonvi": "000.00.18.H42"},
            }
        )
        async with _http_client(transport, opts.concurrency) as http:
            connector = build_dvcqg_connector("dvcqg", settings, http)
            await connector.deliver(_sync_delivery(0))  # warm-up: login + one record
            n = opts.deliveries
            cpu = time.process_time()
            seconds, latencies, errors = await drive(
                connector, [_sync_delivery(i) for i in range(1, n + 1)], opts.concurrency
            )
            cpu_ms = (time.process_time() - cpu) * 1000 / n
            progress = [_progress_delivery(i) for i in range(1, min(n, 1000) + 1)]
            p_seconds, _, p_errors = await drive(connector, progress, opts.concurrency)
            # a separate, smaller profiled run: cProfile slows everything down several times
            profile, report = profiled(opts.profile_top)
            sample = [_sync_delivery(i) for i in range(n + 1, n + 1 + max(200, n // 4))]
            profile.enable()
            await drive(connector, sample, opts.concurrency)
            profile.disable()
            logins = connector.client.login_count
            await connector.aclose()
    result = CaseResult(name, n, opts.concurrency, seconds, latencies, errors)
    result.profile = report()
    result.notes.append(
        f"progress (CapNhatTienDoHoSoMC, 10 steps each): {len(progress) / p_seconds:.1f} deliveries/s,"
        f" {p_errors} errors"
    )
    result.notes.append(f"hub CPU {cpu_ms:.3f} ms per delivery (time.process_time)")
    result.notes.append(f"logins during the run: {logins}; profile over {len(sample)} extra deliveries")
    return result


@case("dvcqg-json")
async def bench_dvcqg(opts: BenchOptions) -> CaseResult:
    return await _bench_dvcqg(opts, "httpcore")


@case("dvcqg-json-aiohttp")
async def bench_dvcqg_aiohttp(opts: BenchOptions) -> CaseResult:
    return await _bench_dvcqg(opts, "aiohttp")


# --- LGSP: SOAP (zeep) and REST (JSON) ---------------------------------------------------------
# (fuller breakdown, CPU per side and the serialisation share: benchmarks/bench_soap.py)


async def _bench_lgsp(opts: BenchOptions, flavour: str) -> CaseResult:
    """``dossier.sync`` through the LGSP connector to ``hub simulate lgsp`` in its own process.

    SOAP requests are XSD-validated (libxml2) and their UsernameToken digest checked by the
    simulator; REST bodies are checked with the wire models (``--rest-validation model``).
    """
    from connectors.lgsp import build_lgsp_rest_connector, build_lgsp_soap_connector
    from hub.config import EndpointSettings

    port = free_port()
    command = [sys.executable, "-m", "hub.commands.simulate_lgsp", "--port", str(port)]
    with start_process([*command, "--rest-validation", "model"], '"soap11"'):
        base = f"http://127.0.0.1:{port}"
        async with _http_client("aiohttp", opts.concurrency) as http:
            connector: Connector
            if flavour == "rest":
                settings = EndpointSettings.model_validate(
                    {
                        "kind": "lgsp_rest",
                        "url": base,
                        "client_id": "hub-client",
                        "client_secret": "hub-client-secret",
                    }
                )
                connector = build_lgsp_rest_connector("lgsp", settings, http)
            else:
                settings = EndpointSettings.model_validate(
                    {
                        "kind": "lgsp_soap",
                        "url": f"{base}/lgsp/soap{flavour.replace('.', '')}",
                        "username": "hub",
                        "password": "hub-secret",
                        "options": {"soap_version": flavour},
                    }
                )
                connector = build_lgsp_soap_connector("lgsp", settings, http)
            await connector.deliver(_sync_delivery(0))  # warm-up (token / first connection)
            n = opts.deliveries
            cpu = time.process_time()
            seconds, latencies, errors = await drive(
                connector, [_sync_delivery(i) for i in range(1, n + 1)], opts.concurrency
            )
            cpu_ms = (time.process_time() - cpu) * 1000 / n
            profile, report = profiled(opts.profile_top)
            sample = [_sync_delivery(i) for i in range(n + 1, n + 1 + max(200, n // 4))]
            profile.enable()
            await drive(connector, sample, opts.concurrency)
            profile.disable()
            await connector.aclose()
    label = "REST JSON" if flavour == "rest" else f"SOAP {flavour} zeep"
    result = CaseResult(f"lgsp ({label}, aiohttp transport)", n, opts.concurrency, seconds, latencies, errors)
    result.profile = report()
    result.notes.append(f"hub CPU {cpu_ms:.3f} ms per delivery (time.process_time)")
    return result


@case("lgsp-soap11")
async def bench_lgsp_soap11(opts: BenchOptions) -> CaseResult:
    return await _bench_lgsp(opts, "1.1")


@case("lgsp-soap12")
async def bench_lgsp_soap12(opts: BenchOptions) -> CaseResult:
    return await _bench_lgsp(opts, "1.2")


@case("lgsp-rest")
async def bench_lgsp_rest(opts: BenchOptions) -> CaseResult:
    return await _bench_lgsp(opts, "rest")


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="case(s) to run; default all")
    parser.add_argument("-n", "--deliveries", type=int, default=2000)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--profile-top", type=int, default=15)
    args = parser.parse_args()
    opts = BenchOptions(args.deliveries, args.concurrency, args.profile_top)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; simulator in a separate process")
    for name in args.case or sorted(CASES):
        result = asyncio.run(CASES[name](opts))
        print("\n".join(result.lines()))
        if result.profile:
            print(f"  where the hub-side time goes (cProfile, top {opts.profile_top} by own time):")
            print("\n".join("    " + line for line in result.profile.strip().splitlines()))


if __name__ == "__main__":
    main()
