"""Generic JSON POST connector (the demo's stand-in portal and the benchmark's receiver).

The body is the canonical payload as JSON. Headers: ``X-Message-Id`` (stable across retries,
for de-duplication: delivery is at-least-once, docs/delivery.md §5), ``X-Message-Kind``,
``X-Attempt`` and ``X-Dossier-Code`` when known.

Answers map onto the hub's error hierarchy: 2xx delivered; 408, 425, 429 and 5xx retryable
(``Retry-After`` passed on); 401/403 refused credentials; any other 4xx a business rejection.
"""

from __future__ import annotations

import json

import httpx

from connectors.base import Delivery, DeliveryReceipt, summarize
from connectors.http import parse_retry_after
from connectors.settings import EndpointSettings
from schemas.errors import (
    BusinessRejectionError,
    EndpointBusyError,
    RemoteAuthenticationError,
    TransportError,
)

RETRYABLE_STATUS = frozenset({408, 425, 429})


class WebhookConnector:
    """POSTs each delivery as JSON to one URL."""

    def __init__(self, name: str, settings: EndpointSettings, http: httpx.AsyncClient) -> None:
        self.name = name
        self.settings = settings
        self._http = http
        self._extra_headers = {str(k): str(v) for k, v in settings.options.get("headers", {}).items()}

    async def deliver(self, delivery: Delivery) -> DeliveryReceipt:
        body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Message-Id": delivery.message_id,
            "X-Message-Kind": delivery.kind,
            "X-Attempt": str(delivery.attempt),
            **self._extra_headers,
            **delivery.headers,
        }
        if delivery.dossier_code:
            headers["X-Dossier-Code"] = delivery.dossier_code
        request_summary = f"POST {self.settings.url} X-Message-Id={delivery.message_id} ({len(body)} bytes)"
        try:
            response = await self._http.post(self.settings.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransportError(
                f"{self.name}: timed out ({type(exc).__name__})",
                message_vi=f"{self.name}: hết thời gian chờ phản hồi",
                details={"timeout": True, "request_summary": request_summary},
            ) from exc
        except httpx.TransportError as exc:
            raise TransportError(
                f"{self.name}: connection failed ({type(exc).__name__}: {exc})",
                message_vi=f"{self.name}: không kết nối được tới hệ thống nhận",
                details={"request_summary": request_summary},
            ) from exc
        status = response.status_code
        response_summary = f"HTTP {status} {summarize(response.content, 500)}"
        details = {
            "status_code": status,
            "request_summary": request_summary,
            "response_summary": response_summary,
        }
        if 200 <= status < 300:
            return DeliveryReceipt(
                status_code=status,
                request_summary=request_summary,
                response_summary=response_summary,
                remote_reference=response.headers.get("X-Receipt-Id"),
            )
        if status in RETRYABLE_STATUS or status >= 500:
            raise EndpointBusyError(
                f"{self.name}: HTTP {status}",
                message_vi=f"{self.name}: hệ thống nhận đang bận (HTTP {status})",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                details=details,
            )
        if status in (401, 403):
            raise RemoteAuthenticationError(
                f"{self.name}: credentials refused (HTTP {status})",
                message_vi=f"{self.name}: hệ thống nhận từ chối thông tin xác thực (HTTP {status})",
                details=details,
            )
        raise BusinessRejectionError(
            f"{self.name}: rejected (HTTP {status})",
            message_vi=f"{self.name}: hệ thống nhận từ chối bản tin (HTTP {status})",
            details=details,
        )

    async def aclose(self) -> None:
        """The HTTP client belongs to the caller (the worker closes it)."""


def build_webhook_connector(
    name: str, settings: EndpointSettings, http: httpx.AsyncClient
) -> WebhookConnector:
    return WebhookConnector(name, settings, http)
