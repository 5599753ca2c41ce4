"""Verification latency per document kind, against the loopback test PKI.

Run:  .venv/bin/python -m benchmarks.bench_verify [--runs 20] [--big-mb 5]

For each kind (adbe.pkcs7 B-B, PAdES B-T, B-LT, B-LTA, Decree 30 double signature, a tampered
file and a large PDF) the script signs one document with pyHanko and then times
``signing.verification.verify_pdf`` ``--runs`` times, online (OCSP fetched from the loopback
responder) and offline (embedded data only). Prints median / p95 / max in milliseconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import tempfile
import time
from pathlib import Path

from hub.simulators.pki import serve_test_pki
from signing.samples import sample_pdf
from signing.trust import TrustStore
from signing.verification import VerificationPolicy, verify_pdf
from tests.signing.verify_helpers import append_content_change, make_pdf, sign


def _time(data: bytes, policy: VerificationPolicy, runs: int) -> tuple[float, float, float, str]:
    samples = []
    verdict = ""
    for _ in range(runs):
        t0 = time.perf_counter()
        report = verify_pdf(data, policy)
        samples.append((time.perf_counter() - t0) * 1000)
        verdict = report.verdict.value
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, samples[-1], verdict


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--big-mb", type=float, default=5.0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp, serve_test_pki(Path(tmp)) as run:
        pki = run.pki
        online = VerificationPolicy.from_trust_store(TrustStore.from_test_pki(pki))
        offline = dataclasses.replace(online, allow_fetching=False)
        base = make_pdf()
        big = sample_pdf(padding_bytes=int(args.big_mb * 1024 * 1024))
        first = sign(base, run, pki.officer_p12, field="NguoiKy", certify=True, box=(300, 100, 500, 170))
        kinds = {
            "adbe.pkcs7 B-B": sign(base, run, pki.officer_p12, pades=False),
            "PAdES B-T": sign(base, run, pki.officer_p12, timestamp=True),
            "PAdES B-LT": sign(base, run, pki.officer_p12, timestamp=True, ltv=True),
            "PAdES B-LTA": sign(base, run, pki.officer_p12, lta=True),
            "double (Decree 30)": sign(
                first, run, pki.agency_p12, field="CoQuan", box=(240, 80, 370, 210), timestamp=True
            ),
            "tampered (diff)": append_content_change(sign(base, run, pki.officer_p12)),
            f"large {args.big_mb:g} MB B-T": sign(big, run, pki.officer_p12, timestamp=True),
        }
        print(f"runs per case: {args.runs}")
        print(f"{'kind':28} {'mode':8} {'size KB':>8} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}  verdict")
        for name, data in kinds.items():
            for mode, policy in (("online", online), ("offline", offline)):
                med, p95, mx, verdict = _time(data, policy, args.runs)
                print(
                    f"{name:28} {mode:8} {len(data) / 1024:8.0f} {med:10.1f} {p95:8.1f} {mx:8.1f}  {verdict}"
                )


if __name__ == "__main__":
    main()
