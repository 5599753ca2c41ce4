"""Rewriting the audit log behind the hub's back, which its hash chain must show (docs/security.md §9)."""

from __future__ import annotations

from hub.db.session import Database


def tamper(db: Database, sql: str) -> None:
    """What an attacker with database rights runs: the append-only triggers dropped, then ``sql``."""
    with db.engine.begin() as connection:
        if db.is_postgres:
            connection.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_update ON audit_log")
        else:
            connection.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
            connection.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_delete")
        connection.exec_driver_sql(sql)
