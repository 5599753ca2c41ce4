"""``hub prune [--dry-run]``: delete delivered messages and finished bulk jobs past retention.

The same pass every delivery worker runs in the background (:mod:`hub.outbox.retention`, the
``[retention]`` settings), run once now: in small batches with pauses, never touching pending,
in-flight, dead or discarded messages. ``--dry-run`` only counts. The database must be at the
latest migration (as for ``hub serve``).
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    help="Xóa dữ liệu đã hết hạn lưu / prune delivered messages past retention.", add_completion=False
)


@app.command("prune")
def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be deleted")] = False,
    delivered_days: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Keep delivered messages this many days (default: retention.delivered_days; 0 keeps all)",
        ),
    ] = None,
    bulk_jobs_days: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Keep finished bulk jobs this many days (default: retention.bulk_jobs_days; 0 keeps all)",
        ),
    ] = None,
) -> None:
    """Delete delivered messages (with their attempts) and finished DLQ bulk jobs past retention."""
    from hub.config import load_settings
    from hub.outbox.retention import count_prunable
    from hub.outbox.retention import prune as run_prune
    from hub.runtime import open_database, setup_logging

    settings = load_settings()
    retention = settings.retention
    if delivered_days is not None:
        retention = retention.model_copy(update={"delivered_days": delivered_days})
    if bulk_jobs_days is not None:
        retention = retention.model_copy(update={"bulk_jobs_days": bulk_jobs_days})
    setup_logging(settings.log_level, json_logs=False)
    db = open_database(settings, pool_size=2)
    try:
        if dry_run:
            typer.echo(f"would delete: {count_prunable(db, retention).describe()}")
        else:
            typer.echo(f"deleted: {run_prune(db, retention).describe()}")
    finally:
        db.dispose()


if __name__ == "__main__":  # pragma: no cover
    app()
