"""LGSP SOAP connector throughput against the JSON paths, simulator in a separate process.

Cases (all ``dossier.sync``, N deliveries, C in flight, the hub's aiohttp-backed httpx client):

* ``lgsp-soap11`` / ``lgsp-soap12``: :class:`LgspSoapConnector` (zeep) → ``hub simulate lgsp``
  (XSD validation with libxml2, WS-Security digest check, per request);
* ``lgsp-rest``: :class:`LgspRestConnector` (JSON, OAuth2) → the same simulator process;
* ``dvcqg-json``: the DVCQG JSON connector → ``hub simulate dvcqg`` (another helper's path).

Besides wall-clock throughput it reports CPU milliseconds per delivery on each side (hub
process via ``time.process_time``, simulator process via ``/proc/<pid>/stat``), the cost of
zeep serialisation alone (``build_envelope``), and a cProfile of the hub side.

Usage::

    .venv/bin/python benchmarks/bench_soap.py                       # every case, n=2000, c=32
    .venv/bin/python benchmarks/bench_soap.py --case lgsp-soap11 -n 3000 -c 64 --profile-top 20
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.base import Connector, Delivery  # noqa: E402
from hub.config import EndpointSettings  # noqa: E402
from schemas.dossier import Channel, Dossier, Owner  # noqa: E402
from schemas.messages import DossierSyncPayload  # noqa: E402
from schemas.status import DossierStatus  # noqa: E402
from schemas.timefmt import VN_TZ  # noqa: E402

T0 = datetime(2025, 6, 12, 8, 5, tzinfo=VN_TZ)
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    deliveries: int
    concurrency: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    hub_cpu_ms: float
    server_cpu_ms: float
    notes: list[str] = field(default_factory=list)
    profile: str = ""

    def lines(self) -> list[str]:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0.0

        return [
            f"case {self.name}: {self.deliveries} deliveries, concurrency {self.concurrency}",
            f"  throughput   {self.deliveries / self.seconds:8.1f} deliveries/s"
            f"  ({self.seconds:.2f} s, {self.errors} errors)",
            f"  latency ms   p50 {pct(0.5):.1f}  p90 {pct(0.9):.1f}  p99 {pct(0.99):.1f}"
            f"  mean {statistics.fmean(lat) if lat else 0:.1f}",
            f"  CPU ms/delivery  hub {self.hub_cpu_ms / self.deliveries:.3f}"
            f"  simulator {self.server_cpu_ms / self.deliveries:.3f}",
            *(f"  note: {n}" for n in self.notes),
        ]


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


def sync_delivery(n: int, endpoint: str) -> Delivery:
    payload = DossierSyncPayload(dossier=sample_dossier(n), revision=1).model_dump(mode="json")
    return Delivery(f"m-{n}", endpoint, "dossier.sync", payload)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / CLK_TCK


@contextmanager
def simulator_process(args: list[str], ready: str) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if ready in line:
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


def http_client(concurrency: int) -> httpx.AsyncClient:
    from connectors.http import build_http_client

    return build_http_client(max_connections=concurrency)


async def measure(
    name: str,
    connector: Connector,
    endpoint: str,
    server_pid: int,
    n: int,
    concurrency: int,
    profile_top: int,
) -> Result:
    await drive(connector, [sync_delivery(90000 + i, endpoint) for i in range(1, 51)], concurrency)  # warm-up
    deliveries = [sync_delivery(i, endpoint) for i in range(1, n + 1)]
    server_before, hub_before = process_cpu_ms(server_pid), time.process_time()
    seconds, latencies, errors = await drive(connector, deliveries, concurrency)
    hub_cpu = (time.process_time() - hub_before) * 1000
    server_cpu = process_cpu_ms(server_pid) - server_before
    result = Result(name, n, concurrency, seconds, latencies, errors, hub_cpu, server_cpu)
    if profile_top:
        profile = cProfile.Profile()
        sample = [sync_delivery(n + i, endpoint) for i in range(1, max(200, n // 4) + 1)]
        profile.enable()
        await drive(connector, sample, concurrency)
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).strip_dirs().sort_stats("tottime").print_stats(profile_top)
        result.profile = out.getvalue()
    return result


def zeep_serialisation_ms(connector: Any, endpoint: str, rounds: int = 500) -> tuple[float, float]:
    """Mean ms per message for the mapping and for zeep's envelope build alone."""
    from connectors.lgsp.mapping import to_sync_document

    dossier = sample_dossier(1)
    started = time.perf_counter()
    for _ in range(rounds):
        body = {"Document": to_sync_document(dossier).model_dump(exclude_none=True)}
    mapped = time.perf_counter()
    for i in range(rounds):
        connector.client.build_envelope("sync", body, f"s-{i}")
    built = time.perf_counter()
    return (mapped - started) * 1000 / rounds, (built - mapped) * 1000 / rounds


