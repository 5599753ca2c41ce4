"""The technicians' console pages over a real server on loopback: overview, failed-message
queue (filters, bulk retry of everything matching after a confirmation), message detail
(masking, reveal, discard, edit with a diff), CSRF and roles."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import func, select

from hub.db.models import AuditEntry, BulkJob
from hub.db.session import Database
from hub.dlq import service
from hub.dlq.models import BulkAction, DlqFilter
from tests.api.livehub import LiveHub
from tests.console.support import add_account, browser, console_hub, csrf, finished_job_page, login
from tests.delivery.helpers import message, put_many
from tests.dlq.test_api import CCCD, PAYLOAD, PHONE
from tests.dlq.test_service import kill

SEQ_LINK = re.compile(r'href="/console/dlq/(\d+)[?"]')


@contextmanager
def operator(
    database_url: str, tmp_path: Path, role: str = "technician"
) -> Iterator[tuple[LiveHub, httpx.Client]]:
    """A live hub and a browser logged in as ``role`` (account ``as-<role>``)."""
    with console_hub(database_url, tmp_path / "d") as (hub, _clock), browser(hub) as client:
        add_account(hub, f"as-{role}", role)
        assert login(client, f"as-{role}").status_code == 303
        yield hub, client


def dead(
    db: Database, endpoint: str, count: int, *, error_class: str = "BusinessRejectionError", prefix: str = "A"
) -> list[int]:
    seqs = put_many(db, endpoint, [(f"H42.01-260101-{prefix}{i:03d}", {"n": i}) for i in range(count)])
    kill(db, *seqs, error_class=error_class)
    return seqs


def listed(page: httpx.Response) -> list[int]:
    assert page.status_code == 200, page.text
    return sorted({int(seq) for seq in SEQ_LINK.findall(page.text)})


def jobs(db: Database) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.count(BulkJob.id))) or 0)


def actions(db: Database, action: str) -> list[AuditEntry]:
    with db.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def row_cells(page: str, endpoint: str) -> list[str]:
    """The cells of ``endpoint``'s row of the overview table, as text."""
    found = re.search(rf'<th scope="row"><a [^>]*>{re.escape(endpoint)}</a></th>(.*?)</tr>', page, re.S)
    assert found is not None, page
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", found.group(1), re.S)
    ]


def test_overview_counts_per_endpoint_and_chart(db: Database, database_url: str, tmp_path: Path) -> None:
    portal_dead = dead(db, "portal", 3)
    put_many(db, "portal", [("H42.01-260101-B001", {"n": 1})])  # pending, first attempt
    blocked = put_many(db, "portal", [(message(db, portal_dead[0]).ordering_key, {"n": 2})])
    put_many(db, "lgsp", [("H42.01-260101-C001", {"n": 1}), ("H42.01-260101-C002", {"n": 2})])
    with operator(database_url, tmp_path) as (_hub, client):
        page = client.get("/console/ops")
        english = client.get("/console/ops", params={"lang": "en"})
    assert page.status_code == 200, page.text
    assert "<script" not in page.text
    # pending, in flight, retrying, dead, blocked, delivered 1 h, delivered 24 h, circuit, oldest
    assert row_cells(page.text, "portal")[:7] == ["1", "0", "0", "3", str(len(blocked)), "0", "0"]
    assert row_cells(page.text, "lgsp")[:7] == ["2", "0", "0", "0", "0", "0", "0"]
    assert row_cells(page.text, "dvcqg")[:7] == ["0"] * 7  # configured, nothing queued
    assert "/console/dlq?endpoint=portal&amp;state=dead" in page.text
    # 24 hourly bars, the 3 dead-letter attempts counted as failures in the current hour
    assert page.text.count('class="bar-fail"') == 24
    assert re.search(r"<td class=\"num\">0</td><td class=\"num\">3</td></tr>\s*</tbody>", page.text)
    assert "Deliveries and failures per hour" in english.text


def test_officers_and_strangers_are_refused(db: Database, database_url: str, tmp_path: Path) -> None:
    (seq,) = dead(db, "portal", 1)
    with operator(database_url, tmp_path, "officer") as (hub, client):
        token = csrf(client.get("/console/"))
        for path in ("/console/ops", "/console/dlq", f"/console/dlq/{seq}"):
            assert client.get(path).status_code == 403
        refused = client.post(
            "/console/dlq/bulk/start", data={"csrf_token": token, "action": "retry", "state": "dead"}
        )
        assert refused.status_code == 403
        assert client.post(f"/console/dlq/{seq}/retry", data={"csrf_token": token}).status_code == 403
        with browser(hub) as stranger:
            answer = stranger.get("/console/dlq")
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/console/login")
    assert jobs(db) == 0
    assert message(db, seq).state == "dead"


