"""Signing throughput: pyHanko stock loop vs the hub's batch path; batch against a slow TSA.

Run:  .venv/bin/python -m benchmarks.bench_signing [--docs 200] [--tsa-docs 100] [--tsa-delay 1.0]

1. Stock loop: for each PDF, ``SimpleSigner.load_pkcs12`` (like the pyHanko CLI) and
   ``signers.sign_pdf`` with default settings (dry-run size estimate), PAdES B-B.
2. Hub batch: ``SigningService.sign_batch`` on the same PDFs and key (PAdES B-B, certificate
   pre-check once, key opened once per process), in one process and with worker processes.
3. Hub batch B-T: 100 PDFs against the loopback TSA with an injected 1 s latency.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import tempfile
import time
from pathlib import Path

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter

from hub.simulators.pki import serve_test_pki
from signing.keys import Pkcs12KeySource, Secret
from signing.models import SignatureLevel, SignOptions
from signing.samples import write_sample_pdfs
from signing.signer_service import SigningConfig, SigningService
from signing.timestamping import TsaSettings
from signing.trust import TrustStore


def _cpu() -> float:
    """CPU seconds of this process and its finished children (robust to a loaded machine)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def stock_loop(inputs: list[Path], out: Path, p12: Path, password: str) -> float:
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    for src in inputs:
        signer = signers.SimpleSigner.load_pkcs12(p12, passphrase=password.encode())
        with src.open("rb") as fh:
            w = IncrementalPdfFileWriter(fh)
            meta = signers.PdfSignatureMetadata(field_name="Sig1", subfilter=SigSeedSubFilter.PADES)
            result = signers.sign_pdf(w, meta, signer=signer)
            (out / src.name).write_bytes(
                result.getvalue() if isinstance(result, io.BytesIO) else result.read()
            )
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--tsa-docs", type=int, default=100)
    ap.add_argument("--tsa-delay", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes for run 3")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with serve_test_pki(root / "pki") as running:
            pki = running.pki
            inputs = write_sample_pdfs(root / "in", args.docs, pages=2)
            key = Pkcs12KeySource(pki.officer_p12, Secret(pki.p12_password))
            store = TrustStore.from_test_pki(pki)

            cpu0 = _cpu()
            stock = stock_loop(inputs, root / "out-stock", pki.officer_p12, pki.p12_password)
            stock_cpu = _cpu() - cpu0
            print(
                f"cores={os.cpu_count()} workers={args.workers} docs={args.docs} "
                f"load={os.getloadavg()[0]:.1f}"
            )
            print(
                f"stock pyHanko loop (B-B): {stock:7.2f} s  {args.docs / stock:7.1f} docs/s  "
                f"cpu {stock_cpu * 1000 / args.docs:6.1f} ms/doc"
            )

            service = SigningService(SigningConfig(trust_store=store))
            for label, workers in (("1 process", 1), (f"{args.workers} worker processes", args.workers)):
                cpu0 = _cpu()
                res = service.sign_batch(
                    inputs,
                    root / f"out-batch-{workers}",
                    key,
                    SignOptions(level=SignatureLevel.B_B),
                    workers=workers,
                )
                assert res.failed == 0, [i for i in res.items if not i.ok]
                cpu = _cpu() - cpu0
                rate = args.docs / res.elapsed_seconds
                print(
                    f"hub batch (B-B, cert pre-check incl., {label}): {res.elapsed_seconds:7.2f} s  "
                    f"{rate:7.1f} docs/s  speed-up x{stock / res.elapsed_seconds:.1f} (wall)  "
                    f"cpu {cpu * 1000 / args.docs:6.1f} ms/doc  x{stock_cpu / cpu:.1f} (cpu)"
                )

            tsa_inputs = write_sample_pdfs(root / "in-tsa", args.tsa_docs, pages=2)
            running.set_tsa_delay(args.tsa_delay)
            tsa_service = SigningService(
                SigningConfig(trust_store=store, tsa=TsaSettings(url=running.tsa_url, timeout_seconds=30))
            )
            res = tsa_service.sign_batch(
                tsa_inputs, root / "out-tsa", key, SignOptions(level=SignatureLevel.B_T)
            )
            assert res.failed == 0, [i for i in res.items if not i.ok]
            print(
                f"hub batch (B-T, auto mode, TSA latency {args.tsa_delay:.1f} s, {args.tsa_docs} docs): "
                f"{res.elapsed_seconds:7.2f} s  (serial would be >= {args.tsa_docs * args.tsa_delay:.0f} s)"
            )
            print(f"TSA requests served: {running.counters['tsa']}")


if __name__ == "__main__":
    main()
