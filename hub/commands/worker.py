"""``hub worker``: run one delivery worker until SIGTERM/SIGINT (graceful stop).

Run several (on one or more hosts) for throughput or availability: claims never overlap and
per-dossier order holds across workers. ``hub serve`` runs one in-process unless
``--no-worker``. Started through :mod:`hub.runtime`, like ``hub serve``: masked logs, and a
database whose schema is not at the latest migration is refused.
"""

from __future__ import annotations

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
    from hub import runtime
    from hub.config import load_settings

    settings = load_settings()
    if concurrency is not None:
        settings.worker.concurrency = concurrency
    status = runtime.run(
        settings, json_logs=json_logs, api=False, worker=True, worker_id=worker_id, transport=transport
    )
    raise typer.Exit(status)


if __name__ == "__main__":  # pragma: no cover
    app()
