"""Commands the department's one-stop software sends to the hub (inbound changes).

Each command carries an optional idempotency key; the dossier's ``version`` makes repeated
pushes of the same state harmless (a create or update with a version the hub already has
creates nothing new).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from schemas.dossier import Dossier, Model, ProcessingStep, ResultDocument
from schemas.status import DossierStatus
from schemas.text import VnName, VnText
from schemas.timefmt import HubTime


class LateEntry(Model):
    """Marks a change as a late entry: an event that happened at its ``at`` (in the past, within
    ``intake.late_entry_window_days``) while the hub or the department's software was down, and
    is entered now (Decision 692/QĐ-SNN Art. 13.2; docs/architecture.md, "Late entries")."""

    reason: Annotated[VnText, Field(min_length=1)]
    """Why it is entered late (the outage)."""
    entered_by: VnName | None = None
    """The person entering it; default the caller's API key name."""


class DossierUpsert(Model):
    """Create or replace a dossier's full record (``DongBoHoSoMC`` semantics)."""

    dossier: Dossier
    version: Annotated[int | None, Field(ge=1)] = None
    """Source system's version of this record; older or equal versions are ignored."""


class StatusChange(Model):
    """Move a dossier along the one-stop procedure (docs/portal.md §2.2)."""

    status: DossierStatus
    at: HubTime
    handler: VnText
    position: VnText | None = None
    department: VnText | None = None
    reason: VnText = ""
    new_due_at: HubTime | None = None
    """For a late dossier (Mẫu 04 apology) or a supplement: the new ``NgayHenTra``."""
    late_entry: LateEntry | None = None


class StepAdd(Model):
    step: ProcessingStep
    late_entry: LateEntry | None = None


class ResultAttach(Model):
    result: ResultDocument


class DueDateChange(Model):
    """Move a dossier's due date (``NgayHenTra``) with its record: the apology and new date of a
    late dossier (Mẫu 04) or an extension (docs/portal.md §2.2). Recorded as a
    ``DanhSachHoSoBoSung`` entry with ``NgayHenTraTruoc``/``NgayHenTraMoi`` (§3.3) and a step."""

    new_due_at: HubTime
    at: HubTime
    handler: VnName
    position: VnText | None = None
    department: VnText | None = None
    reason: Annotated[VnText, Field(min_length=1)]
    """Why the date moves (the apology's reason); required."""
    late_entry: LateEntry | None = None
