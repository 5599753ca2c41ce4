"""``hub prune [--dry-run]``: delete delivered messages and finished bulk jobs past retention.

The same pass every delivery worker runs in the background (:mod:`hub.outbox.retention`, the
``[retention]`` settings), run once now: in small batches with pauses, never touching pending,
in-flight, dead or discarded messages. ``--dry-run`` only counts. The database must be at the
latest migration (as for ``hub serve``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = ["app"]

app = typer.Typer(
    help="Xóa dữ liệu đã hết hạn lưu / prune delivered messages past retention.", add_completion=False
)


def _keep_days(what: str, setting: str) -> Any:  # typer.Option is typed Any
    """The option overriding one ``[retention]`` setting for this run."""
    return typer.Option(min=0, help=f"Keep {what} this many days (default: retention.{setting}; 0 keeps all)")


@app.command("prune")
def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be deleted")] = False,
    delivered_days: Annotated[int | None, _keep_days("delivered messages", "delivered_days")] = None,
    bulk_jobs_days: Annotated[int | None, _keep_days("finished bulk jobs", "bulk_jobs_days")] = None,
) -> None:
    """Delete delivered messages (with their attempts) and finished DLQ bulk jobs past retention."""
    from hub.config import load_settings
    from hub.outbox.retention import count_prunable
    from hub.outbox.retention import prune as run_prune
    from hub.runtime import open_database, setup_logging

    settings = load_settings()
    given = {"delivered_days": delivered_days, "bulk_jobs_days": bulk_jobs_days}
    retention = settings.retention.model_copy(update={k: v for k, v in given.items() if v is not None})
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
