"""What ``hub simulate dvcqg`` and ``hub simulate lgsp`` share: where they listen and how they stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Annotated, Any

import typer

__all__ = ["HostOption", "PortOption", "run_until_interrupted"]

HostOption = Annotated[str, typer.Option(help="Address to listen on.")]
PortOption = Annotated[int, typer.Option(help="Port (0 = any free port).", min=0, max=65535)]


def run_until_interrupted(serving: Coroutine[Any, Any, None]) -> None:
    """Run a simulator's serving coroutine until Ctrl-C, which ends it quietly."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serving)
