"""Settings of one endpoint the hub delivers to: kind, address, credentials, retry and breaker.

``hub.config.Settings`` composes these under ``endpoints.<name>``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, SecretStr

from schemas.settings import Section


class EndpointKind(StrEnum):
    DVCQG = "dvcqg"
    """National Public Service Portal JSON adapter."""
    LGSP_SOAP = "lgsp_soap"
    LGSP_REST = "lgsp_rest"
    WEBHOOK = "webhook"
    """Generic JSON POST (the demo's stand-in portal, the benchmark sink)."""


class RetrySettings(Section):
    """Per-endpoint retry schedule (an explicit list in the Svix style; ``docs/delivery.md``)."""

    schedule_seconds: list[float] = Field(
        default_factory=lambda: [5.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0, 43200.0]
    )
    jitter_ratio: Annotated[float, Field(ge=0, le=1)] = 0.2
    #: Retry-After is honoured but clamped to [min, max].
    retry_after_min_seconds: float = 1
    retry_after_max_seconds: float = 6 * 3600
    #: After 429 or a timeout, wait at least this long.
    throttle_min_seconds: float = 30

    @property
    def max_attempts(self) -> int:
        return len(self.schedule_seconds) + 1


class BreakerSettings(Section):
    """Per-endpoint circuit breaker (``docs/delivery.md`` §7).

    ``failure_threshold`` consecutive retryable failures open the circuit. The first probe goes
    ``probe_interval_seconds`` after it opened; each failed probe doubles the wait, up to
    ``open_seconds`` (the longest the circuit stays open between two probes).
    """

    failure_threshold: Annotated[int, Field(ge=1)] = 5
    open_seconds: Annotated[float, Field(gt=0)] = 30
    probe_interval_seconds: Annotated[float, Field(gt=0)] = 5
    half_open_probes: Annotated[int, Field(ge=1)] = 1


class EndpointSettings(Section):
    kind: EndpointKind
    url: str
    enabled: bool = True
    timeout_seconds: Annotated[float, Field(gt=0)] = 30
    connect_timeout_seconds: Annotated[float, Field(gt=0)] = 5
    max_in_flight: Annotated[int, Field(ge=1)] = 32
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    #: Connector-specific options (service names, paths, WSDL file, agency code ...).
    options: dict[str, Any] = Field(default_factory=dict)
