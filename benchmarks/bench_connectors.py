"""Connector throughput and per-message cost: real connectors against simulators in their own process.

Every case sends ``dossier.sync`` N times with C deliveries in flight through a real connector
to a simulator started as a separate process on a free loopback port:

* ``dvcqg-json``: DVCQG JSON connector on httpx's own (httpcore) pool → ``hub simulate dvcqg``;
* ``dvcqg-json-aiohttp``: the same on the hub's aiohttp-backed client
  (:func:`connectors.http.build_http_client`, the production default);
* ``lgsp-soap11`` / ``lgsp-soap12``: :class:`LgspSoapConnector` (zeep) → ``hub simulate lgsp``
  (the simulator XSD-validates each request with libxml2 and checks the UsernameToken digest);
* ``lgsp-rest``: :class:`LgspRestConnector` (JSON, OAuth2) → the same LGSP simulator
  (bodies checked with the pydantic wire models, ``--rest-validation model``).

All LGSP cases use the aiohttp-backed client. Each case prints deliveries/s, latency
percentiles, CPU milliseconds per delivery in the hub process (``time.process_time``) and in
the simulator process (``/proc/<pid>/stat``); the SOAP cases add the cost of the mapping and of
zeep's envelope build alone; the DVCQG cases add ``dossier.progress`` (CapNhatTienDoHoSoMC)
throughput. ``--profile-top N`` adds a cProfile of the hub side over a separate, smaller run
(cProfile slows everything down several times). A summary table closes the output, then the
SOAP-vs-JSON per-message cost ratios (hub CPU per delivery and wall-clock per message of the
SOAP cases divided by those of ``dvcqg-json-aiohttp``).

Usage::

    .venv/bin/python -m benchmarks.bench_connectors                  # every case, n=2000, c=32
    .venv/bin/python -m benchmarks.bench_connectors --case dvcqg-json-aiohttp --case lgsp-soap11
    .venv/bin/python -m benchmarks.bench_connectors --case lgsp-soap12 -n 3000 -c 64 --profile-top 20
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
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from connectors.base import Connector, Delivery
from connectors.http import HubHttpClient, TransportKind, build_http_client
from connectors.settings import EndpointSettings
from schemas.dossier import Dossier, ProcessingStep
from schemas.messages import DossierProgressPayload, DossierSyncPayload
from schemas.status import DossierStatus
from tests.connectors.dvcqg.dvcqg_samples import T0, plain_dossier

ROOT = Path(__file__).resolve().parent.parent

CLK_TCK = os.sysconf("SC_CLK_TCK")
WARM_UP = 50
#: Baseline of the SOAP-vs-JSON ratio: the DVCQG JSON path on the production HTTP client.
JSON_BASELINE = "dvcqg-json-aiohttp"
SOAP_CASES = ("lgsp-soap11", "lgsp-soap12")


@dataclass(frozen=True)
class BenchOptions:
    deliveries: int
    concurrency: int
    profile_top: int


@dataclass
class CaseResult:
    name: str
    description: str
    deliveries: int
    concurrency: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    hub_cpu_ms: float
    simulator_cpu_ms: float
    notes: list[str] = field(default_factory=list)
    profile: str = ""

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds if self.seconds else 0.0

    @property
    def wall_ms_per_message(self) -> float:
        return self.seconds * 1000 / self.deliveries

    @property
    def hub_cpu_per_delivery(self) -> float:
        return self.hub_cpu_ms / self.deliveries

    @property
    def simulator_cpu_per_delivery(self) -> float:
        return self.simulator_cpu_ms / self.deliveries

    def percentile(self, p: float) -> float:
        lat = sorted(self.latencies_ms)
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0.0

    def lines(self) -> list[str]:
        mean = statistics.fmean(self.latencies_ms) if self.latencies_ms else 0.0
        return [
            f"case {self.name} ({self.description}): {self.deliveries} deliveries,"
            f" concurrency {self.concurrency}",
            f"  throughput       {self.rate:8.1f} deliveries/s  ({self.seconds:.2f} s, {self.errors} errors)",
            f"  latency ms       p50 {self.percentile(0.5):.1f}  p90 {self.percentile(0.9):.1f}"
            f"  p99 {self.percentile(0.99):.1f}  mean {mean:.1f}",
            f"  CPU ms/delivery  hub {self.hub_cpu_per_delivery:.3f}"
            f"  simulator {self.simulator_cpu_per_delivery:.3f}",
            *(f"  note: {n}" for n in self.notes),
        ]


Case = Callable[[BenchOptions], Coroutine[Any, Any, CaseResult]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    """Register a case under ``name`` (default run order = registration order)."""

    def register(fn: Case) -> Case:
        CASES[name] = fn
        return fn

    return register


# --- processes, ports, CPU --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu_ms(pid: int) -> float:
    """User + system CPU of ``pid`` so far (fields 14 and 15 of ``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / CLK_TCK


@contextmanager
def simulator(module: str, port: int, ready: str, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """Run ``python -m module --port port`` until its output shows ``ready``; stop it afterwards."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", module, "--port", str(port), *extra]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if ready in line:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"simulator {module} exited early: {line}")
        else:
            raise RuntimeError(f"simulator {module} did not start within 30 s")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


_C = TypeVar("_C", bound=Connector)


@asynccontextmanager
async def simulated_connector(
    opts: BenchOptions,
    sim: tuple[str, str, tuple[str, ...]],
    endpoint: Callable[[int], dict[str, Any]],
    build: Callable[[EndpointSettings, HubHttpClient], _C],
    transport: TransportKind = TransportKind.AIOHTTP,
) -> AsyncIterator[tuple[_C, int]]:
    """A connector made by ``build`` for the simulator ``sim`` (module, ready text, extra
    arguments) run on a free port, whose settings are ``endpoint(port)``; and the simulator's
    pid. The connector is closed, then the simulator stopped, on the way out."""
    module, ready, extra = sim
    port = free_port()
    with simulator(module, port, ready, *extra) as proc:
        settings = EndpointSettings.model_validate(endpoint(port))
        async with build_http_client(max_connections=opts.concurrency, transport=transport) as http:
            connector = build(settings, http)
            try:
                yield connector, proc.pid
            finally:
                await connector.aclose()


# --- sample messages --------------------------------------------------------------------------


def sample_dossier(n: int) -> Dossier:
    return plain_dossier(f"000.00.18.H42-250612-{n:05d}")


def sync_delivery(n: int, endpoint: str) -> Delivery:
    payload = DossierSyncPayload(dossier=sample_dossier(n), revision=1).model_dump(mode="json")
    return Delivery(f"m-{n}", endpoint, "dossier.sync", payload)


def progress_delivery(n: int, endpoint: str) -> Delivery:
    """``dossier.progress`` with ten processing steps."""
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
    return Delivery(f"p-{n}", endpoint, "dossier.progress", payload.model_dump(mode="json"))


# --- drive and measure ------------------------------------------------------------------------


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


async def measure(
    name: str, description: str, connector: Connector, endpoint: str, simulator_pid: int, opts: BenchOptions
) -> CaseResult:
    """Warm up, time N sync deliveries (wall, hub CPU, simulator CPU), then profile if asked."""
    warm_up = [sync_delivery(90000 + i, endpoint) for i in range(1, WARM_UP + 1)]
    await drive(connector, warm_up, opts.concurrency)  # login / token / connection pool
    n = opts.deliveries
    deliveries = [sync_delivery(i, endpoint) for i in range(1, n + 1)]
    simulator_before, hub_before = process_cpu_ms(simulator_pid), time.process_time()
    seconds, latencies, errors = await drive(connector, deliveries, opts.concurrency)
    hub_cpu = (time.process_time() - hub_before) * 1000
    simulator_cpu = process_cpu_ms(simulator_pid) - simulator_before
    result = CaseResult(
        name, description, n, opts.concurrency, seconds, latencies, errors, hub_cpu, simulator_cpu
    )
    if opts.profile_top:
        profile = cProfile.Profile()
        sample = [sync_delivery(n + i, endpoint) for i in range(1, max(200, n // 4) + 1)]
        profile.enable()
        await drive(connector, sample, opts.concurrency)
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).strip_dirs().sort_stats("tottime").print_stats(opts.profile_top)
        result.profile = out.getvalue()
        result.notes.append(f"cProfile over {len(sample)} extra deliveries")
    return result


async def measure_progress(connector: Connector, endpoint: str, opts: BenchOptions) -> str:
    """``dossier.progress`` on dossiers synced by :func:`measure`; a one-line note."""
    progress = [progress_delivery(i, endpoint) for i in range(1, min(opts.deliveries, 1000) + 1)]
    hub_before = time.process_time()
    seconds, latencies, errors = await drive(connector, progress, opts.concurrency)
    hub_cpu = (time.process_time() - hub_before) * 1000 / len(progress)
    return (
        f"progress (10 steps each): {len(progress) / seconds:.1f} deliveries/s,"
        f" p50 {sorted(latencies)[len(latencies) // 2]:.1f} ms, hub CPU {hub_cpu:.3f} ms/delivery,"
        f" {errors} errors"
    )


def zeep_serialisation_ms(connector: Any, rounds: int = 500) -> tuple[float, float]:
    """Mean ms per message for the mapping and for zeep's envelope build alone."""
    from connectors.lgsp.mapping import to_sync_document

    dossier = sample_dossier(1)
    body: dict[str, Any] = {}
    started = time.perf_counter()
    for _ in range(rounds):
        body = {"Document": to_sync_document(dossier).model_dump(exclude_none=True)}
    mapped = time.perf_counter()
    for i in range(rounds):
        connector.client.build_envelope("sync", body, f"s-{i}")
    built = time.perf_counter()
    return (mapped - started) * 1000 / rounds, (built - mapped) * 1000 / rounds


# --- DVCQG JSON -------------------------------------------------------------------------------


def _simulator_login(kind: str, url: str, options: dict[str, Any]) -> dict[str, Any]:
    """Endpoint settings that sign in with the simulators' default account (``hub`` /
    ``hub-secret``, hub/simulators/dvcqg.py and hub/simulators/lgsp/simulator.py)."""
    return {"kind": kind, "url": url, "username": "hub", "password": "hub-secret", "options": options}


async def _bench_dvcqg(opts: BenchOptions, name: str, transport: TransportKind) -> CaseResult:
    """``dossier.sync`` (DongBoHoSoMC) then ``dossier.progress`` through the DVCQG connector."""
    from connectors.dvcqg import build_dvcqg_connector

    def endpoint(port: int) -> dict[str, Any]:
        url = f"http://127.0.0.1:{port}/apiDVC-GPLX/tcdbdvcdata"
        return _simulator_login("dvcqg", url, {"madonvi": "000.00.18.H42"})

    sim = ("hub.commands.simulate_dvcqg", "simulator listening", ())
    build = partial(build_dvcqg_connector, "dvcqg")
    async with simulated_connector(opts, sim, endpoint, build, transport) as (connector, pid):
        pool = "httpx/httpcore" if transport is TransportKind.HTTPX else "aiohttp"
        description = f"DVCQG JSON, {pool} transport"
        result = await measure(name, description, connector, "dvcqg", pid, opts)
        result.notes.append(await measure_progress(connector, "dvcqg", opts))
        result.notes.append(f"logins during the run: {connector.client.login_count}")
    return result


@case("dvcqg-json")
async def bench_dvcqg(opts: BenchOptions) -> CaseResult:
    return await _bench_dvcqg(opts, "dvcqg-json", TransportKind.HTTPX)


@case("dvcqg-json-aiohttp")
async def bench_dvcqg_aiohttp(opts: BenchOptions) -> CaseResult:
    return await _bench_dvcqg(opts, "dvcqg-json-aiohttp", TransportKind.AIOHTTP)


# --- LGSP: SOAP (zeep) and REST (JSON) --------------------------------------------------------

# REST bodies checked with the pydantic wire models: xmlschema (the simulator's default) costs
# about 2 ms per record and would make the simulator the bottleneck of the JSON case.
_LGSP_SIMULATOR = ("hub.commands.simulate_lgsp", '"soap11"', ("--rest-validation", "model"))


async def _bench_soap(opts: BenchOptions, version: str) -> CaseResult:
    from connectors.lgsp import build_lgsp_soap_connector

    name = f"lgsp-soap{version.replace('.', '')}"

    def endpoint(port: int) -> dict[str, Any]:
        url = f"http://127.0.0.1:{port}/lgsp/soap{version.replace('.', '')}"
        return _simulator_login("lgsp_soap", url, {"soap_version": version})

    build = partial(build_lgsp_soap_connector, "lgsp")
    async with simulated_connector(opts, _LGSP_SIMULATOR, endpoint, build) as (connector, pid):
        description = f"LGSP SOAP {version} zeep, aiohttp transport"
        result = await measure(name, description, connector, "lgsp", pid, opts)
        mapping_ms, zeep_ms = zeep_serialisation_ms(connector)
    hub_ms = result.hub_cpu_per_delivery
    result.notes.append(
        f"of the hub's {hub_ms:.3f} ms: mapping {mapping_ms:.3f} ms, zeep envelope build"
        f" (incl. UsernameToken digest) {zeep_ms:.3f} ms ({100 * zeep_ms / hub_ms:.0f}%),"
        f" the rest is HTTP client + zeep reply parsing + asyncio"
    )
    return result


@case("lgsp-soap11")
async def bench_lgsp_soap11(opts: BenchOptions) -> CaseResult:
    return await _bench_soap(opts, "1.1")


@case("lgsp-soap12")
async def bench_lgsp_soap12(opts: BenchOptions) -> CaseResult:
    return await _bench_soap(opts, "1.2")


@case("lgsp-rest")
async def bench_lgsp_rest(opts: BenchOptions) -> CaseResult:
    from connectors.lgsp import build_lgsp_rest_connector

    def endpoint(port: int) -> dict[str, Any]:
        return {
            "kind": "lgsp_rest",
            "url": f"http://127.0.0.1:{port}",
            "client_id": "hub-client",
            "client_secret": "hub-client-secret",
        }

    build = partial(build_lgsp_rest_connector, "lgsp-rest")
    async with simulated_connector(opts, _LGSP_SIMULATOR, endpoint, build) as (connector, pid):
        description = "LGSP REST JSON, aiohttp transport"
        result = await measure("lgsp-rest", description, connector, "lgsp", pid, opts)
        result.notes.append(f"tokens fetched: {connector.client.auth.fetch_count}")
    return result


# --- summary ----------------------------------------------------------------------------------


def summary_lines(results: dict[str, CaseResult]) -> list[str]:
    """The closing table, SOAP vs LGSP REST, and (last) SOAP vs the DVCQG JSON baseline."""
    header = (
        f"{'case':<20} {'deliv/s':>9} {'p50 ms':>8} {'hub CPU ms/deliv':>17}"
        f" {'sim CPU ms/deliv':>17} {'errors':>7}"
    )
    lines = ["summary", header]
    for r in results.values():
        lines.append(
            f"{r.name:<20} {r.rate:9.1f} {r.percentile(0.5):8.1f} {r.hub_cpu_per_delivery:17.3f}"
            f" {r.simulator_cpu_per_delivery:17.3f} {r.errors:7d}"
        )

    def ratios(base: CaseResult) -> str:
        parts = [
            f"{name} hub CPU x{r.hub_cpu_per_delivery / base.hub_cpu_per_delivery:.2f},"
            f" wall-clock x{r.wall_ms_per_message / base.wall_ms_per_message:.2f}"
            for name in SOAP_CASES
            if (r := results.get(name))
        ]
        return "; ".join(parts)

    soap_run = [name for name in SOAP_CASES if name in results]
    if soap_run and "lgsp-rest" in results:
        lines.append(f"SOAP vs LGSP REST JSON per message (lgsp-rest = 1): {ratios(results['lgsp-rest'])}")
    if soap_run and JSON_BASELINE in results:
        base = results[JSON_BASELINE]
        lines.append(
            f"SOAP vs JSON per message ({JSON_BASELINE} = 1, hub CPU {base.hub_cpu_per_delivery:.3f} ms,"
            f" wall-clock {base.wall_ms_per_message:.3f} ms): {ratios(base)}"
        )
    else:
        lines.append(
            f"SOAP vs JSON per message: needs {JSON_BASELINE} and lgsp-soap11/lgsp-soap12 in the run"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--case", action="append", choices=list(CASES), help="case to run (repeatable); default all"
    )
    parser.add_argument("-n", "--deliveries", type=int, default=2000, help="deliveries per case")
    parser.add_argument("-c", "--concurrency", type=int, default=32, help="deliveries in flight")
    parser.add_argument("--profile-top", type=int, default=0, help="print a hub-side cProfile (top N)")
    args = parser.parse_args()
    opts = BenchOptions(args.deliveries, args.concurrency, args.profile_top)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f};"
        f" n={opts.deliveries}, c={opts.concurrency}; simulators in separate processes"
    )
    results: dict[str, CaseResult] = {}
    for name in dict.fromkeys(args.case or CASES):
        result = asyncio.run(CASES[name](opts))
        results[name] = result
        print("\n".join(result.lines()), flush=True)
        if result.profile:
            print(f"  hub-side cProfile (top {opts.profile_top} by own time):")
            print("\n".join("    " + line for line in result.profile.strip().splitlines()))
    print("\n".join(summary_lines(results)))


if __name__ == "__main__":
    main()
