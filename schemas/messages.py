"""Outbound message kinds and their canonical payloads (what the outbox stores).

Connectors translate these payloads to each portal's wire format; the outbox never stores a
wire format, so an operator editing a dead-lettered payload edits canonical JSON.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.dossier import Dossier, Model, ProcessingStep


class MessageKind(StrEnum):
    DOSSIER_SYNC = "dossier.sync"
    """Full dossier record: DVCQG ``DongBoHoSoMC`` / LGSP ``SyncDocument``."""
    DOSSIER_PROGRESS = "dossier.progress"
    """Processing steps: DVCQG ``CapNhatTienDoHoSoMC`` / LGSP ``UpdateDocumentTraces``."""


class DossierSyncPayload(Model):
    dossier: Dossier
    revision: int = Field(ge=1)


class DossierProgressPayload(Model):
    dossier_code: str
    steps: list[ProcessingStep] = Field(min_length=1)
    #: The dossier as it stood when the steps were recorded (for connectors that need context).
    dossier: Dossier
    revision: int = Field(ge=1)
