"""The issuance of a signed document: register number, issue date, then the seal (Decree 30/2020).

Order (Art. 14, 15(3), 17; docs/signing.md §13): the competent person has signed; the system
gives the document the next number of its agency's register for the year and today's date,
writes the symbol (``12/GCN-SNNMT``) and the place-and-date line into the number and date
places (:mod:`signing.issuance`, a permitted form fill after her P=2 certification), and only
then does the clerk's seal go on.

The register (:class:`DocumentRegister`) holds one counter per issuing agency and year
(Art. 15(1): numbering restarts at 01 on 1 January) and one line per number given
(Art. 16, "sổ đăng ký văn bản đi"). A number is taken in its own short transaction — one
``INSERT … ON CONFLICT DO UPDATE … RETURNING`` on the counter (PostgreSQL row-locks it, SQLite
has one writer) — so parallel issuances never share a number and none waits on another's
signing. If the fill, the seal or the storage then fails, the number is **not** given back:
its line is marked ``void`` with the reason, and the next document takes the next number.
Holding the counter locked until the seal is stored would serialise every issuance of the
agency behind the slowest time-stamp (up to minutes), and a number rolled back silently would
leave a gap the register cannot explain; a voided line keeps the register complete and the
sequence auditable, which is what Art. 15(1) (unique, sequential numbers per year) and Art. 16
(every outgoing document registered) ask of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.db.models import DocumentRegisterCounter, DocumentRegisterEntry, RegisterState
from hub.db.session import Database
from schemas.codes import validate_agency_code
from schemas.errors import HubError, InvalidInputError
from schemas.timefmt import VN_TZ, now_vn
from signing.issuance import (
    DATE_FIELD,
    NUMBER_FIELD,
    NumberPlaces,
    date_line,
    document_symbol,
    fill_number_places,
    number_place_values,
)

__all__ = [
    "DocumentRegister",
    "IssuanceSpec",
    "IssuedNumber",
    "NumberedDocument",
    "RegisterLine",
    "number_details",
    "numbered",
    "require_filled_places",
    "require_open_places",
]

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class IssuanceSpec:
    """Who issues and how the symbol reads (``[signing.issuance]`` plus the request)."""

    agency_code: str
    agency_abbreviation: str
    document_type: str
    place: str


class IssuedNumber(BaseModel):
    """What the issuance wrote into the document."""

    number: int
    symbol: str
    issued_on: date
    date_line: str
    register_id: int


class RegisterLine(BaseModel):
    """One line of the register, as reports and tests read it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    agency_code: str
    year: int
    number: int
    symbol: str
    issued_on: date
    state: RegisterState
    actor: str
    dossier_code: str | None
    output_file_id: str | None
    output_sha256: str | None
    void_reason: str | None


class DocumentRegister:
    """Per-agency, per-year numbers of issued documents (Decree 30/2020 Art. 15–16)."""

    def __init__(self, db: Database, *, clock: Clock = now_vn) -> None:
        self._db = db
        self._clock = clock

    def reserve(
        self, spec: IssuanceSpec, *, actor: str, source_sha256: str, dossier_code: str | None = None
    ) -> IssuedNumber:
        """Take the next number of ``spec.agency_code`` for this year and register it
        (state ``reserved``); the date is today in Vietnam time."""
        agency = validate_agency_code(spec.agency_code)
        today = self._clock().astimezone(VN_TZ).date()
        counter = DocumentRegisterCounter
        insert = pg_insert if self._db.is_postgres else sqlite_insert
        statement = (
            insert(counter)
            .values(agency_code=agency, year=today.year, last_number=1)
            .on_conflict_do_update(
                index_elements=[counter.agency_code, counter.year],
                set_={"last_number": counter.last_number + 1},
            )
            .returning(counter.last_number)
        )
        with self._db.transaction() as session:
            number = session.execute(statement).scalar_one()
            symbol = document_symbol(number, spec.document_type, spec.agency_abbreviation)
            line = DocumentRegisterEntry(
                agency_code=agency,
                year=today.year,
                number=number,
                symbol=symbol,
                issued_on=today,
                state=RegisterState.RESERVED.value,
                actor=actor[:100],
                dossier_code=dossier_code,
                source_sha256=source_sha256,
            )
            session.add(line)
            session.flush()
            register_id = line.id
        return IssuedNumber(
            number=number,
            symbol=symbol,
            issued_on=today,
            date_line=date_line(spec.place, today),
            register_id=register_id,
        )

    def mark_issued(self, register_id: int, *, file_id: str | None, sha256: str) -> None:
        self._set(register_id, RegisterState.ISSUED, output_file_id=file_id, output_sha256=sha256)

    def mark_void(self, register_id: int, reason: str) -> None:
        self._set(register_id, RegisterState.VOID, void_reason=reason[:1000])

    def _set(self, register_id: int, state: RegisterState, **values: object) -> None:
        with self._db.transaction() as session:
            session.execute(
                update(DocumentRegisterEntry)
                .where(
                    DocumentRegisterEntry.id == register_id,
                    DocumentRegisterEntry.state == RegisterState.RESERVED.value,
                )
                .values(state=state.value, updated_at=self._clock(), **values)
            )

    def lines(self, agency_code: str, year: int) -> list[RegisterLine]:
        """The register of one agency and year, in number order."""
        agency = validate_agency_code(agency_code)
        with self._db.sessions() as session:
            rows = session.scalars(
                select(DocumentRegisterEntry)
                .where(DocumentRegisterEntry.agency_code == agency, DocumentRegisterEntry.year == year)
                .order_by(DocumentRegisterEntry.number)
            ).all()
            return [RegisterLine.model_validate(row) for row in rows]


