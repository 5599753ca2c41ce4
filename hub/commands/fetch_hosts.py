"""``--fetch-host``: hosts the CLI may fetch OCSP/CRL from, on top of the Government CA defaults
(docs/signing.md §12; ``hub sign`` and ``hub verify`` share it)."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from signing.settings import RevocationFetchSettings

__all__ = ["FetchHosts", "fetch_settings"]

FetchHosts = Annotated[
    list[str] | None,
    typer.Option(
        "--fetch-host",
        help="also allow OCSP/CRL fetches from this host or host:port (repeatable; "
        "default: the Government CA hosts only, docs/signing.md §12)",
    ),
]


def fetch_settings(hosts: list[str] | None) -> RevocationFetchSettings:
    """The default allowlist plus ``hosts``; a malformed entry is a usage error."""
    defaults = RevocationFetchSettings()
    try:
        return RevocationFetchSettings(allowed_hosts=[*defaults.allowed_hosts, *(hosts or ())])
    except ValidationError as exc:
        raise typer.BadParameter("expected host or host:port", param_hint="--fetch-host") from exc
