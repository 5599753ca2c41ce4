"""The suite's one database fixture: a migrated database per test on every backend.

``database_url`` is parametrised over SQLite and PostgreSQL. Both copy a template migrated
once per session, so no test pays for the migrations: SQLite copies the template file,
PostgreSQL runs ``CREATE DATABASE … TEMPLATE`` (one copy ahead, in the background, see
:class:`PgCopies`) on the server named by ``HUB_TEST_PG_URL``
(default ``postgresql://postgres@127.0.0.1:5432/test``; a SQLAlchemy URL such as
``postgresql+psycopg://…`` is accepted too and converted in :func:`_server_url`).

``HUB_TEST_SQLITE_ONLY=1`` declares a run without PostgreSQL: its parameters (and tests marked
``postgres``) are dropped from the collection, not skipped. Otherwise an unreachable
PostgreSQL is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from hub.db.migrate import upgrade
from hub.db.session import Database
from tests.pgcluster import PrivatePostgres, private_cluster
from tests.signing.softhsm_support import MODULE, SoftHsm, softhsm_conf

SQLITE_ONLY = os.environ.get("HUB_TEST_SQLITE_ONLY") == "1"
BACKENDS = ["sqlite"] if SQLITE_ONLY else ["sqlite", "postgresql"]


def _server_url() -> URL:
    """``HUB_TEST_PG_URL`` (libpq or SQLAlchemy form) as a SQLAlchemy URL with the psycopg driver."""
    raw = os.environ.get("HUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    return make_url(raw).set(drivername="postgresql+psycopg")


def _database_url(name: str) -> str:
    """SQLAlchemy URL of database ``name`` on the test server (what the hub's settings take)."""
    return _server_url().set(database=name).render_as_string(hide_password=False)


def _admin() -> psycopg.Connection[Any]:
    libpq = _server_url().set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(libpq, autocommit=True, connect_timeout=5)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """SQLite-only runs drop PostgreSQL-only tests (explicit ``postgresql`` params, ``postgres`` mark)."""
    if not SQLITE_ONLY:
        return
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("database_url") == "postgresql"
        private = "private_postgres" in getattr(item, "fixturenames", ())
        (dropped if on_postgres or private or item.get_closest_marker("postgres") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _create_database(name: str, template: str | None = None) -> None:
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
    with _admin() as admin:
        admin.execute(statement)


def _drop_database(name: str) -> None:
    with _admin() as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class PgCopies:
    """Copies of the migrated template, one made ahead in the background.

    ``CREATE DATABASE … TEMPLATE`` and ``DROP DATABASE`` each cost the server a few tenths of a
    second; a background thread creates the next test's copy while the current test runs and
    drops used copies afterwards, so a test waits for neither.
    """

    def __init__(self, template: str) -> None:
        self.template = template
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-copies")
        self._next: Future[str] | None = None

    def _copy(self) -> str:
        name = f"hub_t_{uuid.uuid4().hex[:12]}"
        _create_database(name, self.template)
        return name

    def take(self) -> str:
        """A fresh copy of its own (the next one starts being made at once)."""
        upcoming = self._next or self._worker.submit(self._copy)
        self._next = self._worker.submit(self._copy)
        return upcoming.result()

    def discard(self, name: str) -> None:
        self._worker.submit(_drop_database, name)

    def close(self) -> None:
        if self._next is not None:
            with contextlib.suppress(psycopg.Error):
                self.discard(self._next.result())
        self._worker.shutdown(wait=True)


@pytest.fixture(scope="session")
def pg_copies() -> Iterator[PgCopies]:
    """The migrated template database, and its per-test copies."""
    try:
        _admin().close()
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {_server_url().render_as_string()} is required "
            f"(HUB_TEST_SQLITE_ONLY=1 declares a run without it): {exc}"
        )
    template = f"hub_tpl_{uuid.uuid4().hex[:10]}"
    _create_database(template)
    copies = PgCopies(template)
    try:
        upgrade(_database_url(template))
        yield copies
    finally:
        copies.close()
        _drop_database(template)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test gets a copy."""
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@contextlib.contextmanager
def migrated_database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, migrated database of its own on ``backend`` ("sqlite" or "postgresql")."""
    if backend == "sqlite":
        target = tmp_path / "hub.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    copies: PgCopies = request.getfixturevalue("pg_copies")
    name = copies.take()
    try:
        yield _database_url(name)
    finally:
        copies.discard(name)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, migrated database of its own on one backend."""
    with migrated_database(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database.connect(database_url, pool_size=8)
    yield database
    database.dispose()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of the test's own, which it may stop and start (outage tests).

    Never stop the shared server of :func:`pg_copies`: other tests, and other test runs, use it.
    See :mod:`tests.pgcluster`. Left out of SQLite-only runs like the ``postgres`` mark.
    """
    with private_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """The session's one SoftHSM2 token directory (:class:`tests.signing.softhsm_support.SoftHsm`)."""
    if not MODULE.exists():
        pytest.fail(f"SoftHSM2 module {MODULE} missing: run scripts/bootstrap.sh (apt-get install softhsm2)")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SOFTHSM2_CONF", str(softhsm_conf(tmp_path_factory.mktemp("softhsm"))))
        yield SoftHsm(Path(os.environ["SOFTHSM2_CONF"]))