Case = Callable[[argparse.Namespace], Awaitable[Result]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[name] = fn
        return fn

    return register


def _lgsp_command(port: int) -> list[str]:
    # REST bodies checked with the pydantic wire models: xmlschema (the simulator's default)
    # costs about 2 ms per record and would make the simulator the bottleneck of the JSON case.
    return [
        sys.executable,
        "-m",
        "hub.commands.simulate_lgsp",
        "--port",
        str(port),
        "--rest-validation",
        "model",
    ]


async def _soap(args: argparse.Namespace, version: str) -> Result:
    from connectors.lgsp import build_lgsp_soap_connector

    port = free_port()
    with simulator_process(_lgsp_command(port), '"soap11"') as proc:
        settings = EndpointSettings.model_validate(
            {
                "kind": "lgsp_soap",
                "url": f"http://127.0.0.1:{port}/lgsp/soap{version.replace('.', '')}",
                "username": "hub",
                "password": "hub-secret",
                "options": {"soap_version": version},
            }
        )
        async with http_client(args.concurrency) as http:
            connector = build_lgsp_soap_connector("lgsp", settings, http)
            result = await measure(
                f"lgsp-soap{version.replace('.', '')} (zeep)",
                connector,
                "lgsp",
                proc.pid,
                args.deliveries,
                args.concurrency,
                args.profile_top,
            )
            mapping_ms, zeep_ms = zeep_serialisation_ms(connector, "lgsp")
    hub_ms = result.hub_cpu_ms / result.deliveries
    result.notes.append(
        f"of the hub's {hub_ms:.3f} ms: mapping {mapping_ms:.3f} ms, zeep envelope build"
        f" (incl. UsernameToken digest) {zeep_ms:.3f} ms ({100 * zeep_ms / hub_ms:.0f}%),"
        f" the rest is HTTP client + zeep reply parsing + asyncio"
    )
    return result


@case("lgsp-soap11")
async def bench_soap11(args: argparse.Namespace) -> Result:
    return await _soap(args, "1.1")


@case("lgsp-soap12")
async def bench_soap12(args: argparse.Namespace) -> Result:
    return await _soap(args, "1.2")


@case("lgsp-rest")
async def bench_rest(args: argparse.Namespace) -> Result:
    from connectors.lgsp import build_lgsp_rest_connector

    port = free_port()
    with simulator_process(_lgsp_command(port), '"soap11"') as proc:
        settings = EndpointSettings.model_validate(
            {
                "kind": "lgsp_rest",
                "url": f"http://127.0.0.1:{port}",
                "client_id": "hub-client",
                "client_secret": "hub-client-secret",
            }
        )
        async with http_client(args.concurrency) as http:
            connector = build_lgsp_rest_connector("lgsp-rest", settings, http)
            result = await measure(
                "lgsp-rest (JSON)",
                connector,
                "lgsp",
                proc.pid,
                args.deliveries,
                args.concurrency,
                args.profile_top,
            )
            result.notes.append(f"tokens fetched: {connector.client.auth.fetch_count}")
    return result


@case("dvcqg-json")
async def bench_dvcqg(args: argparse.Namespace) -> Result:
    from connectors.dvcqg import build_dvcqg_connector

    port = free_port()
    command = [sys.executable, "-m", "hub.commands.simulate_dvcqg", "--port", str(port)]
    with simulator_process(command, "simulator listening") as proc:
        settings = EndpointSettings.model_validate(
            {
                "kind": "dvcqg",
                "url": f"http://127.0.0.1:{port}/apiDVC-GPLX/tcdbdvcdata",
                "username": "hub",
                "password": "hub-secret",
                "options": {"madonvi": "000.00.18.H42"},
            }
        )
        async with http_client(args.concurrency) as http:
            connector = build_dvcqg_connector("dvcqg", settings, http)
            result = await measure(
                "dvcqg-json (DVCQG simulator)",
                connector,
                "dvcqg",
                proc.pid,
                args.deliveries,
                args.concurrency,
                args.profile_top,
            )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="case(s); default all")
    parser.add_argument("-n", "--deliveries", type=int, default=2000)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--profile-top", type=int, default=0, help="print a hub-side cProfile (top N)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; simulators in separate processes")
    results: dict[str, Result] = {}
    for name in args.case or ["lgsp-soap11", "lgsp-soap12", "lgsp-rest", "dvcqg-json"]:
        results[name] = asyncio.run(CASES[name](args))
        print("\n".join(results[name].lines()))
        if results[name].profile:
            print(f"  hub-side cProfile (top {args.profile_top} by own time):")
            print("\n".join("    " + line for line in results[name].profile.strip().splitlines()))
    if "lgsp-rest" in results:
        base = results["lgsp-rest"]
        for name in ("lgsp-soap11", "lgsp-soap12"):
            if name in results:
                soap = results[name]
                print(
                    json.dumps(
                        {
                            "compare": f"{name} vs lgsp-rest",
                            "hub_cpu_ratio": round(
                                (soap.hub_cpu_ms / soap.deliveries) / (base.hub_cpu_ms / base.deliveries), 2
                            ),
                            "wall_per_message_ratio": round(
                                (soap.seconds / soap.deliveries) / (base.seconds / base.deliveries), 2
                            ),
                        }
                    )
                )


if __name__ == "__main__":
    main()
