"""Status lookup for citizens (docs/portal.md §8; Ninh Bình Decision 163/2025 Art. 15(6)).

A lookup needs the dossier code and, when ``lookup.require_owner_id`` is on, the owner's ID
number (Thanh Hóa's ``MHS`` + ``SGT``). Unknown codes, malformed codes, missing and wrong ID
numbers all give the same :class:`NotFoundError`, and the ID check runs in constant time
against a dummy digest when the code is unknown, so a caller cannot probe which codes exist.
The answer carries no personal data: status, dates, processing steps (officer names are
public-service data, not the applicant's).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select

from hub.config import LookupSettings
from hub.db.models import DossierRow
from hub.db.session import Database
from hub.services.intake import owner_id_digest
from schemas.codes import validate_dossier_code
from schemas.dossier import Dossier
from schemas.errors import InvalidInputError, NotFoundError
from schemas.timefmt import now_vn

_DUMMY_DIGEST = hashlib.sha256(b"no such dossier").hexdigest()


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
    def __init__(self, db: Database, settings: LookupSettings) -> None:
        self._db = db
        self._settings = settings

    @property
    def requires_owner_id(self) -> bool:
        return self._settings.require_owner_id

    def _load(self, code: str) -> tuple[Dossier, str | None] | None:
        try:
            normalised = validate_dossier_code(code)
        except InvalidInputError:
            return None
        with self._db.sessions() as session:
            row = session.scalar(select(DossierRow).where(DossierRow.code == normalised))
            if row is None:
                return None
            return Dossier.model_validate(row.document), row.owner_id_hash

    def lookup(self, code: str, id_number: str | None) -> LookupView:
        """The public view of a dossier, or the one indistinguishable "not found"."""
        found = self._load(code)
        given = (id_number or "").strip()
        stored = found[1] if found else None
        if given or self._settings.require_owner_id:
            expected = stored or _DUMMY_DIGEST
            matches = hmac.compare_digest(owner_id_digest(given), expected)
            if not given or stored is None or not matches:
                raise lookup_not_found()
        if found is None:
            raise lookup_not_found()
        return view_of(found[0])

    def dossier_for_sms(self, code: str) -> Dossier | None:
        """SMS lookups carry only the code (OpenCPS ``SMSGateway``); replies hold no personal data."""
        found = self._load(code)
        return found[0] if found else None
