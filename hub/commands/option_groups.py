"""Options that several commands take together, declared once (typer has no option groups).

A group is a dataclass whose fields are typer options — ``Annotated[T, typer.Option(...)]``, with
their defaults — and whose methods turn the choice into what the commands use (a key source, a
query filter). A command names the group as one parameter and :func:`with_options` lays the
group's fields out in that parameter's place as the command's own options, then hands the
command one instance built from the values given::

    @app.command("list")
    @with_options(flt=FilterOptions)
    def list_(flt: FilterOptions, limit: int = 50) -> None: ...

``--help`` lists the options where the parameter stands; a field's name must not be one of the
command's other parameters.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

__all__ = ["with_options"]

P = ParamSpec("P")
R = TypeVar("R")


def _field_parameters(group: type[Any]) -> list[inspect.Parameter]:
    if not dataclasses.is_dataclass(group):
        raise TypeError(f"{group.__name__} is not a dataclass")
    hints = typing.get_type_hints(group, include_extras=True)
    return [
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=hints[field.name],
            default=inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default,
        )
        for field in dataclasses.fields(group)
    ]


def with_options(**groups: type[Any]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The command with each named parameter replaced by the fields of its group (a dataclass)."""

    def decorate(command: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(command, eval_str=True)
        members: dict[str, list[str]] = {}
        parameters: list[inspect.Parameter] = []
        for parameter in signature.parameters.values():
            group = groups.get(parameter.name)
            if group is None:
                # typer passes every value by name; keyword-only lets defaults and non-defaults mix
                parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
                continue
            fields = _field_parameters(group)
            members[parameter.name] = [field.name for field in fields]
            parameters.extend(fields)
        if missing := set(groups) - set(members):
            raise TypeError(f"{command.__name__} has no parameter {', '.join(sorted(missing))}")
        names = [parameter.name for parameter in parameters]
        if clashes := {name for name in names if names.count(name) > 1}:
            raise TypeError(f"{command.__name__}: option {', '.join(sorted(clashes))} given twice")

        @functools.wraps(command)
        def run(**values: Any) -> R:
            for name, group in groups.items():
                values[name] = group(**{field: values.pop(field) for field in members[name]})
            return command(**values)  # type: ignore[call-arg]  # the command's own parameters

        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        return cast(Callable[P, R], run)

    return decorate
