"""Citizen lookup over a real server: JSON, the /tra-cuu page, rate limit, QR codes."""

from __future__ import annotations

import html
import io
import re
import unicodedata
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from tests.api.livehub import LiveHub, dossier_json, live_hub, status_json
from tests.sample_dossier import T0

CODE = "000.00.18.H42-251125-0001"
OWNER_ID = "001099012345"


@pytest.fixture
def hub(database_url: str, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(database_url, tmp_path / "data") as running:
        with running.client("source") as client:
            assert client.post("/api/v1/dossiers", json={"dossier": dossier_json()}).status_code == 201
            change = status_json(4, T0 + timedelta(hours=2), department="Chi cục Chăn nuôi và Thú y")
            assert client.post(f"/api/v1/dossiers/{CODE}/status", json=change).status_code == 200
        yield running


def test_owner_sees_status_and_steps_without_personal_data(hub: LiveHub) -> None:
    with hub.client() as client:
        response = client.get(f"/api/v1/lookup/{CODE}", params={"id_number": OWNER_ID})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    view = response.json()
    assert view["status"] == 4
    assert view["status_label_vi"] == "Đang xử lý"
    assert view["received_at"] == T0.isoformat()
    assert view["steps"][0]["handler"] == "Trần Thị Bình"
    assert view["late"] is True  # the sample's due date (2025-11-30) is long past
    for secret in (OWNER_ID, "Nguyễn Văn An", "0912345678"):
        assert secret not in response.text


def test_wrong_missing_id_and_unknown_code_are_indistinguishable(hub: LiveHub) -> None:
    with hub.client() as client:
        answers = [
            client.get(f"/api/v1/lookup/{CODE}", params={"id_number": "001099012346"}),
            client.get(f"/api/v1/lookup/{CODE}"),
            client.get(f"/api/v1/lookup/{CODE}", params={"id_number": ""}),
            client.get("/api/v1/lookup/000.00.18.H42-251125-0002", params={"id_number": OWNER_ID}),
            client.get("/api/v1/lookup/not-a-code", params={"id_number": OWNER_ID}),
        ]
    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    assert answers[0].json()["error"]["message_vi"].startswith("không tìm thấy hồ sơ")


def test_lookup_without_owner_id_when_configured(database_url: str, tmp_path: Path) -> None:
    with live_hub(database_url, tmp_path / "d", lookup={"require_owner_id": False}) as running:
        with running.client("source") as client:
            client.post("/api/v1/dossiers", json={"dossier": dossier_json()})
        with running.client() as client:
            assert client.get(f"/api/v1/lookup/{CODE}").status_code == 200
            assert client.get(f"/api/v1/lookup/{CODE}", params={"id_number": "999999999"}).status_code == 404


def test_rate_limit_answers_429_with_retry_after(database_url: str, tmp_path: Path) -> None:
    with (
        live_hub(database_url, tmp_path / "d", lookup={"rate_limit_per_minute": 3}) as running,
        running.client() as client,
    ):
        answers = [client.get(f"/api/v1/lookup/{CODE}", params={"id_number": OWNER_ID}) for _ in range(4)]
    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert answers[-1].json()["error"]["code"] == "rate_limited"


def test_html_page_in_vietnamese(hub: LiveHub) -> None:
    with hub.client() as client:
        form = client.get("/tra-cuu")
        found = client.get("/tra-cuu", params={"MHS": CODE, "SGT": OWNER_ID})
        wrong = client.get("/tra-cuu", params={"MHS": CODE, "SGT": "001099099999"})
        hostile = client.get("/tra-cuu", params={"MHS": "<script>alert(1)</script>", "SGT": "1"})
    assert form.status_code == 200
    assert '<meta charset="utf-8">' in form.text
    assert 'name="SGT"' in form.text
    assert found.status_code == 200
    assert found.headers["content-type"].startswith("text/html")
    assert "Đang xử lý" in found.text
    assert "Chi cục Chăn nuôi và Thú y" in found.text
    assert unicodedata.is_normalized("NFC", found.text)
    assert OWNER_ID not in found.text
    assert wrong.status_code == 404
    assert "không tìm thấy hồ sơ" in wrong.text
    assert "001099099999" not in wrong.text
    assert "<script>" not in hostile.text
    assert "&lt;script&gt;" in hostile.text


def decode_qr(png: bytes) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def test_qr_png_opens_the_lookup_page(hub: LiveHub) -> None:
    with hub.client("source") as client:
        png = client.get(f"/api/v1/dossiers/{CODE}/qr.png")
        svg = client.get(f"/api/v1/dossiers/{CODE}/qr.svg")
        unknown = client.get("/api/v1/dossiers/000.00.18.H42-251125-0009/qr.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    expected = f"{hub.settings.api.public_base_url}/tra-cuu?MHS={CODE}"
    assert decode_qr(png.content) == [expected]
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.content.lstrip().startswith(b"<svg")
    assert unknown.status_code == 404
    with hub.client() as client:
        assert client.get(f"/api/v1/dossiers/{CODE}/qr.png").status_code == 401
        page = client.get(expected.replace(hub.settings.api.public_base_url, ""))
    assert page.status_code == 200  # the form, asking for the ID number
    assert CODE in page.text


def test_html_page_escapes_a_hostile_code_in_text_and_attributes(hub: LiveHub) -> None:
    hostile = "\"><img src=x onerror=alert(1)>' autofocus onfocus='alert(2)"
    with hub.client() as client:
        form = client.get("/tra-cuu", params={"MHS": hostile})
        refused = client.get("/tra-cuu", params={"MHS": hostile, "SGT": "001099012345"})
    for page in (form, refused):
        assert "<img" not in page.text
        assert "onfocus='" not in page.text
        values = re.findall(r'<input name="MHS" value="([^"]*)"', page.text)
        assert [html.unescape(value) for value in values] == [hostile]  # the whole value, inside its quotes
