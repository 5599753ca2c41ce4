"""The DLQ tests reuse the delivery tests' database fixtures (SQLite + PostgreSQL)."""

from __future__ import annotations

try:  # ``tests`` may or may not be a package, depending on the checkout
    from tests.delivery.conftest import db, db_url, pg_template, sqlite_template
except ModuleNotFoundError:
    from delivery.conftest import db, db_url, pg_template, sqlite_template  # type: ignore[no-redef]

__all__ = ["db", "db_url", "pg_template", "sqlite_template"]
