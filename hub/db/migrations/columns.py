"""Column types and builders the migrations share (``versions/``; schema in docs/architecture.md).

Alembic loads only ``env.py`` and ``versions/*.py`` from this folder, so this module is no
revision. A migration states the schema of its revision for good: a builder here never changes
once a migration uses it; a new shape gets a new name.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from hub.db.base import UTCDateTime

#: BIGINT on PostgreSQL; INTEGER on SQLite, whose only autoincrementing key is INTEGER PRIMARY KEY.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: JSONB on PostgreSQL, JSON text on SQLite.
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
#: A timezone-aware time, stored as UTC.
TIME = UTCDateTime(timezone=True)


def id_column(name: str = "id") -> sa.Column[int]:
    """The surrogate key of a table: an autoincrementing :data:`BIG_ID`."""
    return sa.Column(name, BIG_ID, autoincrement=True, nullable=False)


def time_column(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, TIME, nullable=nullable)


def timestamps() -> tuple[sa.Column[datetime], sa.Column[datetime]]:
    """``created_at`` and ``updated_at``, both required."""
    return time_column("created_at"), time_column("updated_at")
