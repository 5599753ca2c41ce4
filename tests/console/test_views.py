"""The dossier and endpoint pages of the console over a real server on loopback."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path

from hub.db.session import Database
from hub.dlq import service
from tests.accounts.support import FAST
from tests.api.livehub import dossier_json, live_hub, status_json
from tests.console.support import add_account, browser, csrf, login
from tests.delivery.helpers import put_many
from tests.dlq.test_service import kill
from tests.sample_dossier import T0

CODE = "000.00.18.H42-251125-0001"
APOLOGY = "Xin lỗi: hồ sơ quá hạn do chờ ý kiến liên ngành (Mẫu 04), gọi 0912345678"


def test_dossier_page_timeline_messages_and_results(db: Database, database_url: str, tmp_path: Path) -> None:
    console = {**FAST, "secure_cookies": False}
    with live_hub(database_url, tmp_path / "d", console=console) as hub:
        with hub.client("source") as source:
            created = source.post("/api/v1/dossiers", json={"dossier": dossier_json(CODE), "version": 1})
            assert created.status_code == 201, created.text
            base = f"/api/v1/dossiers/{CODE}"
            assert (
                source.post(f"{base}/status", json=status_json(4, T0 + timedelta(hours=1))).status_code == 200
            )
            moved = source.post(
                f"{base}/due-date",
                json={
                    "new_due_at": (T0 + timedelta(days=12)).isoformat(),
                    "at": (T0 + timedelta(days=6)).isoformat(),
                    "handler": "Trần Thị Bình",
                    "reason": APOLOGY,
                },
            )
            assert moved.status_code == 200, moved.text
        (dead,) = put_many(db, "portal", [(CODE, {"n": 1})])
        kill(db, dead)
        add_account(hub, "tech", "technician")
        add_account(hub, "officer", "officer")
        add_account(hub, "clerk", "clerk")
        with browser(hub) as client:
            assert login(client, "tech").status_code == 303
            page = client.get(f"/console/dossiers/{CODE}")
            english = client.get(f"/console/dossiers/{CODE}", params={"lang": "en"})
            missing = client.get("/console/dossiers/000.00.18.H42-251125-9999")
        with browser(hub) as client:
            assert login(client, "officer").status_code == 303
            as_officer = client.get(f"/console/dossiers/{CODE}")
        with browser(hub) as client:
            assert login(client, "clerk").status_code == 303
            assert client.get(f"/console/dossiers/{CODE}").status_code == 403
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    timeline = re.search(r'<ol class="timeline" id="timeline">(.*?)</ol>', text, re.S)
    assert timeline is not None
    events = re.findall(r'<li class="event-([a-z]+)">', timeline.group(1))
    assert events == ["receipt", "step", "redate"]
    assert "Hẹn lại ngày trả (phiếu xin lỗi)" in timeline.group(1)
    assert "Xin lỗi: hồ sơ quá hạn" in timeline.group(1)
    assert "0912345678" not in text  # the phone typed into the reason is masked
    assert "001099012345" not in text  # the owner's ID number is masked
    # outbound messages per endpoint: the dossier's sync messages and the dead one, linked
    captions = re.findall(r"<caption>([a-z]+)</caption>", text)
    assert {"dvcqg", "lgsp", "portal"} <= set(captions)
    assert f'href="/console/dlq/{dead}"' in page.text
    assert "Chưa có giấy tờ kết quả." in text
    assert "New due date (apology)" in english.text
    assert missing.status_code == 404
    assert as_officer.status_code == 200
    assert f'href="/console/dlq/{dead}"' not in as_officer.text  # officers do not operate the DLQ


def test_endpoint_page_hides_secrets(db: Database, database_url: str, tmp_path: Path) -> None:
    endpoints = {
        "lgsp": {
            "kind": "webhook",
            "url": "http://svc:url-secret-1@127.0.0.1:9/lgsp",
            "password": "pw-secret-2",
            "client_secret": "cs-secret-3",
            "options": {
                "service": "DongBoHoSo",
                "api_token": "tok-secret-4",
                "nested": {"AppKey": "k-secret-5"},
            },
        }
    }
    console = {**FAST, "secure_cookies": False}
    with live_hub(database_url, tmp_path / "d", console=console, endpoints=endpoints, routing=[]) as hub:
        seqs = put_many(db, "lgsp", [(f"H42.01-260101-{i:04d}", {"n": i}) for i in range(2)])
        kill(db, seqs[0])
        add_account(hub, "tech", "technician")
        add_account(hub, "officer", "officer")
        with browser(hub) as client:
            assert login(client, "tech").status_code == 303
            page = client.get("/console/endpoints/lgsp")
            unknown = client.get("/console/endpoints/nowhere")
            token = csrf(page)
            forged = client.post("/console/endpoints/lgsp/pause", data={"reason": "bảo trì"})
            assert forged.status_code == 403
            assert service.paused_endpoints(db) == {}
            no_reason = client.post("/console/endpoints/lgsp/pause", data={"csrf_token": token, "reason": ""})
            assert no_reason.status_code == 422
            paused = client.post(
                "/console/endpoints/lgsp/pause", data={"csrf_token": token, "reason": "bảo trì"}
            )
            assert paused.status_code == 200
            assert "Đang tạm dừng gửi" in paused.text
            assert service.paused_endpoints(db)["lgsp"].paused_by == "tech"
            assert "Đang tạm dừng gửi" in client.get("/console/ops").text
            resumed = client.post("/console/endpoints/lgsp/resume", data={"csrf_token": token})
            assert resumed.status_code == 200
            assert service.paused_endpoints(db) == {}
        with browser(hub) as client:
            assert login(client, "officer").status_code == 303
            assert client.get("/console/endpoints/lgsp").status_code == 403
    assert page.status_code == 200, page.text
    assert "secret-" not in page.text
    assert "DongBoHoSo" in page.text
    assert 'id="circuit"' in page.text
    assert re.search(r"<dt>Lỗi \(hàng đợi lỗi\)</dt><dd><a [^>]+>1</a>", page.text)
    assert unknown.status_code == 404
