"""A full disk for SQLite, switched on and off from outside the hub's processes (tests only).

SQLite's ``PRAGMA max_page_count`` caps a database's size, but per connection: setting it in
the test's own connection would not touch the hub's. So every process that runs
:func:`install` re-reads a control file each time it checks a connection out of a pool and
applies it: ``full`` caps the database at its current size (SQLite clamps the cap to it), so
every write that needs a new page fails with ``SQLITE_FULL``, "database or disk is full", as on
a full disk; an empty file lifts the cap. :class:`PageLimit` writes the file.

``python -m tests.chaos.diskfull <hub arguments>`` runs the ``hub`` command line with it
installed, the control file named by ``HUB_CHAOS_PAGE_LIMIT_FILE``.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

CONTROL_ENV = "HUB_CHAOS_PAGE_LIMIT_FILE"
#: SQLite's own ceiling (the cap is clamped to what the build allows).
NO_LIMIT = 4294967294
FULL = "full"


class PageLimit:
    """The control file: :meth:`fill` the disk, :meth:`free` it."""

    def __init__(self, control: Path) -> None:
        self.control = control

    def fill(self) -> None:
        self.control.write_text(FULL, encoding="utf-8")

    def free(self) -> None:
        self.control.write_text("", encoding="utf-8")

    @property
    def full(self) -> bool:
        try:
            return self.control.read_text(encoding="utf-8").strip() == FULL
        except FileNotFoundError:
            return False

    def apply(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        """Pool ``checkout`` hook: this connection gets the cap the control file asks for."""
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        limit = 1 if self.full else NO_LIMIT
        dbapi_connection.execute(f"PRAGMA max_page_count = {limit}").close()


def install(control: Path) -> PageLimit:
    """Apply the control file to every pooled connection this process checks out."""
    limit = PageLimit(control)
    event.listen(Pool, "checkout", limit.apply)
    return limit


def main() -> None:
    install(Path(os.environ[CONTROL_ENV]))
    from hub.cli import main as hub_main

    hub_main(sys.argv[1:])


if __name__ == "__main__":
    main()
