"""Fixtures: a migrated database on SQLite and on PostgreSQL (a fresh database per test).

PostgreSQL at ``HUB_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``) is
required; its parameters are skipped only when ``HUB_TEST_SQLITE_ONLY=1`` declares a
SQLite-only run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from connectors.settings import EndpointSettings, RetrySettings
from hub.config import Settings, WorkerSettings
from hub.db.migrate import upgrade
from hub.db.session import Database

#: libpq form of the server URL (the root conftest's may name the SQLAlchemy driver).
PG_ADMIN_URL = os.environ.get("HUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test").replace(
    "postgresql+psycopg://", "postgresql://"
)
SQLITE_ONLY = os.environ.get("HUB_TEST_SQLITE_ONLY") == "1"
BACKENDS = ["sqlite"] if SQLITE_ONLY else ["sqlite", "postgresql"]


def _pg_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database; each test copies it (CREATE DATABASE … TEMPLATE)."""
    try:
        admin = _admin()
    except psycopg.OperationalError as exc:
        if SQLITE_ONLY:
            pytest.skip(f"PostgreSQL unavailable and HUB_TEST_SQLITE_ONLY=1 ({exc})")
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required (set HUB_TEST_SQLITE_ONLY=1 to skip): {exc}")
    name = f"hub_tpl_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        upgrade(_pg_url(name))
        yield name
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@contextmanager
def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh migrated database on ``backend`` ("sqlite" or "postgresql"), dropped afterwards."""
    if backend == "sqlite":
        target = tmp_path / "hub.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"hub_t_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        )
    try:
        yield _pg_url(name)
    finally:
        with _admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database.connect(db_url, pool_size=8)
    yield database
    database.dispose()


def make_settings(
    db_url: str,
    endpoints: dict[str, str],
    *,
    schedule: list[float] | None = None,
    worker: dict[str, Any] | None = None,
    endpoint_options: dict[str, Any] | None = None,
) -> Settings:
    """Settings with webhook endpoints ``name → url`` and test-friendly timings."""
    retry = RetrySettings(
        schedule_seconds=schedule if schedule is not None else [0.05, 0.1, 0.2],
        jitter_ratio=0.0,
        retry_after_min_seconds=0,
        throttle_min_seconds=0,
    )
    options = {"timeout_seconds": 5, "connect_timeout_seconds": 1, **(endpoint_options or {})}
    return Settings(
        database_url=db_url,
        endpoints={
            name: EndpointSettings(kind="webhook", url=url, retry=retry, **options)  # type: ignore[arg-type]
            for name, url in endpoints.items()
        },
        worker=WorkerSettings(
            **{
                "concurrency": 16,
                "batch_size": 20,
                "lease_seconds": 30,
                "heartbeat_seconds": 5,
                "poll_interval_seconds": 0.05,
                "shutdown_grace_seconds": 5,
                **(worker or {}),
            }
        ),
    )
