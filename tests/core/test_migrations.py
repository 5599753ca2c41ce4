"""The migrated schema equals the models (no drift between Alembic and SQLAlchemy)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.db.registry import load_all_models
from hub.db.session import Database


def test_migrated_schema_matches_models(db: Database) -> None:
    metadata = load_all_models()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []
