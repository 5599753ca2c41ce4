"""Canonical ⇄ DVCQG wire mapping: golden request bodies (over real HTTP) and round trips."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import ValidationError

from connectors.base import Delivery
from connectors.dvcqg import DvcqgConnector
from connectors.dvcqg.mapping import dossier_to_wire, step_to_wire, wire_to_dossier, wire_to_step
from connectors.dvcqg.options import DvcqgOptions
from connectors.dvcqg.wire import WireDossier, WireProgress
from schemas.dossier import Channel, Owner
from schemas.status import DossierStatus
from tests.connectors.dvcqg.dvcqg_samples import (
    CODE,
    T0,
    finished_dossier,
    full_dossier,
    progress_payload,
    steps,
    sync_payload,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DVCQG_UPDATE_GOLDEN") == "1"
OPTIONS = DvcqgOptions(madonvi="000.00.18.H42")


def check_golden(name: str, body: dict[str, Any]) -> None:
    body = {**body, "session": "<session>"}
    path = GOLDEN / name
    if UPDATE:
        path.write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert body == expected


def delivery(kind: str, payload: dict[str, Any], message_id: str = "msg-1") -> Delivery:
    return Delivery(message_id=message_id, endpoint="dvcqg", kind=kind, payload=payload, dossier_code=CODE)


async def test_golden_create_every_nested_array(connector: DvcqgConnector, capture: Any) -> None:
    await connector.deliver(delivery("dossier.sync", sync_payload(full_dossier())))
    assert capture.services() == ["DongBoHoSoMC"]
    check_golden("dongbo_create.json", capture.bodies[0])
    record = capture.bodies[0]["data"][0]
    # a few of the rules, spelled out (the golden file holds all of them)
    assert capture.bodies[0]["isUpdating"] == "False"
    assert record["MaTTHC"] == "1.003901"
    assert record["NgayTiepNhan"] == "20250612080500"
    assert record["TaiLieuNop"][1]["IsDeleted"] == "True"
    assert record["DanhSachHoSoBoSung"][0]["NgayHenTraTruoc"] == "20250622080500"
    assert record["DanhSachHoSoBoSung"][0]["NgayHenTraMoi"] == "20250624080500"
    assert record["DanhSachLePhi"][0]["Gia"] == "1500000"
    assert record["DinhDanhCHS"] == [{"LoaiDinhDanh": "1", "SoDinhDanh": "037190001234"}]


async def test_golden_update_with_results(connector: DvcqgConnector, capture: Any) -> None:
    await connector.deliver(delivery("dossier.sync", sync_payload(full_dossier())))
    await connector.deliver(delivery("dossier.sync", sync_payload(finished_dossier(), 2), "msg-2"))
    assert capture.services() == ["DongBoHoSoMC", "DongBoHoSoMC"]
    check_golden("dongbo_update.json", capture.bodies[1])
    record = capture.bodies[1]["data"][0]
    assert capture.bodies[1]["isUpdating"] == "True"
    assert record["TrangThaiHoSo"] == "10"
    assert record["DanhSachGiayToKetQua"][0]["DuongDanTepTinKetQua"] == "http://127.0.0.1:8080/files/KQ-1"


async def test_golden_progress(connector: DvcqgConnector, capture: Any) -> None:
    dossier = full_dossier()
    await connector.deliver(delivery("dossier.sync", sync_payload(dossier)))
    await connector.deliver(delivery("dossier.progress", progress_payload(dossier, steps(3)), "msg-3"))
    assert capture.services() == ["DongBoHoSoMC", "CapNhatTienDoHoSoMC"]
    check_golden("capnhat_tiendo.json", capture.bodies[1])
    first = capture.bodies[1]["data"][0]
    assert len(first["NguoiXuLy"]) == 50
    assert first["NgayBatDau"] == ""


def test_round_trip_canonical_wire_canonical() -> None:
    for dossier in (full_dossier(), finished_dossier()):
        wire = dossier_to_wire(dossier, national_procedure_code="1.003901", options=OPTIONS)
        # through JSON text, as on the wire
        again = WireDossier.model_validate(json.loads(json.dumps(wire.wire(), ensure_ascii=False)))
        assert again == wire
        back = wire_to_dossier(again)
        # MaTTHC carries the national code; the wire has no address field (documented losses)
        assert back == dossier.model_copy(update={"procedure_code": "1.003901"})


def test_round_trip_steps() -> None:
    for step in steps(4)[1:]:
        wire = step_to_wire(CODE, step)
        assert WireProgress.model_validate(json.loads(json.dumps(wire.wire()))) == wire
        assert wire_to_step(wire) == step


def test_handler_is_cut_to_50_characters_and_summary_under_1000() -> None:
    long_step = steps(1)[0]
    assert len(long_step.handler) > 50
    assert step_to_wire(CODE, long_step).handler == long_step.handler[:50]
    dossier = full_dossier(summary="Trích yếu " * 200)
    wire = dossier_to_wire(dossier, national_procedure_code="1.003901", options=OPTIONS)
    assert len(wire.summary) == 999
    assert wire.summary == dossier.summary[:999]


def test_empty_summary_travels_as_dinhkem_and_comes_back_empty() -> None:
    wire = dossier_to_wire(full_dossier(summary=""), national_procedure_code="1.003901", options=OPTIONS)
    assert wire.wire()["TrichYeuHoSo"] == "Dinhkem"
    assert wire_to_dossier(wire).summary == ""


@pytest.mark.parametrize(
    ("status", "default", "collapsed"),
    [
        (DossierStatus.SUPPLEMENT_REQUESTED, "5", "9"),
        (DossierStatus.FINANCIAL_OBLIGATION, "6", "9"),
        (DossierStatus.STOPPED, "8", "9"),
        (DossierStatus.PROCESSING, "4", "4"),
        (DossierStatus.REFUSED, "3", "3"),
    ],
)
def test_status_collapse_is_an_option_off_by_default(
    status: DossierStatus, default: str, collapsed: str
) -> None:
    dossier = full_dossier(status=status)
    plain = dossier_to_wire(dossier, national_procedure_code="1.003901", options=OPTIONS)
    thanh_hoa = dossier_to_wire(
        dossier,
        national_procedure_code="1.003901",
        options=OPTIONS.model_copy(update={"collapse_statuses": True}),
    )
    assert plain.status == default
    assert thanh_hoa.status == collapsed


def test_times_are_vietnam_local_without_offset() -> None:
    utc = datetime(2025, 6, 12, 1, 5, 0, tzinfo=UTC)  # 08:05 in Hà Nội
    wire = dossier_to_wire(
        full_dossier(received_at=utc, submitted_at=None, due_at=None),
        national_procedure_code="1.003901",
        options=OPTIONS,
    )
    assert wire.received_at == "20250612080500"
    assert wire.due_at == ""
    assert wire.submitted_at == ""
    assert wire_to_dossier(wire).received_at == T0


def test_string_booleans_and_flags() -> None:
    wire = dossier_to_wire(full_dossier(), national_procedure_code="1.003901", options=OPTIONS).wire()
    docs = cast(list[dict[str, str]], wire["TaiLieuNop"])
    assert [d["IsDeleted"] for d in docs] == ["False", "True"]
    assert [d["DuocSoHoa"] for d in docs] == ["1", "0"]
    assert [d["DuocLayTuKhoDMQG"] for d in docs] == ["1", "0"]
    assert wire["HoSoCoThanhPhanSoHoa"] == "1"
    assert wire["TaiKhoanDuocXacThucVoiVNeID"] == "1"
    assert wire["DuocThanhToanTrucTuyen"] == "1"
    unpaid = dossier_to_wire(
        full_dossier(paid_online=False), national_procedure_code="1.003901", options=OPTIONS
    )
    assert unpaid.paid_online == "3"
    assert all(isinstance(v, str | list) for v in wire.values())


def test_portal_account_only_for_online_dossiers() -> None:
    online = dossier_to_wire(full_dossier(), national_procedure_code="1.003901", options=OPTIONS)
    counter = dossier_to_wire(
        full_dossier(channel=Channel.IN_PERSON), national_procedure_code="1.003901", options=OPTIONS
    )
    assert online.portal_account_id == "TECHID-42"
    assert counter.portal_account_id == ""


def test_identity_fallback_is_optional_and_dropped_on_the_way_back() -> None:
    dossier = full_dossier(owner=Owner(name="Phạm Văn Dũng"))
    assert dossier_to_wire(dossier, national_procedure_code="1.003901", options=OPTIONS).identities == []
    fallback = OPTIONS.model_copy(update={"identity_fallback": ("2", "000000001")})
    wire = dossier_to_wire(dossier, national_procedure_code="1.003901", options=fallback)
    assert wire.wire()["DinhDanhCHS"] == [{"LoaiDinhDanh": "2", "SoDinhDanh": "000000001"}]
    assert wire_to_dossier(wire).owner.identities == []


def test_newer_fields_defaults_and_options() -> None:
    wire = dossier_to_wire(full_dossier(), national_procedure_code="1.003901", options=OPTIONS).wire()
    assert wire["NoiNopHoSo"] == "2"
    assert wire["DSKetNoiCSDL"] == [{"MaCSDL": "7"}]
    custom = OPTIONS.model_copy(update={"noi_nop_ho_so": "1", "csdl_codes": ()})
    wire2 = dossier_to_wire(full_dossier(), national_procedure_code="1.003901", options=custom).wire()
    assert wire2["NoiNopHoSo"] == "1"
    assert wire2["DSKetNoiCSDL"] == []


def test_wire_models_are_strict() -> None:
    good = dossier_to_wire(full_dossier(), national_procedure_code="1.003901", options=OPTIONS).wire()
    for mutation in (
        {"TrangThaiHoSo": 4},  # number instead of string
        {"TrangThaiHoSo": "11"},  # not a 1–10 code
        {"NgayTiepNhan": "2025-06-12 08:05"},  # not yyyyMMddHHmmss
        {"NgayHenTra": "20250231080000"},  # not a date
        {"HinhThuc": "2"},
        {"KhongCoTruongNay": "x"},  # unknown key
        {"TrichYeuHoSo": "x" * 1000},
        {"TaiLieuNop": [{"TepDinhKemId": "1", "TenTepDinhKem": "a", "IsDeleted": "false"}]},
    ):
        with pytest.raises(ValidationError):
            WireDossier.model_validate({**good, **mutation})
    missing = dict(good)
    del missing["MaHoSo"]
    with pytest.raises(ValidationError):
        WireDossier.model_validate(missing)
