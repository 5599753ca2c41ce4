"""The workflow state of result papers: draft → approved → issued (docs/signing.md §14).

One row per result paper (``result_papers``), keyed by its uploaded draft file, with the
file of each later version: ``approved_file_id`` (the officer's signature) and
``issued_file_id`` (number, date and seal). The officer's desk and the clerk's queue read it
through its indexes, paged.

A signature or an issuance first **claims** the paper with a conditional ``UPDATE … WHERE
state = 'draft'`` (or ``'approved'``): of two officers clicking sign on the same draft, one
update changes the row and the other changes none and is answered 409 before any key is used
(PostgreSQL and SQLite alike; works across processes). The claim ends in the transaction of
the ``signed`` audit row (→ ``approved`` / ``issued``) or, when the signing fails, puts the
paper back (→ ``draft`` / ``approved``: a failed seal voids its register number,
:mod:`hub.services.issuance`, and the paper waits for the clerk again). A claim older than
:data:`STALE_CLAIM` (a process that died while signing) may be taken again.

A draft may be assigned to one officer (an enabled account with the officer role); unassigned
drafts may be taken by any officer holding a personal key. Only an admin reassigns (audited,
``result_paper.assign`` with before/after).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Result, and_, case, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.audit.log import record
from hub.db.account_tables import AccountRole, UserAccount, UserRole
from hub.db.base import utcnow
from hub.db.models import PaperState, ResultPaperRow, StoredFile
from hub.db.session import Database
from hub.storage.files import StoredFileInfo
from schemas.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError

__all__ = ["STALE_CLAIM", "PaperPage", "ResultPaper", "ResultPapers"]

PDF = "application/pdf"
#: A claim older than this is taken to be from a process that died while signing.
STALE_CLAIM = timedelta(minutes=15)
#: Rows per page of a queue.
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class ResultPaper:
    """One result paper as the queues show it."""

    file_id: str
    dossier_code: str
    name: str
    state: PaperState
    assigned_to: str | None
    created_at: datetime
    approved_file_id: str | None = None
    signed_by: str | None = None
    signed_at: datetime | None = None
    issued_file_id: str | None = None
    issued_by: str | None = None
    issued_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PaperPage:
    items: list[ResultPaper]
    page: int
    total: int
    per_page: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


#: The columns of a paper row the queues show (:class:`ResultPaper`'s fields).
_PAPER_FIELDS = tuple(field.name for field in fields(ResultPaper))


def _paper(row: ResultPaperRow) -> ResultPaper:
    """The queues' view of ``row``: the fields :class:`ResultPaper` names, the state as its enum."""
    values = {name: getattr(row, name) for name in _PAPER_FIELDS}
    return ResultPaper(**{**values, "state": PaperState(row.state)})


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE changed (a DML statement's result is a cursor result)."""
    return int(cast(CursorResult[Any], result).rowcount)


def _claim(
    session: Session,
    which: ColumnElement[bool],
    waiting: PaperState,
    claimed: PaperState,
    actor: str,
    now: datetime,
) -> int:
    """Move the paper ``which`` names from ``waiting`` (or from a ``claimed`` state whose claim
    went stale, :data:`STALE_CLAIM`) to ``claimed`` by ``actor``, in one conditional UPDATE;
    the rows changed (1: the claim is hers; 0: someone else holds or finished it)."""
    return _rowcount(
        session.execute(
            update(ResultPaperRow)
            .where(
                which,
                or_(
                    ResultPaperRow.state == waiting.value,
                    and_(
                        ResultPaperRow.state == claimed.value, ResultPaperRow.claimed_at < now - STALE_CLAIM
                    ),
                ),
            )
            .values(state=claimed.value, claimed_by=actor[:100], claimed_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )


def busy_error(file_id: str) -> ConflictError:
    return ConflictError(
        "this document is being signed or issued right now, or was already",
        message_vi="Văn bản này đang được ký hoặc ban hành, hoặc đã được ký",
        details={"file_id": file_id[:40]},
    )


def not_waiting(file_id: str) -> NotFoundError:
    return NotFoundError(
        "no such document on the signing desk (already signed, issued, or not a draft result)",
        message_vi="Không có văn bản này trong danh sách chờ (đã ký, đã ban hành hoặc không phải dự "
        "thảo kết quả)",
        details={"file_id": file_id[:40]},
    )


class ResultPapers:
    """Reads and moves the state of result papers."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- upload and assignment -----------------------------------------------------------------

    def check_signer(self, username: str) -> str:
        """``username`` if it is an enabled account with the officer role, else 422."""
        with self._db.sessions() as session:
            found = session.scalar(
                select(UserAccount.username).where(
                    UserAccount.username == username,
                    UserAccount.disabled_at.is_(None),
                    exists().where(
                        UserRole.user_id == UserAccount.id, UserRole.role == AccountRole.OFFICER.value
                    ),
                )
            )
        if found is None:
            raise InvalidInputError(
                f"signer {username[:64]!r} is not an enabled account with the officer role",
                message_vi="Người ký được giao phải là tài khoản cán bộ có thẩm quyền đang hoạt động",
                details={"field": "signer"},
            )
        return found

    def upload_signer(self, signer: str | None, *, media_type: str, signed: bool) -> str | None:
        """The officer an uploaded paper is assigned to (checked before anything is stored):
        only an unsigned PDF is a draft to sign, so only it takes a signer (else 422)."""
        if signer is None or not signer.strip():
            return None
        if media_type != PDF or signed:
            raise InvalidInputError(
                "only an unsigned PDF result paper (a draft) is assigned to a signer",
                message_vi="Chỉ dự thảo kết quả PDF chưa ký mới được giao người ký",
                details={"field": "signer"},
            )
        return self.check_signer(signer.strip())

    def upload_hook(
        self, dossier_code: str, name: str, *, media_type: str, signed: bool, signer: str | None
    ) -> Callable[[Session, StoredFileInfo], None] | None:
        """What an upload writes about its paper, in the attachment's transaction
        (:func:`hub.services.result_files.store_and_attach`'s ``also``): an unsigned PDF becomes
        a draft waiting for a signature; anything else, nothing."""
        if media_type != PDF or signed:
            return None

        def add(session: Session, stored: StoredFileInfo) -> None:
            self.add_draft(session, stored.id, dossier_code, name, signer)

        return add

    def add_draft(
        self, session: Session, file_id: str, dossier_code: str, name: str, signer: str | None
    ) -> None:
        """Record an uploaded unsigned PDF as a draft (in ``session``'s transaction); a repeated
        upload of the same stored file keeps its row."""
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        now = utcnow()
        session.execute(
            insert(ResultPaperRow)
            .values(
                file_id=file_id,
                dossier_code=dossier_code,
                name=name[:500],
                state=PaperState.DRAFT.value,
                assigned_to=signer,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[ResultPaperRow.file_id])
        )

    def assign(
        self, file_id: str, signer: str | None, *, actor: str, client: str | None = None
    ) -> ResultPaper:
        """Assign waiting draft ``file_id`` to officer ``signer`` (``None``: unassign); audited
        with the assignment before and after."""
        if signer is not None:
            signer = self.check_signer(signer)
        with self._db.transaction() as session:
            row = session.scalar(
                select(ResultPaperRow).where(ResultPaperRow.file_id == file_id).with_for_update()
            )
            if row is None or row.state != PaperState.DRAFT.value:
                raise not_waiting(file_id)
            before = row.assigned_to
            row.assigned_to = signer
            row.updated_at = utcnow()
            record(
                session,
                actor=actor,
                action="result_paper.assign",
                target=f"file:{file_id}",
                details={"dossier_code": row.dossier_code, "file_id": file_id},
                client=client,
                before={"assigned_to": before},
                after={"assigned_to": signer},
            )
            session.flush()
            return _paper(row)

    # --- queues ------------------------------------------------------------------------------------

    def waiting_for(self, username: str | None, *, page: int = 1, per_page: int = PAGE_SIZE) -> PaperPage:
        """Drafts an officer may sign: assigned to ``username`` first, then unassigned ones,
        newest first; never drafts assigned to another officer. ``None`` (an admin): all."""
        table = ResultPaperRow
        where = [table.state == PaperState.DRAFT.value]
        if username is not None:
            where.append(or_(table.assigned_to == username, table.assigned_to.is_(None)))
        mine = case((table.assigned_to.is_(None), 1), else_=0)
        return self._page(
            where, (mine, table.created_at.desc(), table.id.desc()), page=page, per_page=per_page
        )

    def waiting_for_clerk(self, *, page: int = 1, per_page: int = PAGE_SIZE) -> PaperPage:
        """Papers the officer signed, waiting for number, date and seal; newest signature first."""
        table = ResultPaperRow
        return self._page(
            [table.state == PaperState.APPROVED.value],
            (table.signed_at.desc(), table.id.desc()),
            page=page,
            per_page=per_page,
        )

    def _page(
        self, where: list[ColumnElement[bool]], order: tuple[Any, ...], *, page: int, per_page: int
    ) -> PaperPage:
        page = max(1, page)
        with self._db.sessions() as session:
            total = session.scalar(select(func.count()).select_from(ResultPaperRow).where(*where)) or 0
            rows = session.scalars(
                select(ResultPaperRow)
                .where(*where)
                .order_by(*order)
                .limit(per_page)
                .offset((page - 1) * per_page)
            ).all()
            return PaperPage([_paper(row) for row in rows], page, total, per_page)

    def draft(self, file_id: str, username: str | None) -> ResultPaper:
        """Waiting draft ``file_id`` as ``username`` may see it (404 when it is not waiting or
        is assigned to another officer; ``None``: an admin sees every draft)."""
        with self._db.sessions() as session:
            row = session.scalar(select(ResultPaperRow).where(ResultPaperRow.file_id == file_id))
            if (
                row is None
                or row.state != PaperState.DRAFT.value
                or (username is not None and row.assigned_to not in (None, username))
            ):
                raise not_waiting(file_id)
            return _paper(row)

    def paper(self, file_id: str) -> ResultPaper:
        """The paper whose draft is ``file_id``, in any state (404 when none)."""
        with self._db.sessions() as session:
            row = session.scalar(select(ResultPaperRow).where(ResultPaperRow.file_id == file_id))
            if row is None:
                raise not_waiting(file_id)
            return _paper(row)

    def approved(self, approved_file_id: str) -> ResultPaper:
        """The paper whose officer-signed file is ``approved_file_id``, waiting for the clerk."""
        with self._db.sessions() as session:
            row = session.scalar(
                select(ResultPaperRow).where(ResultPaperRow.approved_file_id == approved_file_id)
            )
            if row is None or row.state != PaperState.APPROVED.value:
                raise not_waiting(approved_file_id)
            return _paper(row)

    # --- transitions -------------------------------------------------------------------------------

    def claim_signature(
        self, file_id: str, dossier_code: str, *, actor: str, accounts: frozenset[str]
    ) -> None:
        """Claim draft ``file_id`` for ``actor``'s signature (one conditional UPDATE): 409 when
        it is being signed or was signed, 403 when it is assigned to another officer than
        ``accounts`` (the caller's account usernames). A stored PDF of the dossier that no
        paper names yet (signed through the API without an upload) becomes a paper here."""
        now = utcnow()
        table = ResultPaperRow
        with self._db.transaction() as session:
            row = session.scalar(select(table).where(table.file_id == file_id))
            if row is None:
                if session.scalar(
                    select(table.id).where(
                        or_(table.approved_file_id == file_id, table.issued_file_id == file_id)
                    )
                ):
                    raise busy_error(file_id)
                stored = session.get(StoredFile, file_id)
                name = stored.filename if stored is not None else file_id
                self.add_draft(session, file_id, dossier_code, name, None)
                assigned = None
            else:
                assigned = row.assigned_to
            if assigned is not None and assigned not in accounts:
                raise PermissionDeniedError(
                    f"this draft is assigned to another officer ({assigned})",
                    message_vi=f"Dự thảo này đã được giao cho cán bộ khác ({assigned})",
                    details={"file_id": file_id[:40], "assigned_to": assigned},
                )
            changed = _claim(
                session, table.file_id == file_id, PaperState.DRAFT, PaperState.SIGNING, actor, now
            )
        if changed != 1:
            raise busy_error(file_id)

    def claim_issuance(self, approved_file_id: str, *, actor: str) -> bool:
        """Claim the paper whose officer-signed file is ``approved_file_id`` for issuance: 409
        when it is being issued or was issued; ``False`` when no paper names that file (a file
        signed outside the hub's workflow: issued without a state)."""
        now = utcnow()
        table = ResultPaperRow
        with self._db.transaction() as session:
            known = session.scalar(select(table.id).where(table.approved_file_id == approved_file_id))
            if known is None:
                return False
            changed = _claim(session, table.id == known, PaperState.APPROVED, PaperState.ISSUING, actor, now)
        if changed != 1:
            raise busy_error(approved_file_id)
        return True

    def release_signature(self, file_id: str) -> None:
        """The signature failed: the draft waits again."""
        self._move(ResultPaperRow.file_id == file_id, PaperState.SIGNING, PaperState.DRAFT)

    def release_issuance(self, approved_file_id: str) -> None:
        """The issuance failed (its number voided): the paper waits for the clerk again."""
        self._move(
            ResultPaperRow.approved_file_id == approved_file_id, PaperState.ISSUING, PaperState.APPROVED
        )

    def _move(self, which: ColumnElement[bool], old: PaperState, new: PaperState) -> None:
        with self._db.transaction() as session:
            _transition(session, which, old, new, utcnow())

    @staticmethod
    def approve(file_id: str, approved_file_id: str, actor: str) -> Callable[[Session], None]:
        """The step that ends a signature claim, run in the ``signed`` audit row's transaction."""
        return _ending(ResultPaperRow.file_id == file_id, PaperState.APPROVED, approved_file_id, actor)

    @staticmethod
    def issue(approved_file_id: str, issued_file_id: str, actor: str) -> Callable[[Session], None]:
        """The step that ends an issuance claim, run in the ``signed`` audit row's transaction."""
        return _ending(
            ResultPaperRow.approved_file_id == approved_file_id, PaperState.ISSUED, issued_file_id, actor
        )


#: What ending a claim records, by the state it ends in: the claimed state it leaves, and the
#: columns of the new version's file, who signed it and when.
_ENDED: dict[PaperState, tuple[PaperState, str, str, str]] = {
    PaperState.APPROVED: (PaperState.SIGNING, "approved_file_id", "signed_by", "signed_at"),
    PaperState.ISSUED: (PaperState.ISSUING, "issued_file_id", "issued_by", "issued_at"),
}


def _ending(
    which: ColumnElement[bool], ended: PaperState, new_file_id: str, actor: str
) -> Callable[[Session], None]:
    """The step that moves the claimed paper ``which`` to ``ended`` with ``new_file_id``, the
    version ``actor`` signed (:data:`_ENDED`)."""
    claimed, file_column, by_column, at_column = _ENDED[ended]

    def step(session: Session) -> None:
        now = utcnow()
        values = {file_column: new_file_id, by_column: actor[:100], at_column: now}
        _transition(session, which, claimed, ended, now, **values)

    return step


def _transition(
    session: Session,
    which: ColumnElement[bool],
    old: PaperState,
    new: PaperState,
    now: datetime,
    **values: Any,
) -> None:
    """Move the paper ``which`` from ``old`` to ``new`` (no row moves if it is in another state),
    ending its claim and setting ``values``."""
    session.execute(
        update(ResultPaperRow)
        .where(which, ResultPaperRow.state == old.value)
        .values(state=new.value, claimed_by=None, claimed_at=None, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
