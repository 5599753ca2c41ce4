"""Alembic environment: the URL comes from ``hub.db.migrate`` (never from a file)."""

from __future__ import annotations

from alembic import context

from hub.db.registry import load_all_models
from hub.db.session import close_writer_gate, create_hub_engine, writer_gate_for

target_metadata = load_all_models()


def run_migrations() -> None:
    url = context.config.attributes.get("database_url")
    if not url:
        raise RuntimeError("hub.db.migrate must pass database_url to Alembic")
    engine = create_hub_engine(url, pool_size=1)
    # On SQLite the migration waits its turn at the write lock with the hub's other writers
    # (docs/delivery.md §9.3, "SQLite writers take turns"), held until its commit.
    gate = writer_gate_for(engine)
    try:
        with gate, engine.connect() as connection:
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
        close_writer_gate(gate)


run_migrations()
