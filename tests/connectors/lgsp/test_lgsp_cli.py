"""``hub simulate lgsp`` in its own process, driven by the connectors over real sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from connectors.lgsp import build_lgsp_rest_connector, build_lgsp_soap_connector
from connectors.settings import EndpointKind, EndpointSettings
from tests.connectors.lgsp.lgsp_factories import sync_delivery

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def simulator_process() -> Iterator[dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.commands.simulate_lgsp", "--port", "0", "--token-lifetime", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)


async def test_simulator_process_serves_soap_and_rest(
    http: httpx.AsyncClient, simulator_process: dict[str, str]
) -> None:
    info = simulator_process
    soap = build_lgsp_soap_connector(
        "lgsp",
        EndpointSettings(
            kind=EndpointKind.LGSP_SOAP,
            url=info["soap12"],
            username="hub",
            password=SecretStr("hub-secret"),
            options={"soap_version": "1.2"},
        ),
        http,
    )
    rest = build_lgsp_rest_connector(
        "lgsp-rest",
        EndpointSettings(
            kind=EndpointKind.LGSP_REST,
            url=info["token"].removesuffix("/token"),
            client_id="hub-client",
            client_secret=SecretStr("hub-client-secret"),
        ),
        http,
    )
    await soap.deliver(sync_delivery(message_id="cli-1"))
    await rest.deliver(sync_delivery(message_id="cli-2"))
    stats = (await http.get(info["wsdl"].replace("/lgsp?wsdl", "/_control/stats"))).json()
    assert stats["records"] == 2
    assert stats["tokens"] == 1
    wsdl = await http.get(info["wsdl"])
    assert b"LgspMotcuaSoap12Binding" in wsdl.content
