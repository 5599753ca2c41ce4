"""Read the audit log: filters, keyset pagination, CSV and JSON Lines exports.

Used by ``GET /api/v1/audit`` and ``hub audit list|export``. Pages go newest first and are
keyed on ``id`` (``cursor``: the last id seen; no OFFSET, so a page costs the same deep in the
log); exports go oldest first (chain order) and are streamed page by page. Personal data in
``details``, ``before`` and ``after`` is masked (:func:`schemas.masking.mask_json`,
docs/security.md §3); the stored rows, and so the hashes, keep it in clear. A CSV cell that a
spreadsheet would run as a formula is prefixed with ``'`` (OWASP CSV Injection).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, String, and_, cast, not_, or_, select

from hub.audit.log import record
from hub.db.models import AuditEntry
from hub.db.session import Database
from schemas.errors import InvalidInputError
from schemas.masking import mask_json

#: Largest page :func:`list_entries` answers.
MAX_PAGE = 500
#: Rows an export reads per query.
EXPORT_PAGE = 1000
#: Columns of the CSV export, in order.
CSV_COLUMNS = (
    "id",
    "at",
    "actor",
    "action",
    "client",
    "target",
    "details",
    "before",
    "after",
    "prev_hash",
    "hash",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Actions that record a refusal or a failure whatever their details say (``outcome`` filter).
FAILURE_ACTIONS = ("account.login_failed", "account.locked", "auth.throttled")
#: ``details.outcome`` values of a refusal or a failure (signing rows: ``refused``, ``failed``).
FAILURE_OUTCOMES = ("refused", "failed")


class AuditFilter(BaseModel):
    """Which rows: every given condition holds (``action`` is a prefix: ``dlq.`` or ``dlq.retry``)."""

    actor: str | None = Field(default=None, max_length=100, description="Exactly this actor")
    action: str | None = Field(default=None, max_length=60, description="Action prefix, e.g. `dlq.`")
    target: str | None = Field(default=None, max_length=200, description="Exactly this target")
    since: datetime | None = Field(default=None, description="At or after (ISO 8601 with offset)")
    until: datetime | None = Field(default=None, description="Before (ISO 8601 with offset)")
    text: str | None = Field(default=None, max_length=200, description="Text in the details")
    dossier: str | None = Field(
        default=None, max_length=64, description="The dossier: the target or details.dossier_code"
    )
    outcome: Literal["success", "failure"] | None = Field(
        default=None,
        description="`failure`: refused logins, locks, throttling, refused or failed signing",
    )

    def check(self) -> AuditFilter:
        for name in ("actor", "action", "target", "text", "dossier"):
            value = getattr(self, name)
            if value and any(ord(char) < 0x20 or char == "\x7f" for char in value):
                # PostgreSQL text cannot hold NUL: refused on both backends alike
                raise InvalidInputError(
                    f"{name} contains control characters",
                    message_vi=f"{name} chứa ký tự điều khiển không hợp lệ",
                    details={"field": name},
                )
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InvalidInputError(
                    f"{name} needs a UTC offset (ISO 8601, e.g. 2025-01-31T08:00:00+07:00)",
                    message_vi=f"{name} phải có múi giờ",
                    details={"field": name},
                )
        return self


#: A JSON object of an audit row as operators see it: personal data masked (docs/security.md §3).
MaskedJson = Annotated[dict[str, Any], AfterValidator(mask_json)]


class AuditRecord(BaseModel):
    """One audit row as operators see it (personal data masked)."""

    model_config = ConfigDict(from_attributes=True)  # read from an AuditEntry: the fields are its columns

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    client: str | None
    details: MaskedJson
    before: MaskedJson | None
    after: MaskedJson | None
    prev_hash: str | None
    hash: str | None


class AuditPage(BaseModel):
    items: list[AuditRecord]
    #: Pass as ``cursor`` for the next (older) page; ``None``: this was the last.
    next_cursor: int | None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(flt: AuditFilter) -> Select[AuditEntry]:
    flt.check()
    statement = select(AuditEntry)
    if flt.actor:
        statement = statement.where(AuditEntry.actor == flt.actor)
    if flt.action:
        statement = statement.where(AuditEntry.action.startswith(flt.action, autoescape=True))
    if flt.target:
        statement = statement.where(AuditEntry.target == flt.target)
    if flt.since is not None:
        statement = statement.where(AuditEntry.at >= flt.since)
    if flt.until is not None:
        statement = statement.where(AuditEntry.at < flt.until)
    if flt.text:
        details = cast(AuditEntry.details, String)
        # SQLite stores JSON as text with non-ASCII characters escaped (\uXXXX): the text is
        # looked for as given and in that form, so Vietnamese words match on both backends.
        forms = {flt.text, json.dumps(flt.text)[1:-1]}
        statement = statement.where(
            or_(*(details.ilike(f"%{_escape_like(form)}%", escape="\\") for form in sorted(forms)))
        )
    if flt.dossier:
        statement = statement.where(
            or_(
                AuditEntry.target == flt.dossier,
                AuditEntry.details["dossier_code"].as_string() == flt.dossier,
            )
        )
    if flt.outcome is not None:
        failed = _failure()
        statement = statement.where(failed if flt.outcome == "failure" else not_(failed))
    return statement


def _failure() -> ColumnElement[bool]:
    """Rows recording a refusal or a failure (:data:`FAILURE_ACTIONS`, :data:`FAILURE_OUTCOMES`)."""
    outcome = AuditEntry.details["outcome"].as_string()
    return or_(
        AuditEntry.action.in_(FAILURE_ACTIONS),
        and_(outcome.is_not(None), outcome.in_(FAILURE_OUTCOMES)),
    )


def is_failure(entry: AuditRecord) -> bool:
    """What :func:`_failure` selects, for a row already read."""
    return entry.action in FAILURE_ACTIONS or entry.details.get("outcome") in FAILURE_OUTCOMES


def list_entries(db: Database, flt: AuditFilter, *, cursor: int | None = None, limit: int = 100) -> AuditPage:
    """One page, newest first, of rows older than ``cursor`` (an id)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit must be 1..{MAX_PAGE}", details={"field": "limit"})
    statement = _filtered(flt)
    if cursor is not None:
        statement = statement.where(AuditEntry.id < cursor)
    with db.sessions() as session:
        rows = session.scalars(statement.order_by(AuditEntry.id.desc()).limit(limit + 1)).all()
    items = [AuditRecord.model_validate(row) for row in rows[:limit]]
    return AuditPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


