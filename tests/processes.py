"""Hub processes as an operator starts them (``python -m hub worker``, settings from
``HUB_DATABASE_URL`` and a TOML file): the configuration the crash, scale-out, reconnect and chaos
tests give them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def write_config(
    path: Path,
    sink_url: str,
    *,
    lease_seconds: float = 2.0,
    heartbeat_seconds: float = 0.5,
    concurrency: int = 16,
    batch_size: int = 10,
    schedule_seconds: Sequence[float] = (0.2,) * 16,
    failure_threshold: int = 1000,
    open_seconds: float = 1.0,
    poll_interval_seconds: float = 0.1,
    shutdown_grace_seconds: float = 5,
    max_in_flight: int = 32,
    routing: bool = False,
    extra: str = "",
) -> Path:
    """A hub TOML file with one webhook endpoint ``portal`` at ``sink_url`` and short timings.

    ``routing``: route ``dossier.*`` messages of the intake API to ``portal``; ``extra``: more
    ``[worker]`` keys, as TOML lines.
    """
    schedule = ", ".join(str(s) for s in schedule_seconds)
    text = f"""
[worker]
concurrency = {concurrency}
batch_size = {batch_size}
lease_seconds = {lease_seconds}
heartbeat_seconds = {heartbeat_seconds}
poll_interval_seconds = {poll_interval_seconds}
shutdown_grace_seconds = {shutdown_grace_seconds}
{extra}

[endpoints.portal]
kind = "webhook"
url = "{sink_url}"
max_in_flight = {max_in_flight}
timeout_seconds = 10
connect_timeout_seconds = 1

[endpoints.portal.retry]
schedule_seconds = [{schedule}]
jitter_ratio = 0.1
retry_after_min_seconds = 0
throttle_min_seconds = 0.2

[endpoints.portal.breaker]
failure_threshold = {failure_threshold}
open_seconds = {open_seconds}
"""
    if routing:
        text += """
[[routing]]
kinds = ["dossier.sync", "dossier.progress"]
endpoints = ["portal"]
"""
    path.write_text(text, encoding="utf-8")
    return path