def number_details(number: IssuedNumber) -> dict[str, Any]:
    """The audit details of a register number."""
    return {
        "document_number": number.symbol,
        "issued_on": number.issued_on.isoformat(),
        "register_id": number.register_id,
    }


@dataclass
class NumberedDocument:
    """The document with its number and date filled; :meth:`issued` closes the register line."""

    number: IssuedNumber
    data: bytes
    _register: DocumentRegister
    _done: bool = False

    def issued(self, *, file_id: str | None, sha256: str) -> None:
        """The sealed document is stored: the number is used."""
        self._register.mark_issued(self.number.register_id, file_id=file_id, sha256=sha256)
        self._done = True


def _places_error(message: str, message_vi: str, reason: str, **details: object) -> InvalidInputError:
    return InvalidInputError(message, message_vi=message_vi, details={"reason": reason, **details})


def require_open_places(data: bytes) -> None:
    """The document has both places, still empty (else 422: nothing is numbered)."""
    values = number_place_values(data)
    missing = [name for name in (NUMBER_FIELD, DATE_FIELD) if name not in values]
    if missing:
        raise _places_error(
            f"the document has no number/date place {', '.join(missing)}; it must be created "
            "before the competent person signs",
            "Văn bản chưa có vị trí ghi số, ký hiệu và ngày ban hành (phải tạo trước khi người có "
            "thẩm quyền ký)",
            "number_places_missing",
            fields=missing,
        )
    filled = [name for name, value in values.items() if value]
    if filled:
        raise _places_error(
            "the document already carries a number and date",
            "Văn bản đã được cấp số, ký hiệu và ngày ban hành",
            "already_numbered",
            fields=filled,
        )


def require_filled_places(data: bytes) -> None:
    """The seal goes on last: the number and date must be written first (else 422)."""
    values = number_place_values(data)
    empty = [name for name in (NUMBER_FIELD, DATE_FIELD) if not values.get(name)]
    if empty:
        raise _places_error(
            "the document has no number and issue date yet: issue it (number, date, seal) "
            "through /results/issue",
            "Văn bản chưa được cấp số, ký hiệu và ngày ban hành; không đóng dấu trước khi cấp số",
            "document_number_missing",
            fields=empty,
        )


@contextmanager
def numbered(
    register: DocumentRegister,
    data: bytes,
    spec: IssuanceSpec,
    *,
    actor: str,
    source_sha256: str,
    dossier_code: str | None = None,
    places: NumberPlaces | None = None,
    on_number: Callable[[IssuedNumber], None] | None = None,
    on_void: Callable[[IssuedNumber, str], None] | None = None,
) -> Iterator[NumberedDocument]:
    """Take a number, fill the number and date places, and yield the document to seal.

    The caller seals and stores ``document.data`` and calls ``document.issued(...)``; if it
    raises (or returns without that) the register line is voided with the reason and the
    number is never given again. ``on_number`` / ``on_void`` see each step (the audit log).
    """
    require_open_places(data)
    number = register.reserve(spec, actor=actor, source_sha256=source_sha256, dossier_code=dossier_code)
    if on_number is not None:
        on_number(number)
    document: NumberedDocument | None = None
    try:
        filled = fill_number_places(
            data, {NUMBER_FIELD: f"Số: {number.symbol}", DATE_FIELD: number.date_line}, places
        )
        document = NumberedDocument(number, filled, register)
        yield document
    except BaseException as exc:
        code = exc.code if isinstance(exc, HubError) else type(exc).__name__
        _void(register, number, f"{code}: {exc}", on_void)
        raise
    if not document._done:
        _void(register, number, "not completed", on_void)


def _void(
    register: DocumentRegister,
    number: IssuedNumber,
    reason: str,
    on_void: Callable[[IssuedNumber, str], None] | None,
) -> None:
    register.mark_void(number.register_id, reason)
    if on_void is not None:
        on_void(number, reason)