def test_filters_narrow_the_list(db: Database, database_url: str, tmp_path: Path) -> None:
    portal = dead(db, "portal", 2)
    lgsp = dead(db, "lgsp", 2, error_class="PortalUnavailableError", prefix="L")
    with db.transaction() as session:  # one error text to search for
        row = session.get(type(message(db, lgsp[1])), lgsp[1])
        assert row is not None
        row.last_error = "HTTP 422 MaCoQuan không hợp lệ"
    with operator(database_url, tmp_path) as (_hub, client):
        assert listed(client.get("/console/dlq")) == sorted(portal + lgsp)
        assert listed(client.get("/console/dlq", params={"endpoint": "lgsp"})) == lgsp
        assert listed(client.get("/console/dlq", params={"error_class": "PortalUnavailableError"})) == lgsp
        one = message(db, portal[1]).dossier_code
        assert listed(client.get("/console/dlq", params={"dossier_code": one})) == [portal[1]]
        assert listed(client.get("/console/dlq", params={"error_text": "macoquan không"})) == [lgsp[1]]
        assert listed(client.get("/console/dlq", params={"since": "2099-01-01T00:00"})) == []
        assert listed(client.get("/console/dlq", params={"until": "2099-01-01T00:00"})) == sorted(
            portal + lgsp
        )
        assert listed(client.get("/console/dlq", params={"state": "pending"})) == []
        newest_first = client.get("/console/dlq", params={"sort": "seq", "desc": "1"})
        assert [int(s) for s in SEQ_LINK.findall(newest_first.text)] == sorted(portal + lgsp, reverse=True)
        bad = client.get("/console/dlq", params={"since": "yesterday"})
        assert bad.status_code == 422
        assert 'role="alert"' in bad.text


