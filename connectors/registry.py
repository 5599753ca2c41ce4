"""Build connectors from endpoint settings, by kind, and the HTTP clients they use.

Connector modules are imported lazily, so configuring only webhooks never imports zeep.
:func:`open_connectors` owns what it builds: one tuned HTTP client per endpoint
(:func:`connectors.http.build_http_client`) and the connector on top of it, closed together.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx

from connectors.base import Connector
from connectors.http import TransportKind, build_http_client
from connectors.settings import EndpointKind, EndpointSettings
from schemas.errors import ConfigurationError


@asynccontextmanager
async def open_connectors(
    endpoints: Mapping[str, EndpointSettings], *, transport: TransportKind = TransportKind.AIOHTTP
) -> AsyncIterator[dict[str, Connector]]:
    """Connectors for ``endpoints`` (name → connector), each on its own HTTP client.

    On exit every connector, then every client, is closed; a failure to close one is ignored
    so that the others still close.
    """
    clients: list[httpx.AsyncClient] = []
    connectors: dict[str, Connector] = {}
    try:
        for name, endpoint in endpoints.items():
            client = build_http_client(endpoint, transport=transport)
            clients.append(client)
            connectors[name] = build_connector(name, endpoint, client)
        yield connectors
    finally:
        for connector in connectors.values():
            with contextlib.suppress(Exception):
                await connector.aclose()
        for opened in clients:
            with contextlib.suppress(Exception):
                await opened.aclose()


def build_connector(name: str, settings: EndpointSettings, http: httpx.AsyncClient) -> Connector:
    """The connector for endpoint ``name``; ``http`` is the client it must use."""
    if settings.kind is EndpointKind.WEBHOOK:
        from connectors.webhook import build_webhook_connector

        return build_webhook_connector(name, settings, http)
    if settings.kind is EndpointKind.DVCQG:
        from connectors.dvcqg.connector import build_dvcqg_connector

        connector: Connector = build_dvcqg_connector(name, settings, http)
        return connector
    if settings.kind is EndpointKind.LGSP_SOAP:
        from connectors.lgsp.connector import build_lgsp_soap_connector

        connector = build_lgsp_soap_connector(name, settings, http)
        return connector
    if settings.kind is EndpointKind.LGSP_REST:
        from connectors.lgsp.connector import build_lgsp_rest_connector

        connector = build_lgsp_rest_connector(name, settings, http)
        return connector
    raise ConfigurationError(
        f"endpoint {name}: unsupported kind {settings.kind!r}",
        message_vi=f"Đầu nhận {name}: loại kết nối {settings.kind!r} không được hỗ trợ",
    )
