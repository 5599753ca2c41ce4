"""The hub's DVCQG endpoint against the simulator, and a hook capturing what the connector sends."""

from __future__ import annotations

import json
from typing import Any

import httpx

from connectors.settings import EndpointSettings
from hub.simulators.dvcqg import DvcqgSimulator

MADONVI = "000.00.18.H42"


def endpoint_settings(sim: DvcqgSimulator, **options: Any) -> EndpointSettings:
    return EndpointSettings.model_validate(
        {
            "kind": "dvcqg",
            "url": sim.adapter_url,
            "username": "hub",
            "password": "hub-secret",
            "timeout_seconds": 2,
            "connect_timeout_seconds": 1,
            "options": {"madonvi": MADONVI, "login_backoff_seconds": 0.01, **options},
        }
    )


class Capture:
    """Request bodies the connector sent (an httpx event hook on the real client)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    async def __call__(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/mapi/g"):
            self.bodies.append(json.loads(request.content))
            self.headers.append(dict(request.headers))

    def services(self) -> list[str]:
        return [b["service"] for b in self.bodies]
