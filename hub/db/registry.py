"""Imports every module that declares tables, so ``Base.metadata`` is complete.

Alembic's env and the schema-equality test call :func:`load_all_models`; add new table
modules here.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from hub.db.base import Base

TABLE_MODULES = ("hub.db.models", "hub.db.account_tables", "hub.reports.models", "hub.db.signing_tables")


def load_all_models() -> MetaData:
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return Base.metadata
