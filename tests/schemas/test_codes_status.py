from __future__ import annotations

import unicodedata
from datetime import date, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas.codes import (
    DossierCodeForm,
    format_dossier_code,
    national_procedure_code,
    parse_dossier_code,
    validate_agency_code,
    validate_procedure_code,
)
from schemas.dossier import Dossier, Identity, IdentityKind, Owner
from schemas.errors import InvalidInputError, InvalidTransitionError
from schemas.status import ALLOWED_TRANSITIONS, DossierStatus, check_transition
from schemas.text import nfc, strip_diacritics
from schemas.timefmt import VN_TZ, from_dvcqg, iso_vn, to_dvcqg


@pytest.mark.parametrize(
    ("code", "form", "agency", "day", "seq"),
    [
        ("000.00.18.H42-251125-0001", DossierCodeForm.QCVN102, "000.00.18.H42", date(2025, 11, 25), 1),
        ("000.00.18.H42-250612-48213", DossierCodeForm.QCVN102, "000.00.18.H42", date(2025, 6, 12), 48213),
        ("H42.018.05-260205-010001", DossierCodeForm.CENTRALISED, "H42.018.05", date(2026, 2, 5), 1),
        ("H42.018.05-260205-0112345", DossierCodeForm.CENTRALISED, "H42.018.05", date(2026, 2, 5), 12345),
    ],
)
def test_parse_valid_dossier_codes(
    code: str, form: DossierCodeForm, agency: str, day: date, seq: int
) -> None:
    parsed = parse_dossier_code(code)
    assert parsed.form is form
    assert parsed.agency == agency
    assert parsed.day == day
    assert parsed.sequence == seq
    assert parsed.province == "H42"