def iter_entries(db: Database, flt: AuditFilter) -> Iterator[AuditRecord]:
    """Every matching row, oldest first, read :data:`EXPORT_PAGE` at a time."""
    statement, after = _filtered(flt), 0
    while True:
        with db.sessions() as session:
            rows = session.scalars(
                statement.where(AuditEntry.id > after).order_by(AuditEntry.id).limit(EXPORT_PAGE)
            ).all()
        for row in rows:
            yield AuditRecord.model_validate(row)
        if len(rows) < EXPORT_PAGE:
            return
        after = rows[-1].id


def export_jsonl(db: Database, flt: AuditFilter) -> Iterator[str]:
    """JSON Lines (one object a line, UTF-8), streamed."""
    for entry in iter_entries(db, flt):
        yield entry.model_dump_json() + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_csv(db: Database, flt: AuditFilter) -> Iterator[str]:
    """CSV (RFC 4180, header row, JSON in the details/before/after cells), streamed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(values: list[str]) -> str:
        writer.writerow(values)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(list(CSV_COLUMNS))
    for entry in iter_entries(db, flt):
        data = entry.model_dump(mode="json")
        yield line([_cell(data[name]) if name != "id" else str(entry.id) for name in CSV_COLUMNS])


def record_export(db: Database, flt: AuditFilter, fmt: str, *, actor: str) -> None:
    """An ``audit.export`` row naming who exported which rows (the filter) in which format:
    reading the log in bulk is itself an action worth recording (OWASP Logging Cheat Sheet)."""
    with db.transaction() as session:
        record(
            session,
            actor=actor,
            action="audit.export",
            target="audit_log",
            details={"format": fmt, "filter": flt.model_dump(mode="json", exclude_none=True)},
        )
