"""The officer's signing desk, the clerk's issuance queue and the verification report, over a
real server on loopback with the test PKI (OCSP, CRL, TSA) and keys bound to console accounts,
on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

import httpx
from sqlalchemy import select

from hub.db.models import AuditEntry, DocumentRegisterEntry
from hub.services.result_papers import ResultPapers
from hub.simulators.pki import RunningPki
from signing.verification import Verdict, VerificationPolicy, verify_pdf
from tests.api.livehub import LiveHub
from tests.console.desk_support import CODE, upload_draft
from tests.console.support import browser, csrf, finished_job_page, login

SIGNING_ACTIONS = ("signing.results.sign", "signing.results.issue")


def _audit(hub: LiveHub) -> list[tuple[str, str, str]]:
    """``(action, actor, outcome)`` of the signing audit rows, oldest first."""
    with hub.db.sessions() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.actor, AuditEntry.details)
            .where(AuditEntry.action.in_(SIGNING_ACTIONS))
            .order_by(AuditEntry.id)
        ).all()
    return [(action, actor, details["outcome"]) for action, actor, details in rows]


def _text(response: httpx.Response) -> str:
    return html.unescape(response.text)


def _links(page: httpx.Response, prefix: str) -> list[str]:
    return re.findall(rf'href="({re.escape(prefix)}[A-Za-z0-9_-]+)', page.text)


def test_officer_signs_then_clerk_issues_and_the_report_shows_both(hub: LiveHub, pki: RunningPki) -> None:
    draft = upload_draft(hub)
    with browser(hub) as client:
        assert login(client, "officer").status_code == 303
        home = client.get("/console/")
        assert "/console/signing" in home.text
        assert "/console/issuance" not in home.text
        desk = client.get("/console/signing")
        assert desk.status_code == 200, desk.text
        assert _links(desk, "/console/signing/documents/") == [f"/console/signing/documents/{draft}"]
        assert "lanh-ntl" in desk.text
        assert "pho-gd" not in desk.text
        document = client.get(f"/console/signing/documents/{draft}")
        assert document.status_code == 200
        assert f'src="/console/files/{draft}/pages/1.png"' in document.text
        preview = client.get(f"/console/files/{draft}/pages/1.png")
        assert preview.status_code == 200
        assert preview.headers["content-type"] == "image/png"
        assert preview.content.startswith(b"\x89PNG\r\n\x1a\n")
        assert client.get(f"/console/files/{draft}/pages/9.png").status_code == 404
        signed = client.post(
            f"/console/signing/documents/{draft}/sign",
            data={"key_id": "lanh-ntl", "csrf_token": csrf(document)},
        )
        assert signed.status_code == 200, signed.text
        assert "lanh-ntl" in signed.text
        approved = _links(signed, "/console/verification/")[0].rsplit("/", 1)[1]
        assert _links(client.get("/console/signing"), "/console/signing/documents/") == []  # done
        assert client.get("/console/issuance").status_code == 403  # the officer does not seal
    with browser(hub) as client:
        assert login(client, "clerk").status_code == 303
        queue = client.get("/console/issuance")
        assert queue.status_code == 200
        assert _links(queue, "/console/issuance/documents/") == [f"/console/issuance/documents/{approved}"]
        assert "user:officer" in queue.text
        form = client.get(f"/console/issuance/documents/{approved}")
        assert form.status_code == 200
        issued = client.post(
            f"/console/issuance/documents/{approved}/issue",
            data={
                "name": "Giấy chứng nhận an toàn thực phẩm",
                "document_type": "GCN",
                "key_id": "so-nnmt",
                "csrf_token": csrf(form),
            },
        )
        assert issued.status_code == 200, issued.text
        assert "01/GCN-SNNMT" in issued.text
        assert "Ninh Bình, ngày " in _text(issued)
        final = _links(issued, "/console/verification/")[0].rsplit("/", 1)[1]
        assert _links(client.get("/console/issuance"), "/console/issuance/documents/") == []
        report_vi = client.get(f"/console/verification/{final}")
        report_en = client.get(f"/console/verification/{final}", params={"lang": "en"})
    assert report_vi.status_code == 200
    assert report_en.status_code == 200
    text_vi, text_en = _text(report_vi), _text(report_en)
    assert re.search(r'id="verdict"[^>]*>Hợp lệ<', text_vi)
    assert re.search(r'id="verdict"[^>]*>Valid<', text_en)
    assert "Chữ ký số thứ 2" in text_vi
    assert "KẾT QUẢ KIỂM TRA CHỮ KÝ SỐ" in text_vi
    assert "DIGITAL SIGNATURE VERIFICATION REPORT" in text_en
    assert len(re.findall(r'<tr><th scope="row">\d</th>', report_vi.text)) == 2
    # the stored paper itself: both signatures valid, attached signed to the dossier
    with hub.client("source") as source:
        stored = source.get(f"/api/v1/dossiers/{CODE}").json()
    result = next(r for r in stored["results"] if r["signed"])
    pdf = httpx.get(result["download_url"], timeout=10).content
    report = verify_pdf(pdf, VerificationPolicy.from_paths(list(pki.pki.trusted_anchor_files)))
    assert report.verdict is Verdict.VALID
    assert report.signature_count == 2
    assert _audit(hub) == [
        ("signing.results.sign", "user:officer", "signed"),
        ("signing.results.issue", "user:clerk", "numbered"),
        ("signing.results.issue", "user:clerk", "signed"),
    ]


def test_refusals(hub: LiveHub) -> None:
    draft = upload_draft(hub)
    with browser(hub) as client:
        assert login(client, "officer").status_code == 303
        page = client.get(f"/console/signing/documents/{draft}")
        token = csrf(page)
        # another officer's key: refused by the key authority (403, audited), nothing signed
        other = client.post(
            f"/console/signing/documents/{draft}/sign", data={"key_id": "pho-gd", "csrf_token": token}
        )
        assert other.status_code == 403
        assert "pho-gd" in _text(other)
        # the seal key is not hers either, and a form without the token does nothing
        assert (
            client.post(
                f"/console/signing/documents/{draft}/sign", data={"key_id": "so-nnmt", "csrf_token": token}
            ).status_code
            == 403
        )
        assert (
            client.post(f"/console/signing/documents/{draft}/sign", data={"key_id": "lanh-ntl"}).status_code
            == 403
        )
        # another officer's signature holds the draft (claimed, still signing): 409, audited
        papers = ResultPapers(hub.db)
        papers.claim_signature(draft, CODE, actor="user:officer2", accounts=frozenset({"officer2"}))
        busy = client.post(
            f"/console/signing/documents/{draft}/sign", data={"key_id": "lanh-ntl", "csrf_token": token}
        )
        assert busy.status_code == 409
        papers.release_signature(draft)
        missing = client.get("/console/signing/documents/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        assert missing.status_code == 404
        assert "/console/signing" in missing.text  # a clear page with the way back
        batch = client.post(
            "/console/signing/batch", data={"key_id": "pho-gd", "file_id": draft, "csrf_token": token}
        )
        assert batch.status_code == 403
        assert client.get("/console/signing").status_code == 200
    assert _audit(hub) == [
        ("signing.results.sign", "user:officer", "refused"),
        ("signing.results.sign", "user:officer", "refused"),
        ("signing.results.sign", "user:officer", "refused"),
    ]
    with browser(hub) as client:  # a technician cannot open the desk
        assert login(client, "tech").status_code == 303
        assert client.get("/console/signing").status_code == 403
        assert client.get(f"/console/files/{draft}/pages/1.png").status_code == 403
        assert client.get("/console/issuance").status_code == 403
    with browser(hub) as client:  # a clerk cannot sign as the officer
        assert login(client, "clerk").status_code == 303
        token = csrf(client.get("/console/issuance"))
        assert client.get("/console/signing").status_code == 403
        refused = client.post(
            f"/console/signing/documents/{draft}/sign", data={"key_id": "lanh-ntl", "csrf_token": token}
        )
        assert refused.status_code == 403
        # the draft is not in her queue: an unsigned paper is not issued (no number taken)
        early = client.post(
            f"/console/issuance/documents/{draft}/issue",
            data={"name": "Giấy chứng nhận", "key_id": "so-nnmt", "csrf_token": token},
        )
        assert early.status_code == 404
    with browser(hub) as client:  # an admin opens the desk but signs nothing
        assert login(client, "admin").status_code == 303
        page = client.get(f"/console/signing/documents/{draft}")
        assert page.status_code == 200
        denied = client.post(
            f"/console/signing/documents/{draft}/sign", data={"key_id": "lanh-ntl", "csrf_token": csrf(page)}
        )
        assert denied.status_code == 403
    with hub.db.sessions() as session:
        assert session.scalars(select(DocumentRegisterEntry)).all() == []
    assert [row[2] for row in _audit(hub)] == ["refused"] * 4


def test_issue_refuses_a_bad_name_before_taking_a_number(hub: LiveHub) -> None:
    draft = upload_draft(hub)
    with browser(hub) as client:
        assert login(client, "officer").status_code == 303
        page = client.get(f"/console/signing/documents/{draft}")
        signed = client.post(
            f"/console/signing/documents/{draft}/sign", data={"key_id": "lanh-ntl", "csrf_token": csrf(page)}
        )
        approved = _links(signed, "/console/verification/")[0].rsplit("/", 1)[1]
    with browser(hub) as client:
        assert login(client, "clerk").status_code == 303
        token = csrf(client.get("/console/issuance"))
        for bad in ({"name": "   "}, {"name": "GCN", "document_type": "g/c"}):
            answer = client.post(
                f"/console/issuance/documents/{approved}/issue", data={**bad, "csrf_token": token}
            )
            assert answer.status_code == 422, answer.text
    with hub.db.sessions() as session:
        assert session.scalars(select(DocumentRegisterEntry)).all() == []


def test_batch_signing_shows_progress_until_every_draft_is_signed(hub: LiveHub) -> None:
    drafts = [upload_draft(hub, f"GIAY CHUNG NHAN {n}") for n in (1, 2, 3)]
    with browser(hub) as client:
        assert login(client, "officer").status_code == 303
        desk = client.get("/console/signing")
        assert sorted(_links(desk, "/console/signing/documents/")) == sorted(
            f"/console/signing/documents/{d}" for d in drafts
        )
        started = client.post(
            "/console/signing/batch",
            data={"key_id": "lanh-ntl", "file_id": drafts[:2], "csrf_token": csrf(desk)},
        )
        assert started.status_code == 303
        job_url = started.headers["location"]
        job = finished_job_page(client, job_url, within=120, every=0.5)
        assert ">2/2<" in job.text
        assert len(_links(job, "/console/verification/")) == 2
        left = _links(client.get("/console/signing"), "/console/signing/documents/")
        assert left == [f"/console/signing/documents/{drafts[2]}"]
    with browser(hub) as client:  # another officer does not see her job
        assert login(client, "officer2").status_code == 303
        assert client.get(job_url).status_code == 404
    assert [row[2] for row in _audit(hub)] == ["signed", "signed"]
