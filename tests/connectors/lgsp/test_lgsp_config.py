"""The documented TOML configuration loads and builds both connectors through the registry."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import connectors.lgsp
from connectors.lgsp import LgspRestConnector, LgspSoapConnector
from connectors.registry import build_connector
from hub.config import load_settings
from hub.simulators.lgsp import LgspSimulator
from tests.connectors.lgsp.lgsp_factories import VARIANT_WSDL, sync_delivery


def test_docstring_example_is_valid_toml_for_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = connectors.lgsp.__doc__ or ""
    example = doc.split("Example (``HUB_CONFIG_FILE`` TOML)::", 1)[1].split("Both kinds", 1)[0]
    text = "\n".join(line[4:] for line in example.splitlines())
    text = text.replace("/etc/hub/wsdl/ninhbinh-lgsp.wsdl", str(VARIANT_WSDL))
    (tmp_path / "hub.toml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("HUB_CONFIG_FILE", str(tmp_path / "hub.toml"))
    settings = load_settings()
    assert settings.endpoints["lgsp"].options["soap_version"] == "1.2"
    client = httpx.AsyncClient()
    assert isinstance(build_connector("lgsp", settings.endpoints["lgsp"], client), LgspSoapConnector)
    assert isinstance(
        build_connector("lgsp-rest", settings.endpoints["lgsp-rest"], client), LgspRestConnector
    )


async def test_registry_builds_working_connectors(
    simulator: LgspSimulator, http: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hub.toml").write_text(
        f"""
[endpoints.lgsp]
kind = "lgsp_soap"
url = "{simulator.soap12_url}"
username = "hub"
password = "hub-secret"
options = {{ soap_version = "1.2" }}

[endpoints.lgsp-rest]
kind = "lgsp_rest"
url = "{simulator.url}"
client_id = "hub-client"
client_secret = "hub-client-secret"
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("HUB_CONFIG_FILE", str(tmp_path / "hub.toml"))
    settings = load_settings()
    for name in ("lgsp", "lgsp-rest"):
        connector = build_connector(name, settings.endpoints[name], http)
        await connector.deliver(sync_delivery(message_id=f"cfg-{name}"))
    assert [r.flavour for r in simulator.records] == ["soap12", "rest"]
