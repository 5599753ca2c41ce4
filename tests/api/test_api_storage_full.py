"""A full database storage answers 503 ``storage_full`` (both languages, ``Retry-After``), any other
operational database error 503 ``database_unavailable``: never a 500.

SQLite's disk is filled with ``PRAGMA max_page_count`` (:mod:`tests.chaos.diskfull`) on every
connection the API checks out; PostgreSQL's with a trigger raising its real ``disk_full``
SQLSTATE (53100), what the server says when it cannot extend a file.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from hub.api.errors import is_storage_full
from tests.api.livehub import LiveHub, dossier_json
from tests.api.test_api_hostile import CREATE, nothing_written
from tests.chaos.diskfull import PageLimit

RAISE_ON_INSERT = """
CREATE FUNCTION hub_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '{message}' USING ERRCODE = '{sqlstate}';
END $$;
CREATE TRIGGER hub_test_refuse BEFORE INSERT ON dossiers
  FOR EACH ROW EXECUTE FUNCTION hub_test_refuse();
"""
DROP_TRIGGER = "DROP TRIGGER hub_test_refuse ON dossiers; DROP FUNCTION hub_test_refuse();"


class FullStorage:
    """Fill and free the database's storage, on either backend."""

    def __init__(self, hub: LiveHub, tmp_path: Path) -> None:
        self.hub = hub
        self.sqlite = not hub.db.is_postgres
        self.limit = PageLimit(tmp_path / "page-limit")
        if self.sqlite:
            event.listen(hub.db.engine, "checkout", self.limit.apply)

    def _execute(self, statement: str) -> None:
        with self.hub.db.engine.begin() as conn:
            conn.execute(text(statement))

    def fill(self, *, sqlstate: str = "53100", message: str = "could not extend file: No space left") -> None:
        if self.sqlite:
            self.limit.fill()
        else:
            self._execute(RAISE_ON_INSERT.format(sqlstate=sqlstate, message=message))

    def free(self) -> None:
        if self.sqlite:
            self.limit.free()
        else:
            self._execute(DROP_TRIGGER)

    def close(self) -> None:
        if self.sqlite:
            event.remove(self.hub.db.engine, "checkout", self.limit.apply)


@pytest.fixture
def storage(hub: LiveHub, tmp_path: Path) -> Iterator[FullStorage]:
    full = FullStorage(hub, tmp_path)
    yield full
    full.close()


def large_dossier(text: str) -> dict[str, object]:
    """A dossier of some 30–40 KB within the field bounds (docs/portal.md §3.10)."""
    name = (text * 500)[:500]
    return dossier_json(documents=[{"id": f"tl-{i}", "name": name} for i in range(50)])


def test_intake_on_a_full_storage_is_a_clear_503_then_works_again(hub: LiveHub, storage: FullStorage) -> None:
    # A large record needs new pages whatever free space the SQLite file still has.
    body = {"dossier": large_dossier("Đề nghị cấp giấy chứng nhận. ")}
    storage.fill()
    with hub.client("source") as client:
        refused = client.post(CREATE, json=body)
        alive = client.get("/healthz")
        storage.free()
        accepted = client.post(CREATE, json=body)
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "60"
    error = refused.json()["error"]
    assert error["code"] == "storage_full"
    assert error["message"].startswith("the hub's database storage is full")
    assert error["message_vi"].startswith("bộ nhớ cơ sở dữ liệu của hệ thống đã đầy")
    assert unicodedata.is_normalized("NFC", error["message_vi"])
    assert "No space" not in refused.text  # no database internals
    assert "SQL" not in refused.text
    assert alive.status_code == 200
    assert accepted.status_code == 201, accepted.text


def test_nothing_is_written_while_full(hub: LiveHub, storage: FullStorage) -> None:
    storage.fill()
    with hub.client("source") as client:
        answer = client.post(CREATE, json={"dossier": large_dossier("x")})
    storage.free()
    assert answer.status_code == 503
    assert nothing_written(hub)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_other_operational_errors_are_a_503_database_unavailable(hub: LiveHub, storage: FullStorage) -> None:
    storage.fill(sqlstate="55P03", message="lock not available")  # OperationalError, not a full disk
    with hub.client("source") as client:
        answer = client.post(CREATE, json={"dossier": dossier_json()})
    storage.free()
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    error = answer.json()["error"]
    assert error["code"] == "database_unavailable"
    assert error["message_vi"].startswith("cơ sở dữ liệu của hệ thống tạm thời không truy cập được")
    assert "lock not available" not in answer.text  # no database internals
    assert nothing_written(hub)


def _wrapped(driver_error: Exception) -> OperationalError:
    return OperationalError("INSERT …", {}, driver_error)


def test_is_storage_full_reads_the_driver_error_codes() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert is_storage_full(_wrapped(full))
    assert not is_storage_full(_wrapped(busy))
    assert is_storage_full(_wrapped(psycopg.errors.DiskFull("could not extend file")))
    assert not is_storage_full(_wrapped(psycopg.errors.LockNotAvailable("lock not available")))
