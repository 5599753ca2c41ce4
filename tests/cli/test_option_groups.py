"""``with_options``: a dataclass of typer options laid out as a command's own options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from hub.commands.option_groups import with_options


@dataclass(frozen=True)
class Window:
    first: Annotated[int, typer.Option(help="first row")] = 1
    last: Annotated[int | None, typer.Option(help="last row")] = None


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @with_options(window=Window)
    def show(
        name: Annotated[str, typer.Argument()], window: Window, loud: Annotated[bool, typer.Option()] = False
    ) -> None:
        typer.echo(f"{name} {window!r} {loud}")

    return app


def test_the_group_fields_are_options_and_arrive_as_one_instance() -> None:
    runner = CliRunner()
    given = runner.invoke(_app(), ["rows", "--last", "9", "--loud"])
    assert given.exit_code == 0, given.output
    assert given.output.strip() == "rows Window(first=1, last=9) True"
    helped = runner.invoke(_app(), ["--help"])
    assert "--first" in helped.output
    assert "--last" in helped.output
    assert "--window" not in helped.output


def test_a_field_named_like_another_parameter_is_refused() -> None:
    def command(window: Window, first: int = 0) -> None: ...

    with pytest.raises(TypeError, match="first given twice"):
        with_options(window=Window)(command)


def test_a_group_for_no_parameter_is_refused() -> None:
    def command(limit: int = 0) -> None: ...

    with pytest.raises(TypeError, match="no parameter window"):
        with_options(window=Window)(command)
