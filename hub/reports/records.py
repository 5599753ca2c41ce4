"""The records of the one-stop procedure (docs/reports.md §7): the tracking book of a period
("Sổ theo dõi hồ sơ", Circular 01/2018/TT-VPCP Mẫu 06; Circular 03/2025/TT-VPCP Mẫu 07) and a
dossier's control slip ("Phiếu kiểm soát quá trình giải quyết hồ sơ", Mẫu 05; Mẫu 06).

Rows come from the stored dossiers; early / on time / late is always
:func:`hub.reports.ontime.classify` (the statistics' rule), never a second reading of it. The
columns each record prints are data (:class:`RecordLayout`, ``records_layout.json`` or the file
named by ``reports.records_layout_file``), because the official columns are not verified here.
Personal data: the applicant's name only; ID numbers are never printed, and free text (notes,
step contents) goes through :func:`schemas.masking.mask_pii`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from hub.db.models import DossierRow
from hub.reports.bundled import load_data_file
from hub.reports.models import ReportDossier
from hub.reports.ontime import Bucket, DayRules, DossierFacts, EndKind, Period, classify, facts_of
from hub.reports.query import DayRange
from schemas.dossier import Dossier, ProcessingStep
from schemas.errors import ConfigurationError, InvalidInputError
from schemas.masking import mask_pii
from schemas.status import DossierStatus
from schemas.timefmt import VN_TZ

BUNDLED_LAYOUT = "records_layout.json"

#: Most dossiers one tracking book lists (a busy department's year is far below).
MAX_BOOK_ROWS = 50_000

#: How each bucket is written in the "Kết quả" column (the wording of the forms: trước hạn,
#: đúng hạn, quá hạn; the other buckets say where the dossier stands).
BUCKET_LABELS: dict[Bucket, str] = {
    Bucket.EARLY: "Trước hạn",
    Bucket.ON_TIME: "Đúng hạn",
    Bucket.LATE: "Quá hạn",
    Bucket.REFUSED: "Không được tiếp nhận",
    Bucket.WITHDRAWN: "Rút hồ sơ, dừng xử lý",
    Bucket.SUPPLEMENT: "Chờ bổ sung",
    Bucket.WITHIN_DUE: "Đang giải quyết (trong hạn)",
    Bucket.OVERDUE: "Đang giải quyết (quá hạn)",
}

#: Fields a tracking-book column may print (:class:`BookRow`).
BOOK_FIELDS = frozenset(
    {
        "seq",
        "code",
        "procedure",
        "owner",
        "processing_agency",
        "channel",
        "received_at",
        "due_at",
        "transferred_at",
        "result_at",
        "returned_at",
        "outcome",
        "note",
    }
)
#: Fields a control-slip column may print (:class:`HandOver`).
SLIP_FIELDS = frozenset({"seq", "sender", "receiver", "at", "content", "due_at", "outcome", "note"})


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def vn_time(value: datetime | None, *, with_time: bool = True) -> str:
    """``dd/mm/yyyy HH:MM`` in Vietnam time (blank for no time)."""
    if value is None:
        return ""
    local = value.astimezone(VN_TZ)
    return f"{local:%d/%m/%Y %H:%M}" if with_time else f"{local:%d/%m/%Y}"


def cell_text(value: object) -> str:
    """A table cell: times in Vietnam time, anything else as NFC text."""
    if isinstance(value, datetime) or value is None:
        return vn_time(value)
    return nfc(str(value))


# --- layout -----------------------------------------------------------------------------------


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str
    heading: str = Field(min_length=1, max_length=200)
    width: float = Field(gt=0, le=300)
    """Relative width (the columns share the page width in these proportions)."""
    align: Literal["L", "C", "R"] = "L"


class RecordForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    form: str = ""
    """Which official form this renders (printed under the title)."""
    title: str = Field(min_length=1)
    verified: bool = False
    """``false``: the column set is not checked against the official text (printed as a note)."""
    orientation: Literal["L", "P"] = "L"
    paper: Literal["A4", "A5"] = "A4"
    """The form's paper (Circular 01/2018/TT-VPCP: forms 01–05 on A5, form 06 on A4;
    docs/reports.md §7.1)."""
    columns: list[Column] = Field(min_length=1, max_length=30)


class RecordLayout(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: str = Field(default="", alias="_source")
    tracking_book: RecordForm
    control_slip: RecordForm

    @classmethod
    def load(cls, path: Path | None = None) -> RecordLayout:
        """The layout of ``path``, or the bundled one; unknown fields are a configuration error."""
        layout = load_data_file(cls, path, BUNDLED_LAYOUT, "records layout")
        for form, allowed in ((layout.tracking_book, BOOK_FIELDS), (layout.control_slip, SLIP_FIELDS)):
            unknown = sorted({c.field for c in form.columns} - allowed)
            if unknown:
                raise ConfigurationError(
                    f"records layout {path or BUNDLED_LAYOUT}: {form.title}: unknown fields {unknown}; "
                    f"known: {sorted(allowed)}"
                )
        return layout


# --- tracking book ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BookRow:
    """One dossier received in the period, as the tracking book writes it."""

    seq: int
    code: str
    procedure: str
    owner: str
    processing_agency: str
    channel: str
    received_at: datetime
    due_at: datetime | None
    transferred_at: datetime | None
    result_at: datetime | None
    returned_at: datetime | None
    bucket: Bucket
    note: str

    @property
    def outcome(self) -> str:
        return BUCKET_LABELS[self.bucket]

    def text(self, name: str) -> str:
        return cell_text(getattr(self, name))


@dataclass(frozen=True, slots=True)
class TrackingBook:
    window: DayRange
    as_of: datetime
    agency_code: str | None
    rows: list[BookRow]


_CHANNELS = {1: "Trực tiếp", 2: "Trực tuyến", 3: "Bưu chính công ích"}


def _late_entry_notes(steps: Sequence[ProcessingStep]) -> list[str]:
    """The late-entry marks (docs/architecture.md, "Late entries"): entered when, by whom, why."""
    return [
        f"Nhập bổ sung {vn_time(s.late_entry.entered_at)} ({s.late_entry.entered_by}): {s.late_entry.reason}"
        for s in steps
        if s.late_entry is not None
    ]


def book_row(seq: int, dossier: Dossier, period: Period, rules: DayRules, now: datetime) -> BookRow:
    """The book's row of ``dossier``: its outcome is :func:`classify` as of ``period.end``.

    Transferred: the first step in status 4 (the hand-over to the competent office,
    docs/portal.md §2.2); result: the end of processing when it finished (9, 10); returned:
    ``returned_at``.
    """
    facts = facts_of(dossier)
    steps = sorted(dossier.steps, key=lambda s: s.at)
    transferred = next((s.at for s in steps if s.status is DossierStatus.PROCESSING), None)
    notes = _late_entry_notes(steps)
    if dossier.note:
        notes.insert(0, dossier.note)
    redated = [s for s in dossier.supplements if s.new_due_at is not None]
    notes.extend(f"Hẹn lại ngày trả: {vn_time(s.new_due_at)}" for s in redated)
    return BookRow(
        seq=seq,
        code=dossier.code,
        procedure=nfc(dossier.procedure_name or dossier.procedure_code),
        owner=nfc(dossier.owner.name),
        processing_agency=nfc(dossier.processing_agency or ""),
        channel=_CHANNELS.get(int(dossier.channel), ""),
        received_at=dossier.received_at,
        due_at=facts.due_at,
        transferred_at=transferred,
        result_at=facts.end_at if facts.end_kind is EndKind.FINISHED else None,
        returned_at=dossier.returned_at,
        bucket=classify(facts, period, rules, now),
        note=nfc(mask_pii("; ".join(notes))),
    )


def tracking_book(
    connection: Connection,
    window: DayRange,
    rules: DayRules,
    now: datetime,
    *,
    agency_code: str | None = None,
) -> TrackingBook:
    """Every dossier received in ``window`` (optionally one receiving agency), in receipt order;
    statuses stand as of now (the book is kept up to date as dossiers progress)."""
    period = window.period()
    r = ReportDossier.__table__.c
    statement = (
        select(DossierRow.document)
        .join(ReportDossier, ReportDossier.code == DossierRow.code)
        .where(r.received_at >= period.start, r.received_at < period.end)
        .order_by(r.received_at, r.code)
        .limit(MAX_BOOK_ROWS + 1)
    )
    if agency_code is not None:
        statement = statement.where(r.agency_code == agency_code)
    documents = connection.execute(statement).scalars().all()
    if len(documents) > MAX_BOOK_ROWS:
        raise InvalidInputError(
            f"more than {MAX_BOOK_ROWS} dossiers in the period: ask for a shorter one",
            message_vi=f"Kỳ đã chọn có hơn {MAX_BOOK_ROWS} hồ sơ: chọn kỳ ngắn hơn",
            details={"field": "period"},
        )
    as_of = Period(start=period.start, end=max(now, period.start))
    rows = [
        book_row(seq, Dossier.model_validate(document), as_of, rules, now)
        for seq, document in enumerate(documents, start=1)
    ]
    return TrackingBook(window=window, as_of=now, agency_code=agency_code, rows=rows)


# --- control slip -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandOver:
    """One hand-over of the control slip: the previous holder gives the dossier to this step's."""

    seq: int
    sender: str
    receiver: str
    at: datetime
    content: str
    due_at: datetime | None
    """The sender's step due time (``NgayKetThucTheoQuyDinh``), if it had one."""
    bucket: Bucket | None
    """The sender's part: early / on time / late; ``None`` without a due time."""
    note: str

    @property
    def outcome(self) -> str:
        return "" if self.bucket is None else BUCKET_LABELS[self.bucket]

    def text(self, name: str) -> str:
        return cell_text(getattr(self, name))


