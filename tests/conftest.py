"""Shared fixtures: a migrated database on every backend the suite runs against.

``database_url`` is parametrised over SQLite (a file in a temp dir) and PostgreSQL (a fresh
schema per test on the server named by ``HUB_TEST_PG_URL``, default the local ``test``
database). ``HUB_TEST_SQLITE_ONLY=1`` declares a run without PostgreSQL; otherwise an
unreachable PostgreSQL is an error, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.db.migrate import upgrade
from hub.db.session import Database

PG_URL = os.environ.get("HUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SQLITE_ONLY = os.environ.get("HUB_TEST_SQLITE_ONLY") == "1"
BACKENDS = ["sqlite"] if SQLITE_ONLY else ["sqlite", "postgresql"]


def _pg_schema_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty, migrated database on one backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.db'}"
        upgrade(url)
        yield url
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = _pg_schema_url(schema)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database.connect(database_url)
    yield database
    database.dispose()
