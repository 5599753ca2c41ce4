from __future__ import annotations

from pathlib import Path

import pytest

from connectors.settings import EndpointKind
from hub.config import load_settings
from schemas.errors import ConfigurationError


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_CONFIG_FILE", raising=False)
    settings = load_settings()
    assert settings.database_url.startswith("sqlite:")
    assert settings.worker.concurrency >= 1
    assert settings.endpoints == {}


def test_environment_and_file_with_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(
        """
database_url = "sqlite:///from-file.db"
[worker]
concurrency = 8
[endpoints.dvcqg]
kind = "dvcqg"
url = "http://127.0.0.1:9000"
[[routing]]
kinds = ["dossier.sync"]
endpoints = ["dvcqg"]
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("HUB_CONFIG_FILE", str(config))
    monkeypatch.setenv("HUB_WORKER__CONCURRENCY", "16")
    settings = load_settings()
    assert settings.database_url == "sqlite:///from-file.db"
    assert settings.worker.concurrency == 16  # environment beats the file
    assert settings.endpoints["dvcqg"].kind is EndpointKind.DVCQG
    assert settings.endpoints["dvcqg"].retry.max_attempts == 8


def test_invalid_values_name_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_CONFIG_FILE", raising=False)
    monkeypatch.setenv("HUB_WORKER__CONCURRENCY", "zero")
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert "worker.concurrency" in str(err.value)


def test_routing_to_unknown_endpoint_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_CONFIG_FILE", raising=False)
    with pytest.raises(ConfigurationError) as err:
        load_settings(routing=[{"kinds": ["dossier.sync"], "endpoints": ["nowhere"]}])
    assert "nowhere" in str(err.value)


def test_broken_or_missing_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_CONFIG_FILE", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings()
    broken = tmp_path / "broken.toml"
    broken.write_text("[worker\nconcurrency = 1", encoding="utf-8")
    monkeypatch.setenv("HUB_CONFIG_FILE", str(broken))
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings()


def test_unknown_keys_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_CONFIG_FILE", raising=False)
    with pytest.raises(ConfigurationError):
        load_settings(worker={"concurency": 3})
