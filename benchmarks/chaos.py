"""The chaos scenarios (``tests/chaos``) at a larger scale, with the verifier's summary of each.

Run:  .venv/bin/python -m benchmarks.chaos [--scale 10] [-k EXPR] [--sqlite-only]

Every scenario multiplies its sizes by ``--scale`` (``HUB_CHAOS_SCALE``: messages, dossiers,
kills, restarts, pauses; the CI run is scale 1, a few thousand messages in all). The scenarios
run under pytest as usual (PostgreSQL at ``HUB_TEST_PG_URL`` and a private cluster for the
restart scenario, unless ``--sqlite-only``); each records its summary, printed here as a table:
messages enqueued, arrivals at the receiver, duplicates (all explained by lost leases, or they
are violations), ``lease_lost`` attempts, and violations by kind.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

COLUMNS = ("seconds", "enqueued", "arrivals", "duplicate_arrivals", "lease_lost")


def _table(lines: list[dict[str, Any]]) -> str:
    width = max([len("scenario"), *(len(str(line["scenario"])) for line in lines)])
    header = f"{'scenario':<{width}}  " + "  ".join(COLUMNS) + "  violations"
    rows = [header, "-" * len(header)]
    for line in lines:
        cells = "  ".join(f"{line.get(c, '')!s:>{len(c)}}" for c in COLUMNS)
        violations = ", ".join(f"{k}={v}" for k, v in line["violations"].items()) or "none"
        rows.append(f"{line['scenario']!s:<{width}}  {cells}  {violations}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10.0, help="size multiplier (CI runs 1)")
    parser.add_argument("-k", dest="expression", help="pytest -k expression: only these scenarios")
    parser.add_argument("--sqlite-only", action="store_true", help="leave PostgreSQL out")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hub-chaos-") as work:
        report = Path(work) / "chaos.jsonl"
        env = {**os.environ, "HUB_CHAOS_SCALE": str(args.scale), "HUB_CHAOS_REPORT": str(report)}
        if args.sqlite_only:
            env["HUB_TEST_SQLITE_ONLY"] = "1"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "timeout=0",
            "-rxX",
            "tests/chaos",
            "-m",
            "slow",
        ]
        if args.expression:
            command += ["-k", args.expression]
        done = subprocess.run(command, env=env, check=False)
        lines = (
            [json.loads(text) for text in report.read_text(encoding="utf-8").splitlines()]
            if report.exists()
            else []
        )
    print(f"\nchaos at scale {args.scale:g}: {len(lines)} scenario(s)\n")
    if lines:
        print(_table(lines))
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
