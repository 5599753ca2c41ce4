"""The base of every configuration section (connectors, signing and the hub compose them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A configuration section: unknown keys are errors, so typos fail at start-up."""

    model_config = ConfigDict(extra="forbid")
