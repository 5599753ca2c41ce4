"""Row counts the tests compare: what a request wrote, or that a refused one wrote nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from hub.db.base import Base
from hub.db.session import Database


def row_counts(db: Database, *models: type[Base]) -> tuple[int, ...]:
    """How many rows the table of each of ``models`` holds, in that order (one session)."""
    with db.sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(model)) or 0 for model in models)
