"""The simulator's own checks: it must refuse records the field rules forbid (and store nothing)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connectors.dvcqg.mapping import dossier_to_wire, step_to_wire
from connectors.dvcqg.options import DvcqgOptions
from hub.simulators.dvcqg import DvcqgSimulator
from hub.simulators.faults import FaultKind
from tests.connectors.dvcqg.dvcqg_samples import CODE, full_dossier
from tests.connectors.dvcqg.dvcqg_samples import steps as sample_steps
from tests.connectors.dvcqg.endpoint import MADONVI


@pytest.fixture
async def raw(simulator: DvcqgSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=simulator.adapter_url, timeout=5) as client:
        yield client


async def login(raw: httpx.AsyncClient) -> str:
    answer = (await raw.post("/mapi/login", json={"username": "hub", "password": "hub-secret"})).json()
    assert answer["error_code"] == 0
    return str(answer["session"])


def good_record() -> dict[str, Any]:
    wire = dossier_to_wire(
        full_dossier(), national_procedure_code="1.003901", options=DvcqgOptions(madonvi=MADONVI)
    )
    return wire.wire()


async def push(
    raw: httpx.AsyncClient, token: str, record: dict[str, Any], updating: str = "False"
) -> dict[str, Any]:
    body = {
        "session": token,
        "madonvi": MADONVI,
        "service": "DongBoHoSoMC",
        "isUpdating": updating,
        "data": [record],
    }
    return (await raw.post("/mapi/g", json=body)).json()  # type: ignore[no-any-return]


async def test_good_record_is_stored(raw: httpx.AsyncClient, simulator: DvcqgSimulator) -> None:
    token = await login(raw)
    assert (await push(raw, token, good_record()))["error_code"] == 0
    assert simulator.record(CODE) == good_record()


BAD_RECORDS: list[tuple[str, dict[str, Any]]] = [
    ("unknown key", {"TruongLa": "x"}),
    ("number instead of string", {"TrangThaiHoSo": 4}),
    ("status out of range", {"TrangThaiHoSo": "0"}),
    ("bad date format", {"NgayTiepNhan": "12/06/2025"}),
    ("impossible date", {"NgayHenTra": "20250631080000"}),
    ("summary too long", {"TrichYeuHoSo": "x" * 1000}),
    ("empty summary", {"TrichYeuHoSo": ""}),
    ("bad boolean", {"HoSoCoThanhPhanSoHoa": "true"}),
    ("bad channel", {"KenhThucHien": "4"}),
    ("bad owner type", {"LoaiDoiTuong": "5"}),
    ("bad dossier code", {"MaHoSo": "HS-0001"}),
    ("bad procedure code", {"MaTTHC": "abc"}),
    ("procedure not in catalogue", {"MaTTHC": "1.999999"}),
    ("due before receipt", {"NgayHenTra": "20250601080000"}),
    ("returned without NgayTra", {"TrangThaiHoSo": "10"}),
    ("bad identity", {"DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "12345"}]}),
    ("bad nested boolean", {"TaiLieuNop": [{"TepDinhKemId": "1", "TenTepDinhKem": "a", "IsDeleted": "0"}]}),
    (
        "bad download url",
        {
            "TaiLieuNop": [
                {"TepDinhKemId": "1", "TenTepDinhKem": "a", "DuongDanTaiTepTin": "file:///etc/passwd"}
            ]
        },
    ),
    ("bad fee amount", {"DanhSachLePhi": [{"TenPhiLePhi": "a", "Gia": "1.5"}]}),
    ("unknown nested key", {"DanhSachGiayToKetQua": [{"TenGiayTo": "a", "GiayToId": "1", "Url": "x"}]}),
]


@pytest.mark.parametrize(("why", "change"), BAD_RECORDS, ids=[b[0] for b in BAD_RECORDS])
async def test_bad_records_are_refused(
    raw: httpx.AsyncClient, simulator: DvcqgSimulator, why: str, change: dict[str, Any]
) -> None:
    token = await login(raw)
    answer = await push(raw, token, {**good_record(), **change})
    assert answer["error_code"] == "-1", why
    assert answer["message"].startswith("Dữ liệu không hợp lệ")
    assert simulator.records() == {}


async def test_missing_required_fields_are_refused(raw: httpx.AsyncClient, simulator: DvcqgSimulator) -> None:
    token = await login(raw)
    for key in ("MaHoSo", "MaTTHC", "ChuHoSo", "NgayTiepNhan", "TrangThaiHoSo"):
        record = good_record()
        del record[key]
        answer = await push(raw, token, record)
        assert answer["error_code"] == "-1"
        assert key in answer["message"]
    assert simulator.records() == {}


async def test_envelope_rules(raw: httpx.AsyncClient, simulator: DvcqgSimulator) -> None:
    token = await login(raw)
    base = {"session": token, "madonvi": MADONVI, "service": "DongBoHoSoMC", "data": [good_record()]}
    for body in (
        {**base, "isUpdating": False},  # boolean instead of the string "False"
        {**base, "isUpdating": "false"},
        {**base, "isUpdating": "False", "data": []},
        {**base, "isUpdating": "False", "extra": 1},
        {**base, "isUpdating": "False", "madonvi": "000.00.99.H42"},
        {**base, "isUpdating": "False", "service": "KhongCo"},
    ):
        answer = (await raw.post("/mapi/g", json=body)).json()
        assert answer["error_code"] == "-1"
    assert simulator.records() == {}


async def test_transport_level_rules(raw: httpx.AsyncClient, simulator: DvcqgSimulator) -> None:
    token = await login(raw)
    text = await raw.post("/mapi/g", content=b"{}", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    broken = await raw.post("/mapi/g", content=b'{"session": ', headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    array = await raw.post("/mapi/g", json=[1, 2])
    assert array.status_code == 400
    huge = await raw.post(
        "/mapi/g",
        content=b'{"x": "' + b"a" * (simulator.config.max_body_bytes + 10) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    expired = await raw.post(
        "/mapi/g", json={"session": "forged", "madonvi": MADONVI, "service": "TraCuuHoSo", "mahoso": CODE}
    )
    assert expired.json()["error_code"] == "401"
    assert token  # the real token still works
    assert simulator.records() == {}


async def test_login_rules(raw: httpx.AsyncClient, simulator: DvcqgSimulator) -> None:
    wrong = (await raw.post("/mapi/login", json={"username": "hub", "password": "nope"})).json()
    assert wrong["error_code"] == "-1"
    assert "session" not in wrong
    missing = (await raw.post("/mapi/login", json={"username": "hub"})).json()
    assert missing["error_code"] == "-1"
    assert simulator.login_count == 0


async def test_create_update_and_progress_rules(raw: httpx.AsyncClient, simulator: DvcqgSimulator) -> None:
    token = await login(raw)
    update_first = await push(raw, token, good_record(), "True")
    assert "không tồn tại" in update_first["message"]
    progress = {
        "session": token,
        "madonvi": MADONVI,
        "service": "CapNhatTienDoHoSoMC",
        "data": [step_to_wire(CODE, s).wire() for s in sample_steps(2)],
    }
    early = (await raw.post("/mapi/g", json=progress)).json()
    assert "chưa được đồng bộ" in early["message"]
    assert (await push(raw, token, good_record()))["error_code"] == 0
    again = await push(raw, token, good_record())
    assert "đã tồn tại" in again["message"]
    assert (await raw.post("/mapi/g", json=progress)).json()["error_code"] == 0
    long_handler = json.loads(json.dumps(progress))
    long_handler["data"][0]["NguoiXuLy"] = "x" * 51
    assert (await raw.post("/mapi/g", json=long_handler)).json()["error_code"] == "-1"
    assert len(simulator.progress(CODE)) == 2


async def test_admin_api(raw: httpx.AsyncClient, simulator: DvcqgSimulator) -> None:
    async with httpx.AsyncClient(base_url=simulator.base_url, timeout=5) as admin:
        added = await admin.post(
            "/_control/faults", json={"kind": "status", "status": 503, "retry_after": "9"}
        )
        assert added.status_code == 201
        bad = await admin.post("/_control/faults", json={"kind": "explode"})
        assert bad.status_code == 422
        token = await login(raw)
        failed = await raw.post(
            "/mapi/g", json={"session": token, "madonvi": MADONVI, "service": "LayDanhSachTTHC"}
        )
        assert failed.status_code == 503
        assert failed.headers["retry-after"] == "9"
        assert (await push(raw, token, good_record()))["error_code"] == 0
        records = (await admin.get("/_control/records")).json()
        assert list(records) == [CODE]
        one = (await admin.get(f"/_control/records/{CODE}")).json()
        assert one["record"]["MaHoSo"] == CODE
        assert (await admin.get("/_control/records/nope")).status_code == 404
        log = (await admin.get("/_control/requests")).json()
        assert [e["outcome"] for e in log][-2:] == ["fault:status", "ok"]
        assert (await admin.post("/_control/expire-sessions")).json() == {"expired": True}
        expired = await push(raw, token, good_record(), "True")
        assert expired["error_code"] == "401"
        await admin.post("/_control/faults", json={"kind": "business_error", "times": 2})
        assert (await admin.delete("/_control/faults")).json() == {"cleared": True}
        assert (await admin.post("/_control/reset")).json() == {"reset": True}
        assert (await admin.get("/_control/records")).json() == {}


async def test_fault_counts_down(simulator: DvcqgSimulator, raw: httpx.AsyncClient) -> None:
    simulator.faults.add(kind=FaultKind.STATUS, status=500, times=2, operation="LayDanhSachTTHC")
    token = await login(raw)
    body = {"session": token, "madonvi": MADONVI, "service": "LayDanhSachTTHC"}
    statuses = [(await raw.post("/mapi/g", json=body)).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]


def test_cli_runs_the_simulator_in_its_own_process() -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub.commands.simulate_dvcqg",
            "--port",
            str(port),
            "--username",
            "u1",
            "--progress-text",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "simulator listening" in line
        url = line.rsplit(" ", 1)[1].strip()
        assert url == f"http://127.0.0.1:{port}/apiDVC-GPLX/tcdbdvcdata"
        answer = httpx.post(url + "/mapi/login", json={"username": "u1", "password": "hub-secret"}, timeout=5)
        assert answer.json()["error_code"] == 0
    finally:
        proc.terminate()
        proc.wait(10)
