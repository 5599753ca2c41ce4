"""Status lookup for citizens (docs/portal.md §8; Ninh Bình Decision 163/2025 Art. 15(6)).

A lookup needs the dossier code and, when ``lookup.require_owner_id`` is on, the owner's ID
number (Thanh Hóa's ``MHS`` + ``SGT``). Unknown codes, malformed codes, missing and wrong ID
numbers all give the same :class:`NotFoundError` after the same work (:class:`LookupService`),
so a caller can tell neither from the answer nor from its time which codes exist.
The answer carries no personal data: status, dates, processing steps (officer names are
public-service data, not the applicant's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from hub.config import LookupSettings
from hub.db.models import DossierRow, LookupCount
from hub.db.session import Database
from hub.lookup.owner_hash import OwnerIdHasher
from hub.lookup.ratelimit import CodeAttemptLimiter
from schemas.codes import validate_dossier_code
from schemas.dossier import Dossier
from schemas.errors import InvalidInputError, NotFoundError, TooManyRequestsError
from schemas.timefmt import VN_TZ, now_vn

if TYPE_CHECKING:
    from hub.telemetry.metrics import HubMetrics

log = logging.getLogger("hub.lookup")


class LookupOutcome(StrEnum):
    """How a lookup was answered, as the usage report counts it (docs/reports.md §8.4)."""

    FOUND = "found"
    NOT_FOUND = "not_found"
    LIMITED = "limited"
    """Refused by a limit (too many wrong ID numbers for the code)."""
    INVALID = "invalid"
    """An SMS not in the ``<KEYWORD> <code>`` form."""
    OPENED = "opened"
    """The lookup page opened from a dossier's QR code (the ID number is asked next)."""


class StepView(BaseModel):
    at: datetime
    status: int
    status_label_vi: str
    handler: str
    position: str | None
    department: str | None
    content: str


class LookupView(BaseModel):
    code: str
    status: int
    status_label_vi: str
    status_label_en: str
    procedure_code: str
    procedure_name: str | None
    received_at: datetime
    due_at: datetime | None
    finished_at: datetime | None
    returned_at: datetime | None
    late: bool
    """Past the due date without a result, or finished after it (§2.3, §3.9)."""
    finished_on_time: bool | None
    processing_agency: str | None
    steps: list[StepView]


def lookup_not_found() -> NotFoundError:
    return NotFoundError(
        "no dossier matches this code and ID number",
        message_vi="không tìm thấy hồ sơ với mã hồ sơ và số giấy tờ đã nhập",
    )


def view_of(dossier: Dossier, now: datetime | None = None) -> LookupView:
    now = now or now_vn()
    on_time = dossier.finished_on_time()
    return LookupView(
        code=dossier.code,
        status=dossier.status.value,
        status_label_vi=dossier.status.label_vi,
        status_label_en=dossier.status.label_en,
        procedure_code=dossier.procedure_code,
        procedure_name=dossier.procedure_name,
        received_at=dossier.received_at,
        due_at=dossier.due_at,
        finished_at=dossier.finished_at,
        returned_at=dossier.returned_at,
        late=dossier.is_late(now) or on_time is False,
        finished_on_time=on_time,
        processing_agency=dossier.processing_agency,
        steps=[
            StepView(
                at=step.at,
                status=step.status.value,
                status_label_vi=step.status.label_vi,
                handler=step.handler,
                position=step.position,
                department=step.department,
                content=step.content,
            )
            for step in sorted(dossier.steps, key=lambda s: s.at)
        ],
    )


