"""Build a :class:`~connectors.base.Connector` from an endpoint's settings, by kind.

Connector modules are imported lazily, so configuring only webhooks never imports zeep.
"""

from __future__ import annotations

import httpx

from connectors.base import Connector
from connectors.settings import EndpointKind, EndpointSettings
from schemas.errors import ConfigurationError


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
