"""Result of a ``TraCuuHoSo`` reconciliation query (docs/portal.md §3.2)."""

from __future__ import annotations

from pydantic import BaseModel

from schemas.dossier import Dossier


class DossierLookup(BaseModel):
    code: str
    found: bool
    dossier: Dossier | None = None
    """The portal's record in our schema, when it could be read."""
    problem: str | None = None
    """Why a found record could not be read into our schema."""
