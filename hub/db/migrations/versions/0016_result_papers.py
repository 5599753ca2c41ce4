"""result_papers: the explicit workflow state of result papers (draft → approved → issued)

Backfilled from what an older hub derived its queues from: unsigned PDF result papers of the
dossiers, ``signing.results.sign`` audit rows (the officer's signature) and
``signing.results.issue`` / ``.seal`` audit rows (the clerk's issuance), so an upgraded hub
shows the same queues (docs/signing.md §14).

Revision ID: 0016
Revises: 0015
"""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from hub.db.migrations.columns import JSON_DOCUMENT, TIME, id_column, time_column, timestamps

revision: str = "0016"
down_revision: str | None = "0015"

PDF = "application/pdf"


def upgrade() -> None:
    op.create_table(
        "result_papers",
        id_column(),
        sa.Column("file_id", sa.String(length=64), nullable=False),
        sa.Column("dossier_code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("assigned_to", sa.String(length=64), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        time_column("claimed_at", nullable=True),
        sa.Column("approved_file_id", sa.String(length=64), nullable=True),
        sa.Column("signed_by", sa.String(length=100), nullable=True),
        time_column("signed_at", nullable=True),
        sa.Column("issued_file_id", sa.String(length=64), nullable=True),
        sa.Column("issued_by", sa.String(length=100), nullable=True),
        time_column("issued_at", nullable=True),
        *timestamps(),
        sa.ForeignKeyConstraint(
            ["file_id"], ["stored_files.id"], name=op.f("fk_result_papers_file_id_stored_files")
        ),
        sa.ForeignKeyConstraint(
            ["approved_file_id"],
            ["stored_files.id"],
            name=op.f("fk_result_papers_approved_file_id_stored_files"),
        ),
        sa.ForeignKeyConstraint(
            ["issued_file_id"], ["stored_files.id"], name=op.f("fk_result_papers_issued_file_id_stored_files")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_papers")),
        sa.UniqueConstraint("file_id", name=op.f("uq_result_papers_file_id")),
        sa.UniqueConstraint("approved_file_id", name=op.f("uq_result_papers_approved_file_id")),
    )
    op.create_index(op.f("ix_result_papers_dossier_code"), "result_papers", ["dossier_code"], unique=False)
    op.create_index(
        "ix_result_papers_state_assigned",
        "result_papers",
        ["state", "assigned_to", "created_at"],
        unique=False,
    )
    op.create_index("ix_result_papers_state_signed", "result_papers", ["state", "signed_at"], unique=False)
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_result_papers_state_signed", table_name="result_papers")
    op.drop_index("ix_result_papers_state_assigned", table_name="result_papers")
    op.drop_index(op.f("ix_result_papers_dossier_code"), table_name="result_papers")
    op.drop_table("result_papers")


# --- backfill -----------------------------------------------------------------------------------

_files = sa.table(
    "stored_files",
    sa.column("id", sa.String),
    sa.column("dossier_code", sa.String),
    sa.column("filename", sa.String),
    sa.column("media_type", sa.String),
    sa.column("created_at", TIME),
)
_dossiers = sa.table("dossiers", sa.column("code", sa.String), sa.column("document", JSON_DOCUMENT))
_audit = sa.table(
    "audit_log",
    sa.column("id", sa.BigInteger),
    sa.column("actor", sa.String),
    sa.column("action", sa.String),
    sa.column("at", TIME),
    sa.column("details", JSON_DOCUMENT),
)
_papers = sa.table(
    "result_papers",
    *(
        sa.column(name, sa.String)
        for name in (
            "file_id",
            "dossier_code",
            "name",
            "state",
            "approved_file_id",
            "signed_by",
            "issued_file_id",
            "issued_by",
        )
    ),
    *(sa.column(name, TIME) for name in ("signed_at", "issued_at", "created_at", "updated_at")),
)


def _signed_rows(bind: sa.Connection, *actions: str) -> list[tuple[str, datetime, dict[str, Any]]]:
    rows = bind.execute(
        sa.select(_audit.c.actor, _audit.c.at, _audit.c.details)
        .where(_audit.c.action.in_(actions))
        .order_by(_audit.c.id)
    ).all()
    return [(a, at, d) for a, at, d in rows if isinstance(d, dict) and d.get("outcome") == "signed"]


def _backfill(bind: sa.Connection) -> None:
    """One row per unsigned PDF result paper of a dossier, moved on by the audit rows."""
    files = {
        row.id: row
        for row in bind.execute(
            sa.select(_files).where(_files.c.media_type == PDF, _files.c.dossier_code.is_not(None))
        ).all()
    }
    names: dict[str, str] = {}
    for code, document in bind.execute(sa.select(_dossiers.c.code, _dossiers.c.document)).all():
        for result in (document or {}).get("results") or []:
            url = str(result.get("download_url") or "")
            file_id = url.rsplit("/files/", 1)[-1] if "/files/" in url else ""
            info = files.get(file_id)
            if info is not None and info.dossier_code == code and not result.get("signed"):
                names[file_id] = str(result.get("name") or info.filename)
    papers: dict[str, dict[str, Any]] = {}
    for file_id, name in names.items():
        info = files[file_id]
        if info.filename.endswith((".approved.pdf", ".signed.pdf")):
            continue
        papers[file_id] = {
            "file_id": file_id,
            "dossier_code": info.dossier_code,
            "name": name[:500],
            "state": "draft",
            "created_at": info.created_at,
        }
    by_approved: dict[str, dict[str, Any]] = {}
    for actor, at, details in _signed_rows(bind, "signing.results.sign"):
        draft, approved = str(details.get("file_id") or ""), str(details.get("output_file_id") or "")
        if draft not in files or approved not in files or approved in by_approved:
            continue
        paper = papers.get(draft)
        if paper is None:  # signed through the API from a file that was not an uploaded result
            info = files[draft]
            paper = papers[draft] = {
                "file_id": draft,
                "dossier_code": info.dossier_code,
                "name": files[approved].filename[:500],
                "created_at": info.created_at,
            }
        if paper.get("approved_file_id"):
            continue
        paper.update(state="approved", approved_file_id=approved, signed_by=actor[:100], signed_at=at)
        by_approved[approved] = paper
    for actor, at, details in _signed_rows(bind, "signing.results.issue", "signing.results.seal"):
        paper = by_approved.get(str(details.get("file_id") or ""))
        if paper is None or paper["state"] == "issued":
            continue
        issued = str(details.get("output_file_id") or "")
        paper.update(
            state="issued",
            issued_file_id=issued if issued in files else None,
            issued_by=actor[:100],
            issued_at=at,
        )
    now = datetime.now(UTC)
    rows = [
        {
            "approved_file_id": None,
            "signed_by": None,
            "signed_at": None,
            "issued_file_id": None,
            "issued_by": None,
            "issued_at": None,
            **paper,
            "updated_at": now,
        }
        for paper in papers.values()
    ]
    if rows:
        bind.execute(sa.insert(_papers), rows)
