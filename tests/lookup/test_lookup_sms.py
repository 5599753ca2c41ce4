"""SMS lookup: '<KEYWORD> <MaHoSo>' answered in ASCII by status; gateway auth; masked logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from hub.logging import PiiMaskingFilter
from hub.lookup.sms import normalise_sender
from tests.api.livehub import LiveHub, dossier_json, live_hub, status_json
from tests.sample_dossier import T0

SECRET = "gateway-shared-secret-123"
PHONE = "+84912345678"


@pytest.fixture
def hub(database_url: str, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(database_url, tmp_path / "data", lookup={"sms_shared_secret": SECRET}) as running:
        yield running


def make(hub: LiveHub, seq: int, statuses: list[tuple[int, timedelta]]) -> str:
    code = f"000.00.18.H42-251125-{seq:04d}"
    with hub.client("source") as client:
        dossier = dossier_json(
            code=code, processing_agency="Trung tâm Phục vụ hành chính công tỉnh Ninh Bình"
        )
        assert client.post("/api/v1/dossiers", json={"dossier": dossier}).status_code == 201
        for status, offset in statuses:
            response = client.post(f"/api/v1/dossiers/{code}/status", json=status_json(status, T0 + offset))
            assert response.status_code == 200, response.text
    return code


def sms(hub: LiveHub, body: str, *, src: str = PHONE, as_json: bool = False) -> dict[str, str]:
    with hub.client(headers={"X-Gateway-Secret": SECRET}) as client:
        if as_json:
            response = client.post("/api/v1/sms/inbound", json={"src": src, "msgbody": body})
        else:
            response = client.post("/api/v1/sms/inbound", data={"src": src, "msgbody": body, "dest": "8088"})
    assert response.status_code == 200, response.text
    answer: dict[str, str] = response.json()
    assert answer["message"].isascii()
    return answer


H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.mark.parametrize(
    ("statuses", "kind", "phrase"),
    [
        ([], "processing", "dang trong qua trinh tham dinh"),
        ([(4, H)], "processing", "hen tra ngay 30/11/2025"),
        ([(5, H)], "supplement", "som hoan thien bo sung ho so"),
        ([(4, H), (9, 2 * D)], "finished_on_time", "da giai quyet dung han"),
        ([(4, H), (9, 8 * D)], "finished_late", "*Luu y: mang theo giay to can thiet."),
        ([(4, H), (9, 2 * D), (10, 3 * D)], "returned", "da tra ket qua ngay 28/11/2025"),
        ([(3, H)], "refused", "da bi tu choi giai quyet"),
        ([(7, H)], "stopped", "Cong dan yeu cau rut ho so"),
    ],
)
def test_reply_by_status(hub: LiveHub, statuses: list[tuple[int, timedelta]], kind: str, phrase: str) -> None:
    code = make(hub, 1, statuses)
    answer = sms(hub, f"HS {code}")
    assert answer["kind"] == kind
    assert phrase in answer["message"]
    assert code in answer["message"]
    assert answer["to"] == "0912345678"
    assert "Nguyen Van An" not in answer["message"]
    if kind.startswith("finished"):
        assert "Trung tam Phuc vu hanh chinh cong tinh Ninh Binh" in answer["message"]


@pytest.mark.parametrize("body", ["", "HS", "TRACUU 000.00.18.H42-251125-0001", "HS a b", "xin chào"])
def test_syntax_error(hub: LiveHub, body: str) -> None:
    answer = sms(hub, body)
    assert answer["kind"] == "syntax_error"
    assert answer["message"].startswith("Sai cu phap")


def test_keyword_is_case_insensitive_and_json_accepted(hub: LiveHub) -> None:
    code = make(hub, 2, [])
    assert sms(hub, f"hs  {code.lower()} ", as_json=True)["kind"] == "processing"


def test_unknown_code(hub: LiveHub) -> None:
    answer = sms(hub, "HS 000.00.18.H42-251125-0777")
    assert answer["kind"] == "unknown_code"
    assert "Khong tim thay ho so" in answer["message"]


def test_gateway_authentication(hub: LiveHub) -> None:
    body = {"src": PHONE, "msgbody": "HS x"}
    with hub.client() as client:
        assert client.post("/api/v1/sms/inbound", data=body).status_code == 401
    with hub.client(headers={"X-Gateway-Secret": "wrong"}) as client:
        assert client.post("/api/v1/sms/inbound", data=body).status_code == 403
    with hub.client("source") as client:
        assert client.post("/api/v1/sms/inbound", data=body).status_code == 403
    with hub.client("portal") as client:
        assert client.post("/api/v1/sms/inbound", data=body).status_code == 200


def test_bad_gateway_payloads(hub: LiveHub) -> None:
    with hub.client(headers={"X-Gateway-Secret": SECRET}) as client:
        missing = client.post("/api/v1/sms/inbound", data={"msgbody": "HS x"})
        bad_src = client.post("/api/v1/sms/inbound", data={"src": "<b>", "msgbody": "HS x"})
        xml = client.post("/api/v1/sms/inbound", content=b"<mo/>", headers={"Content-Type": "text/xml"})
        broken = client.post(
            "/api/v1/sms/inbound", content=b"{", headers={"Content-Type": "application/json"}
        )
    assert missing.status_code == 422
    assert bad_src.status_code == 422
    assert xml.status_code == 415
    assert broken.status_code == 400  # malformed JSON, as on every route


@contextmanager
def sms_log() -> Iterator[io.StringIO]:
    """What the ``hub.sms`` logger writes through the masking filter (as the hub's handler)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PiiMaskingFilter())
    logger = logging.getLogger("hub.sms")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def test_mo_and_mt_are_logged_with_the_phone_masked(hub: LiveHub) -> None:
    with sms_log() as stream:
        code = make(hub, 3, [])
        sms(hub, f"HS {code}")
    text = stream.getvalue()
    assert "sms MO from" in text
    assert "sms MT to" in text
    assert "0912345678" not in text
    assert "912345678" not in text
    assert "091*****78" in text


def test_mo_log_masks_id_numbers_glued_to_letters_and_passwords(hub: LiveHub) -> None:
    """Citizens send more than the syntax asks for; the MO line is logged as received."""
    with sms_log() as stream:
        answer = sms(hub, "HS 000.00.18.H42-251125-0001 CCCD001099012345 pass=hunter2")
    text = stream.getvalue()
    assert answer["kind"] == "syntax_error"
    assert "sms MO from" in text
    assert "000.00.18.H42-251125-0001" in text  # the code stays readable
    assert "001099012345" not in text
    assert "CCCD*********345" in text
    assert "hunter2" not in text
    assert "pass=***" in text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("+84912345678", "0912345678"), ("84912345678", "0912345678"), ("0912 345 678", "0912345678")],
)
def test_sender_normalisation(raw: str, expected: str) -> None:
    assert normalise_sender(raw) == expected
