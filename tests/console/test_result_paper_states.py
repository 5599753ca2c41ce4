"""The result papers' workflow state (``result_papers``, docs/signing.md §14): the queues follow
it through upload → sign → issue, a draft assigned to one officer is hers alone, only an admin
reassigns (audited), and two officers signing one draft at once make exactly one signature."""

from __future__ import annotations

import re
import threading

import httpx
from sqlalchemy import func, select

from hub.db.models import AuditEntry, PaperState, ResultPaperRow, StoredFile
from signing.samples import sample_pdf
from tests.api.livehub import LiveHub
from tests.console.desk_support import CODE, upload_draft
from tests.console.support import browser, csrf, login
from tests.rowcounts import row_counts


def _links(page: httpx.Response, prefix: str) -> list[str]:
    return [
        link.rsplit("/", 1)[1]
        for link in re.findall(rf'href="({re.escape(prefix)}[A-Za-z0-9_-]+)', page.text)
    ]


def _paper(hub: LiveHub, file_id: str) -> ResultPaperRow:
    with hub.db.sessions() as session:
        row = session.scalar(select(ResultPaperRow).where(ResultPaperRow.file_id == file_id))
        assert row is not None
        session.expunge(row)
        return row


def _signed_count(hub: LiveHub) -> int:
    with hub.db.sessions() as session:
        rows = session.scalars(
            select(AuditEntry.details).where(AuditEntry.action == "signing.results.sign")
        ).all()
    return sum(1 for details in rows if details.get("outcome") == "signed")


def _approved_files(hub: LiveHub) -> int:
    with hub.db.sessions() as session:
        return (
            session.scalar(
                select(func.count()).select_from(StoredFile).where(StoredFile.filename.like("%.approved.pdf"))
            )
            or 0
        )


def test_queues_follow_the_state_and_the_assignment(hub: LiveHub) -> None:
    hers = upload_draft(hub, "GIAY SO 1", signer="officer")
    others = upload_draft(hub, "GIAY SO 2", signer="officer2")
    anyone = upload_draft(hub, "GIAY SO 3")
    assert _paper(hub, hers).state == PaperState.DRAFT
    assert _paper(hub, hers).assigned_to == "officer"
    assert _paper(hub, anyone).assigned_to is None
    with browser(hub) as client:
        assert login(client, "officer").status_code == 303
        desk = client.get("/console/signing")
        # hers first, then the unassigned one; never the draft assigned to officer2
        assert _links(desk, "/console/signing/documents/") == [hers, anyone]
        assert client.get(f"/console/signing/documents/{others}").status_code == 404
        token = csrf(desk)
        stolen = client.post(
            f"/console/signing/documents/{others}/sign", data={"key_id": "lanh-ntl", "csrf_token": token}
        )
        assert stolen.status_code == 403
        assert _paper(hub, others).state == PaperState.DRAFT
        signed = client.post(
            f"/console/signing/documents/{anyone}/sign", data={"key_id": "lanh-ntl", "csrf_token": token}
        )
        assert signed.status_code == 200, signed.text
        assert _links(client.get("/console/signing"), "/console/signing/documents/") == [hers]
    paper = _paper(hub, anyone)
    assert paper.state == PaperState.APPROVED
    assert paper.signed_by == "user:officer"
    assert paper.approved_file_id is not None
    with browser(hub) as client:
        assert login(client, "officer2").status_code == 303
        assert _links(client.get("/console/signing"), "/console/signing/documents/") == [others]
    with browser(hub) as client:
        assert login(client, "clerk").status_code == 303
        queue = client.get("/console/issuance")
        assert _links(queue, "/console/issuance/documents/") == [paper.approved_file_id]
        issued = client.post(
            f"/console/issuance/documents/{paper.approved_file_id}/issue",
            data={"name": "Giấy chứng nhận", "key_id": "so-nnmt", "csrf_token": csrf(queue)},
        )
        assert issued.status_code == 200, issued.text
        assert _links(client.get("/console/issuance"), "/console/issuance/documents/") == []
        again = client.post(
            f"/console/issuance/documents/{paper.approved_file_id}/issue",
            data={"name": "Giấy chứng nhận", "key_id": "so-nnmt", "csrf_token": csrf(queue)},
        )
        assert again.status_code == 404
    done = _paper(hub, anyone)
    assert done.state == PaperState.ISSUED
    assert done.issued_by == "user:clerk"
    assert done.issued_file_id is not None
    assert done.issued_file_id not in (done.file_id, done.approved_file_id)


