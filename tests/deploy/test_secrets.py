"""Secrets from files (docs/deployment.md, "Secrets"): a directory of secret files named like
the environment variables (Docker/Kubernetes ``/run/secrets``), read by pydantic-settings'
``NestedSecretsSettingsSource``; signing-key passwords and PINs by their ``*_env`` name."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from hub.api.app import create_app
from hub.config import load_settings
from hub.db.migrate import upgrade
from hub.services.signing_keys import build_signing_facade, key_sources
from schemas.errors import ConfigurationError
from signing.keys import Pkcs11KeySource, Pkcs12KeySource

STRONG_TOKEN = "Ro7-bootstrap-Secret-for-tests-xQ2vL9"


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("HUB_CONFIG_FILE", "HUB_SECRETS_DIR", "HUB_DATABASE_URL", "HUB_BOOTSTRAP_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "run-secrets"
    directory.mkdir()
    return directory


def _write(directory: Path, name: str, value: str) -> None:
    # Trailing newlines (echo, editors) are stripped, as Docker secrets usually carry one.
    (directory / name).write_text(value + "\n", encoding="utf-8")


def test_database_password_and_bootstrap_token_from_files(
    secrets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(secrets, "hub_database_password", "p@ss:w/rd")
    _write(secrets, "hub_bootstrap_admin_token", STRONG_TOKEN)
    # required with a secrets directory (hub/lookup/owner_hash.py)
    _write(secrets, "hub_lookup__owner_id_key", "owner-id-hmac-key-0123456789")
    monkeypatch.setenv("HUB_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql://hub@db:5432/hub")

    settings = load_settings()
    url = make_url(settings.database_url)
    # The password goes into the URL (quoted), the URL itself names none.
    assert (url.username, url.password, url.host, url.database) == ("hub", "p@ss:w/rd", "db", "hub")
    assert settings.secrets_dir == secrets

    local = settings.model_copy(
        update={"database_url": f"sqlite:///{tmp_path / 'h.db'}", "data_dir": tmp_path}
    )
    upgrade(local.database_url)
    app = create_app(local, route_modules=())
    principal = app.state.services.keys.authenticate(STRONG_TOKEN)
    assert principal is not None
    assert principal.role.value == "admin"


def test_endpoint_credentials_from_files_merge_with_the_config_file(
    secrets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(
        '[endpoints.lgsp]\nkind = "lgsp_rest"\nurl = "https://lgsp.example/api"\nclient_id = "hub"\n',
        encoding="utf-8",
    )
    _write(secrets, "hub_endpoints__lgsp__client_secret", "oauth-client-secret")
    _write(secrets, "HUB_ENDPOINTS__LGSP__PASSWORD", "soap-password")  # names are case-insensitive
    monkeypatch.setenv("HUB_CONFIG_FILE", str(config))

    endpoint = load_settings(secrets_dir=secrets).endpoints["lgsp"]
    assert endpoint.url == "https://lgsp.example/api"
    assert endpoint.client_id == "hub"
    assert endpoint.client_secret is not None
    assert endpoint.client_secret.get_secret_value() == "oauth-client-secret"
    assert endpoint.password is not None
    assert endpoint.password.get_secret_value() == "soap-password"


def test_the_environment_wins_over_a_file(secrets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(secrets, "hub_bootstrap_admin_token", "from-the-file-" + STRONG_TOKEN)
    monkeypatch.setenv("HUB_BOOTSTRAP_ADMIN_TOKEN", "from-the-environment-" + STRONG_TOKEN)
    token = load_settings(secrets_dir=secrets).bootstrap_admin_token
    assert token is not None
    assert token.get_secret_value() == "from-the-environment-" + STRONG_TOKEN


def test_signing_key_password_and_pin_from_files_named_by_their_env(
    secrets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p12 = tmp_path / "agency.p12"
    p12.write_bytes(b"not opened at start-up")
    module = tmp_path / "libtoken.so"
    module.write_bytes(b"not loaded at start-up")
    _write(secrets, "HUB_KEY_AGENCY_PASSWORD", "p12-password")
    _write(secrets, "HUB_KEY_TOKEN_PIN", "123456")
    monkeypatch.delenv("HUB_KEY_AGENCY_PASSWORD", raising=False)
    monkeypatch.setenv("HUB_KEY_TOKEN_PIN", "654321")  # the environment wins here too
    settings = load_settings(
        secrets_dir=secrets,
        data_dir=tmp_path,
        signing={
            "keys": {
                "agency": {
                    "kind": "pkcs12",
                    "purpose": "seal",
                    "path": str(p12),
                    "password_env": "HUB_KEY_AGENCY_PASSWORD",
                },
                "token": {
                    "kind": "pkcs11",
                    "purpose": "personal",
                    "module": str(module),
                    "token_label": "T",
                    "key_label": "K",
                    "pin_env": "HUB_KEY_TOKEN_PIN",
                },
            }
        },
    )
    sources = key_sources(settings.signing, settings.secret_environment())
    agency, token = sources["agency"], sources["token"]
    assert isinstance(agency, Pkcs12KeySource)
    assert isinstance(token, Pkcs11KeySource)
    assert agency.password.reveal() == "p12-password"
    assert token.pin.reveal() == "654321"
    # The facade the API builds looks there by default.
    build_signing_facade(settings)

    without = settings.model_copy(update={"secrets_dir": None})
    with pytest.raises(ConfigurationError, match="HUB_KEY_AGENCY_PASSWORD"):
        build_signing_facade(without)


def test_a_missing_secrets_directory_is_a_configuration_error(
    secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_SECRETS_DIR", str(secrets / "absent"))
    with pytest.raises(ConfigurationError, match=r"HUB_SECRETS_DIR=.*does not exist"):
        load_settings()