class LookupService:
    """Lookups by code and owner's ID number, doing the same work whether the code exists.

    The ID check reads only the stored digest, through a scalar subquery that returns one row
    (``NULL`` for an unknown or malformed code), and compares it with
    :meth:`OwnerIdHasher.matches`; the dossier itself is loaded only once the number matched.
    A wrong number costs the same for a dossier with a hundred steps as for no dossier at all
    (docs/security.md §7; ``tests/lookup/test_lookup_security.py`` counts it).
    """

    def __init__(
        self,
        db: Database,
        settings: LookupSettings,
        owner_ids: OwnerIdHasher,
        *,
        metrics: HubMetrics | None = None,
        clock: Callable[[], datetime] = now_vn,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._clock = clock
        self._settings = settings
        self._owner_ids = owner_ids
        self._attempts = CodeAttemptLimiter(settings.failed_attempts_per_code_per_hour)

    @property
    def requires_owner_id(self) -> bool:
        return self._settings.require_owner_id

    @staticmethod
    def _normalised(code: str) -> str | None:
        try:
            return validate_dossier_code(code)
        except InvalidInputError:
            return None

    def _load(self, code: str | None) -> Dossier | None:
        if code is None:
            return None
        with self._db.sessions() as session:
            document = session.scalar(select(DossierRow.document).where(DossierRow.code == code))
        return None if document is None else Dossier.model_validate(document)

    def _stored_digest(self, code: str) -> str | None:
        """The owner's digest for ``code``: always one statement returning one row."""
        stored = select(DossierRow.owner_id_hash).where(DossierRow.code == code).scalar_subquery()
        with self._db.sessions() as session:
            digest: str | None = session.execute(select(stored)).scalar_one()
        return digest

    def record(self, channel: str, outcome: LookupOutcome, *, detail: str | None = None) -> None:
        """Count one lookup: channel ``api``, ``web``, ``qr`` (the page opened from a dossier's
        QR link) or ``sms``. Persisted per Vietnam-time day for the usage report (one upsert,
        the same statement whatever the outcome), and in ``hub_lookup_requests_total`` with
        ``detail`` (the SMS reply kind) as its outcome label when given."""
        if self._metrics is not None:
            self._metrics.observe_lookup(channel, detail or outcome.value)
        insert = postgresql.insert if self._db.is_postgres else sqlite.insert
        statement = (
            insert(LookupCount)
            .values(
                day=self._clock().astimezone(VN_TZ).date(), channel=channel, outcome=outcome.value, count=1
            )
            .on_conflict_do_update(
                index_elements=[LookupCount.day, LookupCount.channel, LookupCount.outcome],
                set_={"count": LookupCount.count + 1},
            )
        )
        try:
            with self._db.transaction() as session:
                session.execute(statement)
        except SQLAlchemyError as exc:  # the citizen still gets the answer; the metric counted it
            log.warning("lookup not counted for the usage report: %s", exc)

    def lookup(self, code: str, id_number: str | None, *, channel: str = "api") -> LookupView:
        """The public view of a dossier, or the one indistinguishable "not found".

        Raises :class:`TooManyRequestsError` once ``code`` has had too many wrong numbers
        (``lookup.failed_attempts_per_code_per_hour``), existing or not. Counted per
        ``channel`` and outcome (``found``, ``not_found``, ``limited``).
        """
        try:
            view = self._lookup(code, id_number)
        except NotFoundError:
            self.record(channel, LookupOutcome.NOT_FOUND)
            raise
        except TooManyRequestsError:
            self.record(channel, LookupOutcome.LIMITED)
            raise
        self.record(channel, LookupOutcome.FOUND)
        return view

    def _lookup(self, code: str, id_number: str | None) -> LookupView:
        normalised = self._normalised(code)
        given = (id_number or "").strip()
        if given or self._settings.require_owner_id:
            key = normalised or code.strip().upper()[:64]
            self._attempts.check(key)
            if not self._owner_ids.matches(given, self._stored_digest(key)):
                self._attempts.failed(key)
                raise lookup_not_found()
        found = self._load(normalised)
        if found is None:
            raise lookup_not_found()
        return view_of(found)

    def dossier_for_sms(self, code: str) -> Dossier | None:
        """SMS lookups carry only the code (OpenCPS ``SMSGateway``); replies hold no personal data."""
        return self._load(self._normalised(code))
