"""Generic JSON POST connector (the demo's stand-in portal and the benchmark's receiver).

The body is the canonical payload as JSON. Headers: ``X-Message-Id`` (stable across retries,
for de-duplication: delivery is at-least-once, docs/delivery.md §5), ``X-Message-Kind``,
``X-Attempt``, ``X-Dossier-Code`` when known and ``X-Request-ID`` (the correlation id of the
change, docs/deployment.md §6) when the hub has one; ``Authorization: Bearer <password>`` when
the endpoint has a ``password`` (a token, from the secrets directory: docs/reports.md §10).

Answers map onto the hub's error hierarchy through :mod:`connectors.http_errors`: 2xx
delivered; 408, 425, 429 and 5xx retryable (``Retry-After`` passed on); 401/403 refused
credentials; any other 4xx a business rejection; timeouts and connection failures retryable.
"""

from __future__ import annotations

import json

import httpx

from connectors.base import SUMMARY_LIMIT, Delivery, DeliveryReceipt, excerpt, summarize
from connectors.http import DirectPost
from connectors.http_errors import RESPONSE_EXCERPT_CHARS, Remote, classify_status, map_transport_errors
from connectors.settings import EndpointSettings


class WebhookConnector:
    """POSTs each delivery as JSON to one URL.

    The request is sent through :class:`connectors.http.DirectPost` (prepared once for the URL);
    the request summary is the URL, masked once here, and the hub's own message id (a UUID), so
    only the answer is masked per delivery.
    """

    def __init__(self, name: str, settings: EndpointSettings, http: httpx.AsyncClient) -> None:
        self.name = name
        self.settings = settings
        self._remote = Remote(name, f"hệ thống nhận {name}")
        self._extra_headers = {str(k): str(v) for k, v in settings.options.get("headers", {}).items()}
        if settings.password is not None:  # a bearer token, e.g. from the secrets directory
            self._extra_headers["Authorization"] = f"Bearer {settings.password.get_secret_value()}"
        self._post = DirectPost(http, settings.url, {"Content-Type": "application/json; charset=utf-8"})
        self._summary_prefix = f"POST {excerpt(settings.url, SUMMARY_LIMIT // 2)} X-Message-Id="

    async def deliver(self, delivery: Delivery) -> DeliveryReceipt:
        body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "X-Message-Id": delivery.message_id,
            "X-Message-Kind": delivery.kind,
            "X-Attempt": str(delivery.attempt),
            **self._extra_headers,
            **delivery.headers,
        }
        if delivery.dossier_code:
            headers["X-Dossier-Code"] = delivery.dossier_code
        request_summary = f"{self._summary_prefix}{delivery.message_id} ({len(body)} bytes)"
        with map_transport_errors(self._remote, request_summary=request_summary):
            response = await self._post.post(body, headers)
        status = response.status_code
        answer = b"HTTP %d " % status + response.content
        error = classify_status(
            status,
            self._remote,
            headers=response.headers,
            request_summary=request_summary,
            response=answer,
        )
        if error is not None:
            raise error
        return DeliveryReceipt.of_excerpts(
            status_code=status,
            request_summary=summarize(request_summary),
            response_summary=excerpt(answer, RESPONSE_EXCERPT_CHARS),
            remote_reference=response.headers.get("X-Receipt-Id"),
        )

    async def aclose(self) -> None:
        """The HTTP client belongs to the caller (the worker closes it)."""


def build_webhook_connector(
    name: str, settings: EndpointSettings, http: httpx.AsyncClient
) -> WebhookConnector:
    return WebhookConnector(name, settings, http)