@dataclass(frozen=True, slots=True)
class ControlSlip:
    dossier: Dossier
    due_at: datetime | None
    bucket: Bucket
    """The whole dossier's outcome so far (the tracking book's)."""
    hand_overs: list[HandOver] = field(default_factory=list)


#: Who holds a dossier before its first recorded step: the one-stop unit that received it.
RECEPTION = "Bộ phận Tiếp nhận và Trả kết quả"


def _party(step: ProcessingStep | None, agency: str) -> str:
    if step is None:
        return f"{RECEPTION} ({agency})"
    who = ", ".join(x for x in (step.handler, step.position) if x)
    return nfc(f"{step.department}: {who}" if step.department else who)


def _step_bucket(
    dossier: Dossier, sender: ProcessingStep | None, at: datetime, rules: DayRules
) -> Bucket | None:
    """The sender's part measured by the statistics' rule: its step ``finished`` at the
    hand-over, compared with its own due time (docs/reports.md §7.2; assumption)."""
    if sender is None or sender.step_due_at is None:
        return None
    start = sender.started_at or sender.at
    facts = DossierFacts(
        code=dossier.code,
        agency_code=dossier.agency_code,
        procedure_code=dossier.procedure_code,
        procedure_name=None,
        field_code=None,
        field_name=None,
        channel=int(dossier.channel),
        received_at=min(start, at),
        due_at=sender.step_due_at,
        end_at=at,
        end_kind=EndKind.FINISHED,
        supplement_from=None,
        supplement_until=None,
    )
    period = Period(start=min(start, at), end=at + timedelta(microseconds=1))
    return classify(facts, period, rules, at)


def control_slip(dossier: Dossier, rules: DayRules, now: datetime) -> ControlSlip:
    """Each recorded step is a hand-over: from the previous step's handler and department (the
    receiving unit for the first) to this step's, at the step's time (docs/reports.md §7.2)."""
    steps = sorted(dossier.steps, key=lambda s: s.at)
    hand_overs: list[HandOver] = []
    previous: ProcessingStep | None = None
    for seq, step in enumerate(steps, start=1):
        notes = _late_entry_notes([step])
        hand_overs.append(
            HandOver(
                seq=seq,
                sender=_party(previous, dossier.agency_code),
                receiver=_party(step, dossier.agency_code),
                at=step.at,
                content=nfc(mask_pii(f"{step.status.label_vi}: {step.content}")),
                due_at=previous.step_due_at if previous is not None else None,
                bucket=_step_bucket(dossier, previous, step.at, rules),
                note=nfc(mask_pii("; ".join(notes))),
            )
        )
        previous = step
    facts = facts_of(dossier)
    bucket = classify(facts, Period(start=dossier.received_at, end=max(now, dossier.received_at)), rules, now)
    return ControlSlip(dossier=dossier, due_at=facts.due_at, bucket=bucket, hand_overs=hand_overs)
