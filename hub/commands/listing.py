"""The tables of the list commands (``hub keys list``, ``hub users list``): a heading line, then
one line a row, each column padded to its width."""

from __future__ import annotations

from collections.abc import Sequence

import typer


def echo_table(columns: Sequence[tuple[str, int]], rows: Sequence[Sequence[str]], *, empty: str) -> None:
    """``rows`` under the ``(heading, width)`` of ``columns`` (the last column is not padded);
    ``empty`` when there are none."""
    if not rows:
        typer.echo(empty)
        return
    widths = [width for _, width in columns[:-1]]
    for cells in ([heading for heading, _ in columns], *rows):
        typer.echo(
            " ".join([*(f"{cell:{width}}" for cell, width in zip(cells, widths, strict=False)), cells[-1]])
        )
