"""An in-process portal at the declared seam :class:`connectors.base.Connector`.

:class:`FakeConnector` answers like :class:`connectors.webhook.WebhookConnector` talking to
:class:`hub.simulators.sink.WebhookSink` (``configure(status=, fail_first=)`` is a status fault of
its fault model, for the first ``fail_first`` tries of each message; same error
classes), without a socket; ``test_connector_contract.py`` runs the same tests on both. A
``gate`` holds deliveries in flight until the test opens it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from connectors.base import Delivery, DeliveryReceipt
from connectors.http_errors import is_retry_later
from schemas.errors import BusinessRejectionError, EndpointBusyError, RemoteAuthenticationError


@dataclass
class FakeBehaviour:
    status: int = 200
    fail_first: int = 0
    """Fail only the first ``fail_first`` tries of each message (0: every try)."""


class FakeConnector:
    def __init__(self, name: str, *, gate: asyncio.Event | None = None) -> None:
        self.name = name
        self.behaviour = FakeBehaviour()
        self.gate = gate
        self.tries: list[Delivery] = []
        self.delivered: list[Delivery] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._seen: dict[str, int] = {}

    def configure(self, *, status: int = 200, fail_first: int = 0) -> None:
        self.behaviour = FakeBehaviour(status=status, fail_first=fail_first)

    async def deliver(self, delivery: Delivery) -> DeliveryReceipt:
        self.tries.append(delivery)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            return self._answer(delivery)
        finally:
            self.in_flight -= 1

    def _answer(self, delivery: Delivery) -> DeliveryReceipt:
        count = self._seen.get(delivery.message_id, 0) + 1
        self._seen[delivery.message_id] = count
        behaviour = self.behaviour
        failing = behaviour.status != 200 and (behaviour.fail_first == 0 or count <= behaviour.fail_first)
        status = behaviour.status if failing else 200
        request = f"FAKE {self.name} X-Message-Id={delivery.message_id}"
        response = f"HTTP {status}"
        if status == 200:
            self.delivered.append(delivery)
            return DeliveryReceipt(status_code=status, request_summary=request, response_summary=response)
        exchange = {"status_code": status, "request_summary": request, "response_summary": response}
        if is_retry_later(status):
            raise EndpointBusyError(f"{self.name}: HTTP {status}", **exchange)
        if status in (401, 403):
            raise RemoteAuthenticationError(f"{self.name}: credentials refused (HTTP {status})", **exchange)
        raise BusinessRejectionError(f"{self.name}: rejected (HTTP {status})", **exchange)

    async def aclose(self) -> None:
        """Nothing to close."""
