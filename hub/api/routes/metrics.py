"""``GET /metrics``: Prometheus metrics of this process (docs/deployment.md §6).

Who may read them: nobody when ``metrics.enabled`` is off (404, as if there were no route);
a client from one of ``metrics.scrape_networks`` (the Prometheus servers) without a key;
anyone else with a ``technician`` or ``admin`` API key (401 without a key, 403 with a key of
another role). Metrics name endpoints, queue depths and error rates: operational data a
source system, a portal or the public has no business reading (OWASP API Security Top 10,
API8 "Security misconfiguration": diagnostic endpoints exposed).
"""

from __future__ import annotations

from ipaddress import ip_address

from fastapi import APIRouter, Depends, Request, Response

from hub.api.deps import AccessPolicy, declare_policy, get_settings, require_role
from hub.api.errors import error_responses
from hub.db.models import ApiRole
from hub.telemetry.metrics import CONTENT_TYPE
from hub.telemetry.process import Telemetry
from schemas.errors import NotFoundError, PermissionDeniedError

router = APIRouter(tags=["monitoring"])

_technician = require_role(ApiRole.TECHNICIAN)


def from_scrape_network(request: Request) -> bool:
    """Whether the client address lies in ``metrics.scrape_networks``."""
    networks = get_settings(request).metrics.scrape_networks
    if not networks or request.client is None:
        return False
    try:
        client = ip_address(request.client.host)
    except ValueError:
        return False
    return any(client in network for network in networks)


async def metrics_access(request: Request) -> None:
    """404 when off; a scrape network passes; anyone else needs a technician (or admin) key."""
    if not get_settings(request).metrics.enabled:
        raise NotFoundError("not found", message_vi="không tìm thấy")
    if from_scrape_network(request):
        return
    if getattr(request.app.state, "services", None) is None:  # a worker's own port: no API keys
        raise PermissionDeniedError(
            "only metrics.scrape_networks may read this process's metrics",
            message_vi="chỉ các mạng được cấu hình mới được đọc số liệu giám sát",
        )
    await _technician(request)


declare_policy(
    metrics_access,
    AccessPolicy(
        roles=frozenset({ApiRole.TECHNICIAN, ApiRole.ADMIN}),
        note="or any client in metrics.scrape_networks; 404 when metrics.enabled is off",
    ),
)


@router.get(
    "/metrics",
    summary="Prometheus metrics (scrape networks, or a technician key)",
    dependencies=[Depends(metrics_access)],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}, **error_responses(401, 403, 404)},
    include_in_schema=True,
)
def metrics(request: Request) -> Response:
    telemetry: Telemetry = request.app.state.telemetry
    return Response(telemetry.metrics.exposition(), media_type=CONTENT_TYPE)
