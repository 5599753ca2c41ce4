"""Migration 0016 backfills ``result_papers`` from what an older hub derived its queues from
(unsigned PDF result papers, ``signing.results.sign`` and ``.issue``/``.seal`` audit rows): an
upgraded hub shows the same officer's and clerk's queues (docs/signing.md §14)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from hub.audit.log import record
from hub.db.base import utcnow
from hub.db.migrate import downgrade, upgrade
from hub.db.models import DossierRow, PaperState, ResultPaperRow, StoredFile
from hub.db.session import Database
from hub.services.result_papers import ResultPapers

CODE = "000.00.18.H42-251125-0009"
BASE = "http://hub.example/api/v1"


def _file(file_id: str, filename: str, minutes: int) -> StoredFile:
    return StoredFile(
        id=file_id,
        dossier_code=CODE,
        filename=filename,
        media_type="application/pdf",
        sha256="0" * 64,
        size=100,
        path=f"{file_id[:2]}/{file_id}",
        created_at=utcnow() - timedelta(minutes=60 - minutes),
    )


def _result(file_id: str, name: str, *, signed: bool = False) -> dict[str, object]:
    return {"id": file_id, "name": name, "download_url": f"{BASE}/files/{file_id}", "signed": signed}


def _signed(action: str, actor: str, file_id: str, output: str) -> dict[str, object]:
    return {
        "actor": actor,
        "action": action,
        "target": "sha256:" + "0" * 64,
        "details": {"outcome": "signed", "file_id": file_id, "output_file_id": output, "dossier_code": CODE},
    }


def test_upgrade_backfills_the_same_queues(database_url: str) -> None:
    downgrade(database_url, "0015")
    db = Database.connect(database_url)
    try:
        # made the old way, at 0015: three drafts uploaded; two signed by the officer, one of
        # them issued by the clerk; a paper uploaded signed, which is no draft
        with db.transaction() as session:
            session.add(
                DossierRow(
                    code=CODE,
                    agency_code="000.00.18.H42",
                    procedure_code="1.001",
                    status=2,
                    document={
                        "code": CODE,
                        "results": [
                            _result("draft-waiting", "Giấy chứng nhận 1"),
                            _result("draft-approved", "Giấy chứng nhận 2"),
                            _result("draft-issued", "Giấy chứng nhận 3"),
                            _result("issued-3", "Giấy chứng nhận 3", signed=True),
                            _result("uploaded-signed", "Quyết định", signed=True),
                        ],
                    },
                )
            )
            for n, (file_id, filename) in enumerate(
                (
                    ("draft-waiting", "gcn-1.pdf"),
                    ("draft-approved", "gcn-2.pdf"),
                    ("draft-issued", "gcn-3.pdf"),
                    ("approved-2", "gcn-2.approved.pdf"),
                    ("approved-3", "gcn-3.approved.pdf"),
                    ("issued-3", "gcn-3.signed.pdf"),
                    ("uploaded-signed", "qd.pdf"),
                )
            ):
                session.add(_file(file_id, filename, n))
        for row in (
            _signed("signing.results.sign", "user:officer", "draft-approved", "approved-2"),
            _signed("signing.results.sign", "user:officer2", "draft-issued", "approved-3"),
            _signed("signing.results.issue", "user:clerk", "approved-3", "issued-3"),
        ):
            with db.transaction() as session:
                record(session, **row)  # type: ignore[arg-type]
    finally:
        db.dispose()
    upgrade(database_url)
    db = Database.connect(database_url)
    try:
        papers = ResultPapers(db)
        desk = papers.waiting_for("officer")
        assert [(p.file_id, p.name) for p in desk.items] == [("draft-waiting", "Giấy chứng nhận 1")]
        clerk = papers.waiting_for_clerk()
        assert [(p.approved_file_id, p.signed_by, p.name) for p in clerk.items] == [
            ("approved-2", "user:officer", "Giấy chứng nhận 2")
        ]
        with db.sessions() as session:
            rows = {row.file_id: row for row in session.scalars(select(ResultPaperRow))}
            assert set(rows) == {"draft-waiting", "draft-approved", "draft-issued"}
            issued = rows["draft-issued"]
            assert issued.state == PaperState.ISSUED
            assert (issued.approved_file_id, issued.issued_file_id) == ("approved-3", "issued-3")
            assert (issued.signed_by, issued.issued_by) == ("user:officer2", "user:clerk")
            assert all(row.assigned_to is None for row in rows.values())
    finally:
        db.dispose()
