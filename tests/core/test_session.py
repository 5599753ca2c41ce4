"""SQLite transaction modes: writers take the lock at BEGIN, readers never wait for it."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

from hub.db.migrate import upgrade
from hub.db.session import Database


def test_sqlite_reads_do_not_queue_behind_an_open_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(url)
    db = Database.connect(url)
    writer_started = threading.Event()
    release_writer = threading.Event()

    def hold_write_lock() -> None:
        with db.transaction() as session:
            session.execute(sa.text("UPDATE dossier_sequences SET last_value = 0"))
            writer_started.set()
            release_writer.wait(30)

    writer = threading.Thread(target=hold_write_lock)
    writer.start()
    assert writer_started.wait(10)
    read_done = threading.Event()

    def read() -> None:
        with db.sessions() as session:
            session.execute(sa.text("SELECT count(*) FROM dossiers")).scalar_one()
        read_done.set()

    reader = threading.Thread(target=read)
    reader.start()
    # The reader finishes while the writer still holds its lock (it would block ~30 s otherwise).
    assert read_done.wait(10)
    release_writer.set()
    writer.join()
    reader.join()
    db.dispose()


def test_sqlite_write_transactions_begin_immediate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(url)
    db = Database.connect(url)
    with db.transaction() as session:
        session.execute(sa.text("SELECT 1"))  # the session begins lazily, on first use
        # Inside BEGIN IMMEDIATE this connection already holds the RESERVED lock, so a second
        # connection trying to write fails fast instead of both racing to upgrade later.
        other = sa.create_engine(url, connect_args={"timeout": 0.1})
        with other.connect() as conn:
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                locked = False
            except sa.exc.OperationalError:
                locked = True
        other.dispose()
    assert locked
    db.dispose()
