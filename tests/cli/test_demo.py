"""``hub demo --exit`` end to end: both simulators with faults, signing, DLQ replay, result URL.

The demo is run as an operator would (a subprocess of the console script); what it prints is
checked, and so is what it left behind (database, stored files) independently of its own checks.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hub.demo import DemoContext, DemoStep, run_demo

HUB = str(Path(sys.executable).with_name("hub"))


def _fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


@pytest.mark.slow  # the whole demo in a subprocess
def test_demo_converges_through_faults_and_signs_a_valid_result(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    result = subprocess.run(
        [HUB, "demo", "--dir", str(directory), "--port", "0", "--exit"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "RESULT: OK, every message delivered or replayed" in out
    assert "FAILED" not in out
    assert "SAI" not in out  # no queue out of order
    # Personal data never reaches the console: the sample owners' ID numbers only masked.
    from hub.demo import sample_dossiers

    for sample in sample_dossiers():
        assert sample.id_number not in out + result.stderr

    # both real simulators converged: everything delivered in order, faults retried
    endpoints = {
        fields["kind"]: fields
        for fields in (_fields(line) for line in out.splitlines() if line.startswith("ENDPOINT "))
    }
    assert set(endpoints) == {"dvcqg", "lgsp_soap"}
    for fields in endpoints.values():
        assert fields["converged"] == "yes"
        assert fields["in_order"] == "yes"
        assert fields["delivered"] == fields["messages"]
        assert int(fields["messages"]) > 0
        assert int(fields["retries"]) >= 2
    assert endpoints["dvcqg"]["dead_lettered"] == "1"
    assert endpoints["dvcqg"]["replayed"] == "1"
    assert endpoints["lgsp_soap"]["dead_lettered"] == "0"
    assert "logins=2" in out  # the expired session was renewed
    assert "de-duplicated by X-Message-Id=1" in out

    # the result paper: two signatures, the hub's verifier says valid (Vietnamese verdict line)
    assert "Kết luận: HỢP LỆ" in out
    signature = next(line for line in out.splitlines() if line.startswith("SIGNATURE "))
    assert _fields(signature)["verdict"] == "valid"
    assert _fields(signature)["signatures"] == "2"
    assert 'verdict_vi="hợp lệ"' in signature
    assert "Nguyễn Thị Lấp Lánh (hợp lệ)" in signature
    assert "Sở Nông nghiệp và Môi trường tỉnh Ninh Bình (hợp lệ)" in signature

    # the URL the DVCQG simulator received was fetched and matched; check the stored file too
    url_line = next(line for line in out.splitlines() if line.startswith("RESULT_URL "))
    url = url_line.split()[1]
    fields = _fields(url_line)
    assert fields["match"] == "yes"
    assert fields["sha256"] == fields["fetched_sha256"]
    file_id = url.rsplit("/", 1)[1]
    stored = directory / "files" / file_id[:2] / file_id
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == fields["sha256"]
    assert stored.read_bytes().startswith(b"%PDF-")

    # what the database says, independently of the demo's own checks
    with sqlite3.connect(directory / "hub.db") as con:
        states = dict(con.execute("select state, count(*) from outbox_messages group by state").fetchall())
        retried = {
            (endpoint, error_class)
            for endpoint, error_class in con.execute(
                "select o.endpoint, a.error_class from delivery_attempts a "
                "join outbox_messages o on o.seq = a.message_seq where a.outcome = 'retry'"
            )
        }
        dead = con.execute(
            "select o.endpoint, a.error_class from delivery_attempts a "
            "join outbox_messages o on o.seq = a.message_seq where a.outcome = 'dead'"
        ).fetchall()
        manual = con.execute("select count(*) from delivery_attempts where manual = 1").fetchone()[0]
    assert set(states) == {"delivered"}
    assert ("cong-dvcqg", "EndpointBusyError") in retried  # 503 Retry-After
    assert ("cong-dvcqg", "TransportError") in retried  # dropped connection
    assert ("lgsp-tinh", "EndpointBusyError") in retried  # SOAP Receiver fault, 429
    assert dead == [("cong-dvcqg", "BusinessRejectionError")]
    assert manual >= 1  # the operator's replay


async def test_demo_exit_status_is_1_when_a_check_fails(tmp_path: Path) -> None:
    lines: list[str] = []

    async def broken_check(ctx: DemoContext) -> None:
        ctx.failures.append("simulated failed check")

    status = await run_demo(
        tmp_path / "demo", port=0, echo=lines.append, steps=(DemoStep("a failing check", broken_check),)
    )
    out = "\n".join(lines)
    assert status == 1
    assert "FAILED simulated failed check" in out
    assert "RESULT: FAILED" in out
