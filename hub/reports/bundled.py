"""The data files of the reports (the working-day calendar, the records layout): a JSON file
named in the configuration, or the one bundled with :mod:`hub.reports` (docs/reports.md §4, §7)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from schemas.errors import ConfigurationError

__all__ = ["load_data_file"]

M = TypeVar("M", bound=BaseModel)


def load_data_file(model: type[M], path: Path | None, bundled: str, what: str) -> M:
    """``model`` read from ``path``, or from the bundled file ``bundled``; a file that cannot be
    read or does not fit is a configuration error naming ``what`` and the file."""
    try:
        if path is None:
            text = resources.files(__package__).joinpath(bundled).read_text("utf-8")
        else:
            text = path.read_text("utf-8")
        return model.model_validate(json.loads(text))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{what} {path or bundled}: {exc}") from exc
