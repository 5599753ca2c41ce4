"""``hub worker``: run one delivery worker until SIGTERM/SIGINT (graceful stop).

Run several (on one or more hosts) for throughput or availability: claims never overlap and
per-dossier order holds across workers. ``hub serve`` runs one in-process unless
``--no-worker``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from connectors.http import TransportKind

__all__ = ["app"]

app = typer.Typer(help="Chạy tiến trình gửi bản tin / run the delivery worker.", add_completion=False)


@app.command("worker")
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Deliveries in flight (default: worker.concurrency)")
    ] = None,
    worker_id: Annotated[
        str | None, typer.Option(help="Name recorded on attempts (default: host:pid:random)")
    ] = None,
    transport: Annotated[TransportKind, typer.Option(help="HTTP transport")] = TransportKind.AIOHTTP,
    json_logs: Annotated[bool, typer.Option("--json-logs/--plain-logs", help="Log format")] = True,
) -> None:
    """Deliver outbox messages to the configured endpoints until stopped."""
    from hub.config import load_settings
    from hub.db.session import Database
    from hub.delivery.__main__ import serve
    from hub.delivery.worker import Worker
    from hub.logging import configure_logging

    settings = load_settings()
    if concurrency is not None:
        settings.worker.concurrency = concurrency
    configure_logging(settings.log_level, json_lines=json_logs)
    db = Database.connect(settings.database_url, pool_size=4)
    try:
        asyncio.run(serve(Worker(settings, db, worker_id=worker_id, transport=transport)))
    finally:
        db.dispose()


if __name__ == "__main__":  # pragma: no cover
    app()
