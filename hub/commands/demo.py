"""``hub demo``: run the end-to-end demonstration (see :mod:`hub.demo`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="End-to-end demonstration: DVCQG and LGSP simulators with faults, signing, DLQ replay.",
    add_completion=False,
)


@app.command("demo")
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Working directory (emptied first)")] = Path(
        "var/demo"
    ),
    port: Annotated[int, typer.Option(help="API port (0: any free port)")] = 8080,
    exit_after: Annotated[
        bool, typer.Option("--exit", help="Stop after the summary instead of serving")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the hub's logs")] = False,
) -> None:
    """Feed sample Ninh Bình dossiers through the hub to the DVCQG and LGSP simulators (with faults),
    sign a result paper with the test PKI, and show retries, ordering and DLQ replay; then keep
    serving and print the console's address with a one-time sign-in link for a demo technician."""
    from hub import runtime
    from hub.demo import run_demo

    runtime.setup_logging("INFO" if verbose else "ERROR", json_logs=False)
    try:
        status = asyncio.run(run_demo(directory, port=port, keep_running=not exit_after, echo=typer.echo))
    except KeyboardInterrupt:
        status = 0
    raise typer.Exit(status)