def test_upload_signer_must_be_an_enabled_officer(hub: LiveHub) -> None:
    upload_draft(hub)  # the dossier
    before = row_counts(hub.db, StoredFile)
    with hub.client("source") as source:
        for signer in ("clerk", "nobody", "admin"):
            answer = source.post(
                f"/api/v1/dossiers/{CODE}/results/upload",
                files={"file": ("x.pdf", sample_pdf("KHAC"), "application/pdf")},
                data={"name": "Giấy chứng nhận", "signer": signer},
            )
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"]["details"]["field"] == "signer"
    assert row_counts(hub.db, StoredFile) == before


def test_only_an_admin_reassigns_and_it_is_audited(hub: LiveHub) -> None:
    draft = upload_draft(hub, signer="officer")
    with browser(hub) as client:  # an officer may not reassign, not even her own draft
        assert login(client, "officer").status_code == 303
        page = client.get(f"/console/signing/documents/{draft}")
        assert 'id="assign"' not in page.text
        refused = client.post(
            f"/console/signing/documents/{draft}/assign",
            data={"signer": "officer2", "csrf_token": csrf(page)},
        )
        assert refused.status_code == 403
    assert _paper(hub, draft).assigned_to == "officer"
    with browser(hub) as client:
        assert login(client, "admin").status_code == 303
        page = client.get(f"/console/signing/documents/{draft}")
        assert page.status_code == 200
        assert 'id="assign"' in page.text
        bad = client.post(
            f"/console/signing/documents/{draft}/assign", data={"signer": "clerk", "csrf_token": csrf(page)}
        )
        assert bad.status_code == 422
        moved = client.post(
            f"/console/signing/documents/{draft}/assign",
            data={"signer": "officer2", "csrf_token": csrf(page)},
        )
        assert moved.status_code == 200, moved.text
    assert _paper(hub, draft).assigned_to == "officer2"
    with hub.db.sessions() as session:
        rows = session.execute(
            select(AuditEntry.actor, AuditEntry.before, AuditEntry.after).where(
                AuditEntry.action == "result_paper.assign"
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("user:admin", {"assigned_to": "officer"}, {"assigned_to": "officer2"})
    ]
    with browser(hub) as client:
        assert login(client, "officer").status_code == 303
        assert _links(client.get("/console/signing"), "/console/signing/documents/") == []
    with browser(hub) as client:
        assert login(client, "officer2").status_code == 303
        assert _links(client.get("/console/signing"), "/console/signing/documents/") == [draft]


def test_two_officers_signing_one_draft_make_one_signature(hub: LiveHub) -> None:
    draft = upload_draft(hub)
    clients: list[tuple[httpx.Client, str, str]] = []
    for username, key in (("officer", "lanh-ntl"), ("officer2", "pho-gd")):
        client = browser(hub)
        assert login(client, username).status_code == 303
        clients.append((client, key, csrf(client.get(f"/console/signing/documents/{draft}"))))
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def sign(client: httpx.Client, key: str, token: str) -> None:
        start.wait()
        answer = client.post(
            f"/console/signing/documents/{draft}/sign", data={"key_id": key, "csrf_token": token}
        )
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=sign, args=entry) for entry in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    for client, _key, _token in clients:
        client.close()
    assert sorted(statuses) == [200, 409]
    assert _signed_count(hub) == 1
    assert _approved_files(hub) == 1  # the loser stored nothing
    paper = _paper(hub, draft)
    assert paper.state == PaperState.APPROVED
    assert paper.claimed_by is None