@pytest.mark.parametrize(
    "code",
    [
        "",
        "000.00.18.H42-251125-001",  # 3-digit sequence
        "000.00.18.H42-251325-0001",  # month 13
        "000.00.18.H42-250230-0001",  # 30 February
        "00.00.18.H42-251125-0001",  # level 4 has three digits
        "000.00.18.Z42-251125-0001",  # level-1 letter must be A–Y
        "000.00.18.H42_251125_0001",
        "H42-260205-010001",  # centralised form needs a lower-level group
        "000.00.18.H42-251125-0001; DROP TABLE",
    ],
)
def test_invalid_dossier_codes_are_refused_in_both_languages(code: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_dossier_code(code)
    assert "mã hồ sơ" in err.value.message_vi


def test_format_round_trips_and_overflow() -> None:
    assert format_dossier_code("000.00.18.H42", date(2026, 2, 5), 27) == "000.00.18.H42-260205-0027"
    assert (
        format_dossier_code("H42.018.05", date(2026, 2, 5), 1, platform_owner="01")
        == "H42.018.05-260205-010001"
    )
    with pytest.raises(InvalidInputError):
        format_dossier_code("000.00.18.H42", date(2026, 2, 5), 10000)
    with pytest.raises(InvalidInputError):
        format_dossier_code("000.00.18.H42", date(2026, 2, 5), 0)


def test_agency_and_procedure_codes() -> None:
    assert validate_agency_code(" 000.00.00.h42 ") == "000.00.00.H42"
    assert validate_agency_code("H56.14") == "H56.14"
    with pytest.raises(InvalidInputError):
        validate_agency_code("H42." + "1" * 40)
    for code in ("1.000234", "1.000234.000.00.00.H42", "1.003901.H42", "2.002621.H56"):
        assert validate_procedure_code(code) == code
    assert national_procedure_code("1.000234.000.00.00.H42") == "1.000234"
    for bad in ("1.00023", "4.000234", "1.000234.H4", "1.000234.00.00.00.H42"):
        with pytest.raises(InvalidInputError):
            validate_procedure_code(bad)


def test_status_labels_and_procedure_transitions() -> None:
    assert DossierStatus(5).label_vi == "Yêu cầu bổ sung giấy tờ"
    assert all(unicodedata.is_normalized("NFC", s.label_vi) for s in DossierStatus)
    check_transition(DossierStatus.SUBMITTED, DossierStatus.RECEIVED)
    check_transition(DossierStatus.PROCESSING, DossierStatus.FINISHED)
    check_transition(DossierStatus.FINISHED, DossierStatus.RETURNED)
    check_transition(DossierStatus.WITHDRAWAL_REQUESTED, DossierStatus.STOPPED)
    for final in (DossierStatus.REFUSED, DossierStatus.STOPPED, DossierStatus.RETURNED):
        assert ALLOWED_TRANSITIONS[final] == frozenset()
        with pytest.raises(InvalidTransitionError):
            check_transition(final, DossierStatus.PROCESSING)
    with pytest.raises(InvalidTransitionError) as err:
        check_transition(DossierStatus.RECEIVED, DossierStatus.RETURNED)
    assert err.value.details == {"from": 2, "to": 10}


def test_nfc_and_ascii_rendering() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Lấp Lánh")
    assert nfc(decomposed) == "Nguyễn Thị Lấp Lánh"
    owner = Owner(name=decomposed)
    assert owner.name == "Nguyễn Thị Lấp Lánh"
    assert strip_diacritics("Đã xử lý xong, Đường Tràng An") == "Da xu ly xong, Duong Trang An"


def test_dvcqg_time_format_is_vietnam_local() -> None:
    utc_time = datetime(2025, 6, 12, 7, 30, 5, tzinfo=VN_TZ).astimezone(VN_TZ)
    assert to_dvcqg(utc_time) == "20250612073005"
    from zoneinfo import ZoneInfo

    assert to_dvcqg(datetime(2025, 6, 12, 0, 30, 5, tzinfo=ZoneInfo("UTC"))) == "20250612073005"
    assert from_dvcqg("20250612143005") == datetime(2025, 6, 12, 14, 30, 5, tzinfo=VN_TZ)
    assert from_dvcqg("") is None
    assert iso_vn(datetime(2026, 3, 5, 7, 7, 31, tzinfo=ZoneInfo("UTC"))) == "2026-03-05T14:07:31+07:00"
    for bad in ("2025-06-12", "20251312000000", "2025061214300"):
        with pytest.raises(InvalidInputError):
            from_dvcqg(bad)
    with pytest.raises(InvalidInputError):
        to_dvcqg(datetime(2025, 6, 12))  # naive


def test_dossier_model_rules() -> None:
    t0 = datetime(2025, 11, 25, 8, 0, tzinfo=VN_TZ)
    base = {
        "code": "000.00.18.H42-251125-0001",
        "agency_code": "000.00.18.H42",
        "procedure_code": "1.003901.H42",
        "owner": {"name": "Phạm Văn Cường"},
        "received_at": t0,
    }
    dossier = Dossier.model_validate({**base, "due_at": t0 + timedelta(days=3)})
    assert dossier.is_late(t0 + timedelta(days=4))
    assert not dossier.is_late(t0 + timedelta(days=2))
    with pytest.raises(ValidationError):
        Dossier.model_validate({**base, "due_at": t0 - timedelta(days=1)})
    with pytest.raises(ValidationError):
        Dossier.model_validate({**base, "received_at": "2025-11-25T08:00:00"})  # naive time
    with pytest.raises(ValidationError):
        Dossier.model_validate({**base, "unexpected": 1})
    with pytest.raises(ValidationError):
        Dossier.model_validate({**base, "code": "bad"})
    with pytest.raises(ValidationError):
        Identity(kind=IdentityKind.CCCD, number="123456789")
    finished = Dossier.model_validate(
        {**base, "due_at": t0 + timedelta(days=3), "finished_at": t0 + timedelta(days=2), "status": 9}
    )
    assert finished.finished_on_time() is True
