"""How many messages the worker claims, per endpoint, and which claimed one starts next
(docs/delivery.md §7, §11.4).

Per-endpoint isolation: an endpoint never has more than its ``max_in_flight`` deliveries
running, nor more than its circuit breaker lets through (none while open, the probes while
half-open), so a dead portal never holds more than its own slots. The worker's free slots
(``concurrency``) are shared out in a rotating order, so no endpoint always goes first.

Claiming ahead (§11.4): a claim takes a database round trip while deliveries keep finishing,
so the worker claims up to :attr:`CapacityPlanner.claim_ahead` messages more than it has free
slots. Those wait here, leased, and start the moment a slot of the worker and of their
endpoint frees; they never raise the number of deliveries running.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.settings import EndpointSettings
from hub.config import WorkerSettings
from hub.delivery.breaker import CircuitBreaker
from hub.delivery.store import ClaimedMessage

_Lease = tuple[int, str]


class CapacityPlanner:
    """Counts deliveries running and claimed messages waiting for a slot, plans the next claim
    and picks the next message to start. Used from one event loop."""

    def __init__(
        self,
        config: WorkerSettings,
        endpoints: Mapping[str, EndpointSettings],
        breakers: Mapping[str, CircuitBreaker],
    ) -> None:
        self.config = config
        self._max_in_flight = {name: endpoint.max_in_flight for name, endpoint in endpoints.items()}
        self._breakers = breakers
        #: Deliveries running, per endpoint and in all.
        self.in_flight: dict[str, int] = dict.fromkeys(endpoints, 0)
        self.total_in_flight = 0
        #: Claimed (leased) messages not started yet, per endpoint in claim order.
        self._waiting: dict[str, dict[_Lease, ClaimedMessage]] = {name: {} for name in endpoints}
        self.total_waiting = 0
        self._names = sorted(endpoints)
        self._rotation = 0
        self._start_turn = -1  # the first start goes to the first endpoint by name

    @property
    def claim_threshold(self) -> int:
        """Room worth a new claim after a full one (a quarter of the concurrency, at most a
        batch): fewer, larger claims under load."""
        return max(1, min(self.config.batch_size, self.config.concurrency // 4))

    @property
    def claim_ahead(self) -> int:
        """Messages the worker may hold claimed beyond its free slots: as many as it has slots,
        so the next claim is made while many still wait, and the slots that free during its
        round trip (tens of milliseconds on a loaded machine) are filled from those (§11.4)."""
        return self.config.concurrency

    def _endpoint_ahead(self, name: str) -> int:
        """An endpoint's share of :attr:`claim_ahead`: never more than its own slots."""
        return min(self.claim_ahead, self._max_in_flight[name])

    def _room(self) -> int:
        return self.config.concurrency + self.claim_ahead - self.total_in_flight - self.total_waiting

    def wants(self) -> dict[str, int]:
        """Messages to claim per endpoint: at most ``batch_size`` each, within every limit."""
        free = self._room()
        wants: dict[str, int] = {}
        names = self._names
        if not names or free <= 0:
            return wants
        self._rotation = (self._rotation + 1) % len(names)
        for name in names[self._rotation :] + names[: self._rotation]:
            waiting = len(self._waiting[name])
            held = self.in_flight[name] + waiting
            endpoint_free = self._max_in_flight[name] + self._endpoint_ahead(name) - held
            breaker_cap = self._breakers[name].capacity()
            if breaker_cap is not None:  # open: none; half-open: its probes, never ahead
                endpoint_free = min(endpoint_free, breaker_cap - waiting)
            n = min(endpoint_free, free, self.config.batch_size)
            if n > 0:
                wants[name] = n
                free -= n
        return wants

    def has_room(self) -> bool:
        """Room for at least :attr:`claim_threshold` more claimed messages."""
        return self._room() >= self.claim_threshold

    # --- claimed messages waiting for a slot -------------------------------------------------

    def wait(self, message: ClaimedMessage) -> None:
        """``message`` was claimed: it waits for a slot (see :meth:`next_to_start`)."""
        self._waiting[message.endpoint][(message.seq, message.lease_token)] = message
        self.total_waiting += 1

    def next_to_start(self) -> ClaimedMessage | None:
        """The next waiting message that has a slot of the worker and of its endpoint, counted
        as running (``None`` if none); the endpoints take turns, so one whose messages keep
        coming never holds the worker's slots against another's that wait."""
        if not self.total_waiting or self.total_in_flight >= self.config.concurrency:
            return None
        for _ in range(len(self._names)):
            self._start_turn = (self._start_turn + 1) % len(self._names)
            found = self._pop_startable(self._names[self._start_turn])
            if found is not None:
                return found
        return None

    def _pop_startable(self, name: str) -> ClaimedMessage | None:
        waiting = self._waiting[name]
        if not waiting or self.in_flight[name] >= self._max_in_flight[name]:
            return None
        message = waiting.pop(next(iter(waiting)))
        self.total_waiting -= 1
        self.started(name)
        return message

    def take_waiting(self, leases: set[_Lease] | None = None) -> list[ClaimedMessage]:
        """Remove and return the waiting messages (only those of ``leases`` when given); the
        caller gives their leases back."""
        taken: list[ClaimedMessage] = []
        for waiting in self._waiting.values():
            keys = list(waiting) if leases is None else [key for key in waiting if key in leases]
            taken += [waiting.pop(key) for key in keys]
        self.total_waiting -= len(taken)
        return taken

    # --- running deliveries ------------------------------------------------------------------

    def started(self, endpoint: str) -> None:
        self.in_flight[endpoint] += 1
        self.total_in_flight += 1

    def finished(self, endpoint: str) -> None:
        self.in_flight[endpoint] -= 1
        self.total_in_flight -= 1
