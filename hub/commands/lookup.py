"""``hub lookup rehash``: re-key the stored digests of owners' ID numbers (docs/security.md §6).

Run once after upgrading from plain SHA-256 digests, and after changing
``lookup.owner_id_key``; until then the dossiers not yet re-keyed answer "not found" to their
owners. Idempotent; safe beside a running hub.
"""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(help="Tra cứu hồ sơ / citizen lookup maintenance.", add_completion=False)


@app.command("rehash")
def rehash() -> None:
    """Store every dossier's owner-ID digest under the configured key (lookup.owner_id_key)."""
    from hub.config import load_settings
    from hub.lookup.owner_hash import OwnerIdHasher, rehash_owner_ids
    from hub.runtime import open_database, setup_logging

    settings = load_settings()
    setup_logging(settings.log_level, json_logs=False)
    hasher = OwnerIdHasher.from_settings(settings)
    db = open_database(settings, pool_size=2)
    try:
        typer.echo(f"re-keyed: {rehash_owner_ids(db, hasher)} dossiers")
    finally:
        db.dispose()
