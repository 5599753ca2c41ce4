"""Configuration: environment variables with the ``HUB_`` prefix and an optional TOML file.

Precedence: explicit keyword arguments > environment (``HUB_DATABASE_URL``,
``HUB_WORKER__CONCURRENCY`` for nested keys) > the file named by ``HUB_CONFIG_FILE`` >
defaults. Everything the official portal specifications leave unconfirmed (paths, service
names, code tables, credentials) is configuration with the documented values as defaults.
Validation happens once, at start-up, and fails with a message naming the bad key.
"""

from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from hub.errors import ConfigurationError


class EndpointKind(StrEnum):
    DVCQG = "dvcqg"
    """National Public Service Portal JSON adapter."""
    LGSP_SOAP = "lgsp_soap"
    LGSP_REST = "lgsp_rest"
    WEBHOOK = "webhook"
    """Generic JSON POST (the demo's stand-in portal, the benchmark sink)."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetrySettings(Section):
    """Per-endpoint retry schedule (delivery-patterns.md §3, Svix-style explicit list)."""

    schedule_seconds: list[float] = Field(
        default_factory=lambda: [5.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0, 43200.0]
    )
    jitter_ratio: Annotated[float, Field(ge=0, le=1)] = 0.2
    #: Retry-After is honoured but clamped to [min, max].
    retry_after_min_seconds: float = 1
    retry_after_max_seconds: float = 6 * 3600
    #: After 429 or a timeout, wait at least this long.
    throttle_min_seconds: float = 30

    @property
    def max_attempts(self) -> int:
        return len(self.schedule_seconds) + 1


class BreakerSettings(Section):
    failure_threshold: Annotated[int, Field(ge=1)] = 5
    open_seconds: Annotated[float, Field(gt=0)] = 30
    half_open_probes: Annotated[int, Field(ge=1)] = 1


class EndpointSettings(Section):
    kind: EndpointKind
    url: str
    enabled: bool = True
    timeout_seconds: Annotated[float, Field(gt=0)] = 30
    connect_timeout_seconds: Annotated[float, Field(gt=0)] = 5
    max_in_flight: Annotated[int, Field(ge=1)] = 32
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    #: Connector-specific options (service names, paths, WSDL file, agency code ...).
    options: dict[str, Any] = Field(default_factory=dict)


class RoutingRule(Section):
    """Which endpoints receive which message kinds.

    ``kinds``: message kinds (``dossier.sync``, ``dossier.progress``); ``origins``: only for
    dossiers from these origins (``source``, ``dvcqg``); empty means any.
    """

    kinds: list[str]
    endpoints: list[str]
    origins: list[str] = Field(default_factory=list)
    statuses: list[int] = Field(default_factory=list)


class WorkerSettings(Section):
    concurrency: Annotated[int, Field(ge=1, le=4096)] = 64
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 100
    lease_seconds: Annotated[float, Field(gt=1)] = 60
    heartbeat_seconds: Annotated[float, Field(gt=0)] = 15
    poll_interval_seconds: Annotated[float, Field(gt=0)] = 1.0
    completion_flush_seconds: Annotated[float, Field(gt=0)] = 0.02
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] = 30


class ApiSettings(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    max_body_bytes: Annotated[int, Field(ge=1024)] = 20 * 1024 * 1024
    #: Base of the download URLs the portals fetch (``DuongDanTepTinKetQua``).
    public_base_url: str = "http://127.0.0.1:8080"


class LookupSettings(Section):
    sms_keyword: str = "HS"
    #: Require the owner's ID number for web lookups (privacy, Thanh Hóa ``SGT`` parameter).
    require_owner_id: bool = True
    #: Shared secret an SMS gateway may send as ``X-Gateway-Secret`` instead of an API key.
    sms_shared_secret: SecretStr | None = None
    #: Public lookups allowed per client address and minute (0 disables the limit).
    rate_limit_per_minute: Annotated[int, Field(ge=0)] = 60


_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Pkcs12KeySettings(Section):
    """A server-held key in a PKCS#12 file; the password is read from the environment variable
    named by ``password_env`` at start-up (secrets never live in the configuration file)."""

    kind: Literal["pkcs12"]
    path: Path
    password_env: Annotated[str, Field(pattern=_ENV_NAME)]
    #: PNG drawn for this key's visible signatures: the officer's blue signature image or the
    #: agency's red seal (Decree 30/2020 Appendix I, 7d and 8a).
    image_path: Path | None = None
    prefer_pss: bool = False


class Pkcs11KeySettings(Section):
    """A key on a PKCS#11 token or HSM (Decree 68/2024 Art. 10 device/service certificate); the
    PIN is read from the environment variable named by ``pin_env`` at start-up."""

    kind: Literal["pkcs11"]
    module: Path
    token_label: str | None = None
    slot_no: Annotated[int | None, Field(ge=0)] = None
    key_label: str | None = None
    cert_label: str | None = None
    #: Hex ``CKA_ID`` of the key / certificate (labels often differ on Vietnamese tokens).
    key_id: Annotated[str | None, Field(pattern=r"^(?:[0-9A-Fa-f]{2})+$")] = None
    cert_id: Annotated[str | None, Field(pattern=r"^(?:[0-9A-Fa-f]{2})+$")] = None
    pin_env: Annotated[str, Field(pattern=_ENV_NAME)]
    image_path: Path | None = None
    prefer_pss: bool = False
    use_raw_mechanism: bool = False
    extra_certs: list[Path] = Field(default_factory=list)

    @model_validator(mode="after")
    def _selects_token_and_key(self) -> Pkcs11KeySettings:
        if self.token_label is None and self.slot_no is None:
            raise ValueError("set token_label or slot_no")
        if self.key_label is None and self.key_id is None:
            raise ValueError("set key_label or key_id")
        return self


SigningKeySettings = Annotated[Pkcs12KeySettings | Pkcs11KeySettings, Field(discriminator="kind")]


class SigningSettings(Section):
    trust_anchor_paths: list[Path] = Field(default_factory=list)
    tsa_url: str | None = None
    tsa_timeout_seconds: float = 180
    revocation_policy: Literal["warn", "refuse"] = "warn"
    font_path: Path = Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf")
    external_request_ttl_seconds: float = 900
    #: Server-held signing keys by id (``[signing.keys.agency]``), built at start-up.
    keys: dict[str, SigningKeySettings] = Field(default_factory=dict)
    #: Key ids the result service signs with: the competent person, then the agency seal.
    result_officer_key: str | None = None
    result_agency_key: str | None = None

    @model_validator(mode="after")
    def _result_keys_known(self) -> SigningSettings:
        for attr in ("result_officer_key", "result_agency_key"):
            key = getattr(self, attr)
            if key is not None and key not in self.keys:
                raise ValueError(f"{attr} names unknown key {key!r}")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUB_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    database_url: str = "sqlite:///var/hub.db"
    data_dir: Path = Path("var")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    api: ApiSettings = Field(default_factory=ApiSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    endpoints: dict[str, EndpointSettings] = Field(default_factory=dict)
    routing: list[RoutingRule] = Field(default_factory=list)
    lookup: LookupSettings = Field(default_factory=LookupSettings)
    signing: SigningSettings = Field(default_factory=SigningSettings)

    @model_validator(mode="after")
    def _routes_name_known_endpoints(self) -> Settings:
        for index, rule in enumerate(self.routing):
            unknown = [name for name in rule.endpoints if name not in self.endpoints]
            if unknown:
                raise ValueError(f"routing[{index}] names unknown endpoints: {', '.join(unknown)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFileSource(settings_cls))


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads the TOML file named by ``HUB_CONFIG_FILE`` (if any)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("HUB_CONFIG_FILE")
        if not path:
            return {}
        try:
            with open(path, "rb") as handle:
                return tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigurationError(f"HUB_CONFIG_FILE={path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"HUB_CONFIG_FILE={path} is not valid TOML: {exc}") from exc


def load_settings(**overrides: Any) -> Settings:
    """Load and validate settings, turning pydantic errors into one readable message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(part) for part in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigurationError("invalid configuration:\n" + "\n".join(lines)) from None