def test_bulk_retry_by_filter_retries_all_matching_after_confirmation(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    portal = dead(db, "portal", 55)  # more than one page (50)
    other = dead(db, "lgsp", 2, prefix="L")
    with operator(database_url, tmp_path) as (_hub, client):
        page = client.get("/console/dlq", params={"endpoint": "portal"})
        assert len(listed(page)) == 50
        assert "1/2" in page.text
        assert re.search(r'id="total">55<', page.text)
        confirm = client.post(
            "/console/dlq/bulk",
            data={"csrf_token": csrf(page), "action": "retry", "endpoint": "portal", "state": "dead"},
        )
        assert confirm.status_code == 200, confirm.text
        assert re.search(r'id="count">55<', confirm.text)
        assert jobs(db) == 0  # nothing happens before the confirmation
        hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', confirm.text))
        assert hidden["endpoint"] == "portal"
        assert hidden["action"] == "retry"
        started = client.post("/console/dlq/bulk/start", data=hidden)
        assert started.status_code == 303, started.text
        job_page = started.headers["location"]
        assert job_page.startswith("/console/dlq/jobs/")
        shown = finished_job_page(client, job_page, within=60, every=0.2)
        assert re.search(r'id="job-progress">55/55<', shown.text), shown.text
    assert {message(db, seq).state for seq in portal} == {"pending"}
    assert {message(db, seq).state for seq in other} == {"dead"}
    (created,) = actions(db, "dlq.bulk_retry")
    assert created.actor == "as-technician"
    assert created.details["matched"] == 55
    assert len(actions(db, "dlq.retry")) == 55


def test_a_queued_job_shows_progress_and_can_be_cancelled(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    dead(db, "portal", 3)
    job = service.create_bulk_job(db, BulkAction.RETRY, DlqFilter(), actor="someone")  # no runner
    with operator(database_url, tmp_path) as (_hub, client):
        shown = client.get(f"/console/dlq/jobs/{job.id}")
        assert '<meta http-equiv="refresh" content="2">' in shown.text
        assert re.search(r'id="job-progress">0/3<', shown.text)
        cancelled = client.post(f"/console/dlq/jobs/{job.id}/cancel", data={"csrf_token": csrf(shown)})
        assert cancelled.status_code == 200
        assert "http-equiv" not in cancelled.text
        again = client.post(f"/console/dlq/jobs/{job.id}/cancel", data={"csrf_token": csrf(shown)})
        assert again.status_code == 409
    assert service.get_bulk_job(db, job.id).state.value == "cancelled"
    assert actions(db, "dlq.bulk_cancel")[0].actor == "as-technician"


def test_posts_without_the_csrf_token_change_nothing(db: Database, database_url: str, tmp_path: Path) -> None:
    (seq,) = dead(db, "portal", 1)
    with operator(database_url, tmp_path) as (_hub, client):
        for path, data in (
            ("/console/dlq/bulk/start", {"action": "retry", "state": "dead"}),
            (f"/console/dlq/{seq}/retry", {}),
            (f"/console/dlq/{seq}/discard", {"reason": "test"}),
            (f"/console/dlq/{seq}/edit", {"payload": '{"n": 9}', "confirm": "1"}),
            (f"/console/dlq/{seq}/edit", {"payload": '{"n": 9}', "confirm": "1", "csrf_token": "forged"}),
        ):
            answer = client.post(path, data=data)
            assert answer.status_code == 403, path
    assert jobs(db) == 0
    assert message(db, seq).state == "dead"
    assert message(db, seq).payload == {"n": 0}


def test_message_detail_is_masked_and_edit_keeps_the_stored_id(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    (seq,) = put_many(db, "portal", [(str(PAYLOAD["MaHoSo"]), PAYLOAD)])
    kill(db, seq)
    with operator(database_url, tmp_path) as (_hub, client):
        shown = client.get(f"/console/dlq/{seq}")
        assert shown.status_code == 200, shown.text
        assert CCCD not in shown.text
        assert PHONE not in shown.text
        assert "*********345" in shown.text
        assert "HTTP 422 rejected" in shown.text  # the attempt's error
        assert "reveal=pii" not in shown.text  # technicians cannot reveal
        textarea = re.search(r'<textarea id="edit-payload"[^>]*>(.*?)</textarea>', shown.text, re.S)
        assert textarea is not None
        edited = html.unescape(textarea.group(1)).replace('"H42.01"', '"H42.02"')
        preview = client.post(
            f"/console/dlq/{seq}/edit",
            data={"csrf_token": csrf(shown), "payload": edited, "reason": "mã cơ quan"},
        )
        assert preview.status_code == 200, preview.text
        diff = html.unescape(preview.text)
        assert re.search(r'<ins>\+\s+"MaCoQuan": "H42.02",?</ins>', diff)
        assert re.search(r'<del>-\s+"MaCoQuan": "H42.01",?</del>', diff)
        assert CCCD not in preview.text
        assert message(db, seq).payload == PAYLOAD  # nothing stored before the confirmation
        hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', preview.text))
        saved = client.post(f"/console/dlq/{seq}/edit", data={k: html.unescape(v) for k, v in hidden.items()})
        assert saved.status_code == 200, saved.text
        assert CCCD not in saved.text
    stored = message(db, seq)
    assert stored.payload == {**PAYLOAD, "MaCoQuan": "H42.02"}
    assert stored.payload["ChuHoSo"]["SoGiayTo"] == CCCD
    assert stored.state == "pending"
    (entry,) = actions(db, "dlq.edit")
    assert (entry.actor, entry.details["reason"]) == ("as-technician", "mã cơ quan")


def test_discard_needs_a_reason(db: Database, database_url: str, tmp_path: Path) -> None:
    (seq,) = dead(db, "portal", 1)
    with operator(database_url, tmp_path) as (_hub, client):
        page = client.get(f"/console/dlq/{seq}")
        refused = client.post(f"/console/dlq/{seq}/discard", data={"csrf_token": csrf(page), "reason": " "})
        assert refused.status_code == 422
        assert message(db, seq).state == "dead"
        done = client.post(f"/console/dlq/{seq}/discard", data={"csrf_token": csrf(page), "reason": "trùng"})
        assert done.status_code == 200
        assert client.get("/console/dlq/999999").status_code == 404
    assert message(db, seq).state == "discarded"
    assert actions(db, "dlq.discard")[0].details["reason"] == "trùng"


def test_an_admin_may_reveal_and_it_is_audited(db: Database, database_url: str, tmp_path: Path) -> None:
    (seq,) = put_many(db, "portal", [(str(PAYLOAD["MaHoSo"]), PAYLOAD)])
    kill(db, seq)
    with operator(database_url, tmp_path, "admin") as (_hub, client):
        masked = client.get(f"/console/dlq/{seq}")
        assert CCCD not in masked.text
        assert f"/console/dlq/{seq}?reveal=pii" in masked.text
        assert actions(db, "pii.reveal") == []
        shown = client.get(f"/console/dlq/{seq}", params={"reveal": "pii"})
        assert CCCD in shown.text
    (entry,) = actions(db, "pii.reveal")
    assert (entry.actor, entry.target, entry.details["kind"]) == ("as-admin", str(seq), "dlq_message")
