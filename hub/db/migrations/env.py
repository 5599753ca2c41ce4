"""Alembic environment: the URL comes from ``hub.db.migrate`` (never from a file)."""

from __future__ import annotations

from alembic import context

from hub.db.registry import load_all_models
from hub.db.session import create_hub_engine

target_metadata = load_all_models()


def run_migrations() -> None:
    url = context.config.attributes.get("database_url")
    if not url:
        raise RuntimeError("hub.db.migrate must pass database_url to Alembic")
    engine = create_hub_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()


run_migrations()
