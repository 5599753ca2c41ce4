"""How many messages the worker claims, per endpoint, right now (docs/delivery.md §7, §11.4).

Per-endpoint isolation: an endpoint never has more than its ``max_in_flight`` deliveries
running, nor more than its circuit breaker lets through (none while open, the probes while
half-open), so a dead portal never holds more than its own slots. The worker's free slots
(``concurrency``) are shared out in a rotating order, so no endpoint always goes first.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.settings import EndpointSettings
from hub.config import WorkerSettings
from hub.delivery.breaker import CircuitBreaker


class CapacityPlanner:
    """Counts deliveries in flight and plans the next claim. Used from one event loop."""

    def __init__(
        self,
        config: WorkerSettings,
        endpoints: Mapping[str, EndpointSettings],
        breakers: Mapping[str, CircuitBreaker],
    ) -> None:
        self.config = config
        self._max_in_flight = {name: endpoint.max_in_flight for name, endpoint in endpoints.items()}
        self._breakers = breakers
        self.in_flight: dict[str, int] = dict.fromkeys(endpoints, 0)
        self.total_in_flight = 0
        self._rotation = 0

    def wants(self) -> dict[str, int]:
        """Messages to claim per endpoint: at most ``batch_size`` each, within every limit."""
        free = self.config.concurrency - self.total_in_flight
        wants: dict[str, int] = {}
        names = sorted(self._max_in_flight)
        if not names or free <= 0:
            return wants
        self._rotation = (self._rotation + 1) % len(names)
        for name in names[self._rotation :] + names[: self._rotation]:
            endpoint_free = self._max_in_flight[name] - self.in_flight[name]
            breaker_cap = self._breakers[name].capacity()
            if breaker_cap is not None:
                endpoint_free = min(endpoint_free, breaker_cap)
            n = min(endpoint_free, free, self.config.batch_size)
            if n > 0:
                wants[name] = n
                free -= n
        return wants

    @property
    def claim_threshold(self) -> int:
        """Free slots worth a new claim after a full one (a quarter of the concurrency, at most
        a batch): fewer, larger claims under load."""
        return max(1, min(self.config.batch_size, self.config.concurrency // 4))

    def has_room(self) -> bool:
        """At least :attr:`claim_threshold` slots are free."""
        return self.config.concurrency - self.total_in_flight >= self.claim_threshold

    def started(self, endpoint: str) -> None:
        self.in_flight[endpoint] += 1
        self.total_in_flight += 1

    def finished(self, endpoint: str) -> None:
        self.in_flight[endpoint] -= 1
        self.total_in_flight -= 1
