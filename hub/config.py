"""Configuration: environment variables with the ``HUB_`` prefix and an optional TOML file.

Precedence: explicit keyword arguments > environment (``HUB_DATABASE_URL``,
``HUB_WORKER__CONCURRENCY`` for nested keys) > secret files in the directory named by
``HUB_SECRETS_DIR`` > the file named by ``HUB_CONFIG_FILE`` > defaults.

Secrets (docs/deployment.md, "Secrets"): every setting may come from a file of the secrets
directory named like its environment variable (``hub_database_password``,
``hub_bootstrap_admin_token``, ``hub_endpoints__lgsp__password``: pydantic-settings'
``NestedSecretsSettingsSource``, the layout of Docker and Kubernetes secrets under
``/run/secrets``); the passwords and PINs of signing keys, named by their ``password_env`` /
``pin_env``, are read from the environment or from a file of that name there
(:meth:`Settings.secret_environment`).

Everything the official portal specifications leave unconfirmed (paths, service names, code
tables, credentials) is configuration with the documented values as defaults. Validation
happens once, at start-up, and fails with a message naming the bad key.
"""

from __future__ import annotations

import os
import tomllib
from collections import ChainMap
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, IPvAnyNetwork, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from connectors.settings import EndpointSettings
from hub.reports.formats import FileFormat
from schemas.errors import ConfigurationError
from schemas.settings import Section
from signing.settings import SigningSettings

#: Environment variables that choose where settings come from (not settings themselves).
CONFIG_FILE_ENV = "HUB_CONFIG_FILE"
SECRETS_DIR_ENV = "HUB_SECRETS_DIR"


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
    """The delivery worker (docs/delivery.md §4, §9, §12)."""

    concurrency: Annotated[int, Field(ge=1, le=4096)] = 64
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 100
    lease_seconds: Annotated[float, Field(gt=1)] = 60
    #: Lease renewal interval (every message held).
    heartbeat_seconds: Annotated[float, Field(gt=0)] = 15
    poll_interval_seconds: Annotated[float, Field(gt=0)] = 1.0
    completion_flush_seconds: Annotated[float, Field(gt=0)] = 0.02
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] = 30
    #: The worker's own heartbeat (``workers`` table), independent of the leases.
    worker_heartbeat_seconds: Annotated[float, Field(gt=0)] = 1.0
    #: A worker silent this long is dead: the rescuer releases its leases at once (§12.3).
    dead_worker_seconds: Annotated[float, Field(gt=0)] = 5.0
    #: A message is not sent once its lease, or the worker's liveness, is this close to running
    #: out without a successful heartbeat (the fence, §12.2).
    fence_margin_seconds: Annotated[float, Field(gt=0)] = 1.0
    #: PostgreSQL ``lock_timeout`` / ``statement_timeout`` of every worker transaction (§12.1).
    lock_timeout_seconds: Annotated[float, Field(gt=0)] = 2.0
    statement_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0

    @model_validator(mode="after")
    def _heartbeats_fit_their_windows(self) -> WorkerSettings:
        """Each heartbeat must land before the window it renews, less the fence margin, runs out."""
        if self.heartbeat_seconds + self.fence_margin_seconds >= self.lease_seconds:
            raise ValueError("worker: heartbeat_seconds + fence_margin_seconds must be below lease_seconds")
        if self.worker_heartbeat_seconds + self.fence_margin_seconds >= self.dead_worker_seconds:
            raise ValueError(
                "worker: worker_heartbeat_seconds + fence_margin_seconds must be below dead_worker_seconds"
            )
        return self


class ApiSettings(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    max_body_bytes: Annotated[int, Field(ge=1024)] = 20 * 1024 * 1024
    #: API processes of ``hub serve`` on one port (docs/deployment.md, "Several API processes");
    #: the delivery worker, when it runs in-process, runs in the first one.
    processes: Annotated[int, Field(ge=1, le=64)] = 1
    #: Failed authentications (unknown key, wrong gateway secret) allowed per client address and
    #: minute; past that the address gets 429 until the window moves on (0 disables the limit).
    auth_failures_per_minute: Annotated[int, Field(ge=0)] = 30
    #: Base of the download URLs the portals fetch (``DuongDanTepTinKetQua``).
    public_base_url: str = "http://127.0.0.1:8080"
    #: Reverse proxies (addresses or CIDR networks) whose ``X-Forwarded-For`` / ``-Proto`` are
    #: believed; from anyone else these headers are ignored (docs/security.md §5).
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)


class LookupSettings(Section):
    sms_keyword: str = "HS"
    #: Require the owner's ID number for web lookups (privacy, Thanh Hóa ``SGT`` parameter).
    require_owner_id: bool = True
    #: Shared secret an SMS gateway may send as ``X-Gateway-Secret`` instead of an API key.
    sms_shared_secret: SecretStr | None = None
    #: Public lookups allowed per client address and minute (0 disables the limit).
    rate_limit_per_minute: Annotated[int, Field(ge=0)] = 60
    #: Wrong ID numbers allowed per dossier code and hour, from all clients together (0: no
    #: limit); then that code answers 429 until the hour has passed (docs/security.md §5).
    failed_attempts_per_code_per_hour: Annotated[int, Field(ge=0)] = 5
    #: Key of the HMAC stored for the owner's ID number (:mod:`hub.lookup.owner_hash`); required
    #: with a secrets directory (file ``hub_lookup__owner_id_key``), generated otherwise.
    owner_id_key: Annotated[SecretStr | None, Field(min_length=16)] = None


class RetentionSettings(Section):
    """How long finished work is kept before the pruner deletes it (:mod:`hub.outbox.retention`).

    Only delivered messages (with their attempts and payload revisions), finished DLQ bulk
    jobs and the rows of stopped worker processes are pruned; dead letters, pending and
    in-flight messages, discarded messages (the operator's reason) and the audit log are never
    touched. ``0`` days keeps everything.
    """

    delivered_days: Annotated[int, Field(ge=0)] = 30
    bulk_jobs_days: Annotated[int, Field(ge=0)] = 30
    #: Rows of worker processes stopped (or found dead) this long ago (docs/delivery.md §12.3).
    workers_days: Annotated[int, Field(ge=0)] = 7
    #: Rows deleted per transaction (short transactions: never a long lock on the outbox).
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 1000
    #: Pause between two batches, leaving the database to the delivery path.
    batch_pause_seconds: Annotated[float, Field(ge=0)] = 0.5
    #: Seconds between two pruning runs of a worker process.
    interval_seconds: Annotated[float, Field(gt=0)] = 3600


class IntakeSettings(Section):
    #: How far back a late entry may go (docs/architecture.md, "Late entries"): work done by
    #: hand during an outage is entered as soon as the system is back (Decision 692/QĐ-SNN
    #: Art. 13.2); older events are refused (422).
    late_entry_window_days: Annotated[int, Field(ge=1, le=90)] = 7


class OutageSettings(Section):
    #: How often a running hub process records that it is alive (``hub_runs``); a hub outage's
    #: start is known to within this.
    heartbeat_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    #: A gap this long between the last sign of life of every hub process and the next start is
    #: recorded as an outage of the hub itself (must exceed ``heartbeat_seconds``).
    min_gap_seconds: Annotated[float, Field(gt=0)] = 120.0

    @model_validator(mode="after")
    def _gap_exceeds_heartbeat(self) -> OutageSettings:
        if self.min_gap_seconds <= self.heartbeat_seconds:
            raise ValueError("outages: min_gap_seconds must exceed heartbeat_seconds")
        return self


class ReportSchedule(Section):
    """A report exported on a schedule (docs/reports.md §10): ``[[reports.schedules]]``."""

    #: Names the schedule in the run records, the audit and the file names.
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
    report: Literal["ontime", "usage"] = "ontime"
    format: FileFormat = FileFormat.XLSX
    #: The on-time report's grouping.
    group_by: Literal["procedure", "field", "unit", "channel"] = "procedure"
    #: Which period a run exports: the month, quarter or year before the run's.
    period: Literal["previous_month", "previous_quarter", "previous_year"] = "previous_month"
    #: The run's day of the month (of the quarter's or year's first month) and time, Vietnam time.
    day: Annotated[int, Field(ge=1, le=28)] = 1
    time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "06:00"
    #: Where the file goes: a folder (written atomically) or a declared ``webhook`` endpoint
    #: (an outbox message, with the endpoint's retries and dead-letter queue); exactly one.
    folder: Path | None = None
    endpoint: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ReportSchedule:
        if (self.folder is None) == (self.endpoint is None):
            raise ValueError(f"reports.schedules {self.name}: give exactly one of folder and endpoint")
        if self.format == "pdf" and self.report != "ontime":
            raise ValueError(f"reports.schedules {self.name}: the usage report has no PDF")
        return self


class ReportSettings(Section):
    """On-time statistics (docs/reports.md §4): how days are counted."""

    #: A calendar file (the shape of ``hub/reports/holidays_vn.json``); ``None``: the bundled one.
    calendar_file: Path | None = None
    #: Procedures (``MaTTHC`` as stored) whose time limit is in calendar days; every other one
    #: counts working days.
    calendar_day_procedures: list[str] = Field(default_factory=list)
    #: The records' PDF header (Decree 30/2020 Appendix I): the issuing agency and the body above
    #: it, e.g. "Sở Nông nghiệp và Môi trường" under "UBND tỉnh Ninh Bình" (docs/reports.md §7.3).
    agency_name: str = ""
    parent_agency_name: str = ""
    #: The columns of the tracking book and control slip (the shape of
    #: ``hub/reports/records_layout.json``); ``None``: the bundled, unverified one (§7.1).
    records_layout_file: Path | None = None
    #: TrueType fonts of the PDFs (Vietnamese glyphs needed; Liberation Serif by default).
    font_path: Path = Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf")
    font_bold_path: Path = Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Bold.ttf")
    font_italic_path: Path = Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Italic.ttf")
    #: Scheduled exports (docs/reports.md §10), run by ``hub report run-schedules`` and by the
    #: delivery worker's process every ``schedule_check_seconds`` (0: only by the command).
    schedules: list[ReportSchedule] = Field(default_factory=list)
    schedule_check_seconds: Annotated[float, Field(ge=0)] = 300

    @model_validator(mode="after")
    def _schedule_names_unique(self) -> ReportSettings:
        names = [schedule.name for schedule in self.schedules]
        if len(names) != len(set(names)):
            raise ValueError("reports.schedules: names must be unique")
        return self


#: Signature algorithms an ID token may use (asymmetric only: "none" and the HMAC ones, keyed
#: with the client secret, are never accepted; docs/security.md §10.1).
OIDC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


def _loopback_or_https(url: str, key: str) -> str:
    """``url`` when it is HTTPS, or HTTP to a loopback host (a local test provider)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return url
    raise ValueError(f"console.oidc.{key} must be an https:// URL (http only to a loopback host): {url!r}")


class OidcSettings(Section):
    """Sign-in through the province's identity provider (OpenID Connect, docs/console.md).

    Configuration only: the provider's endpoints and keys come from its discovery document
    (``<issuer>/.well-known/openid-configuration``). Local accounts stay the default; an
    identity signs in only as an existing, enabled local account it maps to.
    """

    #: Shown on the login page's button ("Đăng nhập bằng <provider_name>").
    provider_name: Annotated[str, Field(min_length=1, max_length=80)]
    #: The provider's issuer identifier, exactly as its ID tokens' ``iss`` (no trailing slash
    #: added or removed).
    issuer: str
    client_id: Annotated[str, Field(min_length=1)]
    #: From the secrets directory (file ``hub_console__oidc__client_secret``); unset: a public
    #: client (PKCE only, ``client_id`` in the token request).
    client_secret: SecretStr | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    #: The ID-token claim whose value is the local username, for the first sign-in; afterwards
    #: the account is linked to the identity's ``iss`` + ``sub`` and found by them.
    match_claim: Annotated[str, Field(min_length=1, max_length=100)] = "preferred_username"
    #: The console's public base URL (``https://hub.example.gov.vn``); the redirect URI
    #: registered at the provider is ``<redirect_base_url>/console/oidc/callback``. Unset: the
    #: hub's ``api.public_base_url``.
    redirect_base_url: str | None = None
    #: Only identities whose verified ``email`` is in one of these domains (empty: any).
    allowed_email_domains: list[str] = Field(default_factory=list)
    #: Only identities whose ``groups_claim`` lists one of these groups (empty: any).
    required_groups: list[str] = Field(default_factory=list)
    groups_claim: Annotated[str, Field(min_length=1)] = "groups"
    #: ID-token signature algorithms accepted (a subset of :data:`OIDC_ALGORITHMS`).
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "PS256", "ES256"])
    #: Clock skew allowed on ``exp`` / ``iat`` / ``nbf``.
    leeway_seconds: Annotated[int, Field(ge=0, le=300)] = 60
    #: The discovery document and the JWKS are fetched again after this long.
    discovery_cache_seconds: Annotated[float, Field(gt=0, le=86400)] = 3600
    #: Timeout of each request to the provider.
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10
    #: Hide the password form (the admin's choice; ``POST /console/login`` is refused too).
    hide_password_login: bool = False

    @model_validator(mode="after")
    def _valid(self) -> OidcSettings:
        _loopback_or_https(self.issuer, "issuer")
        if self.redirect_base_url is not None:
            _loopback_or_https(self.redirect_base_url, "redirect_base_url")
            self.redirect_base_url = self.redirect_base_url.rstrip("/")
        if "openid" not in self.scopes:
            raise ValueError("console.oidc.scopes must include 'openid'")
        unknown = sorted(set(self.algorithms) - OIDC_ALGORITHMS)
        if unknown or not self.algorithms:
            raise ValueError(
                f"console.oidc.algorithms: {unknown or 'empty'} not allowed; "
                f"choose among {', '.join(sorted(OIDC_ALGORITHMS))}"
            )
        self.allowed_email_domains = [domain.lower().lstrip("@") for domain in self.allowed_email_domains]
        return self


class ConsoleSettings(Section):
    """The web console: accounts, sessions, lockout (docs/security.md §10)."""

    #: ``Secure`` cookies with the ``__Host-`` prefix: the console is served over HTTPS (directly
    #: or behind a TLS proxy). Only a loopback test over plain HTTP sets this false.
    secure_cookies: bool = True
    #: A session ends after this long without a request (OWASP Session Management: idle timeout).
    idle_timeout_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 30
    #: A session ends this long after the login, however busy (absolute timeout).
    absolute_timeout_hours: Annotated[float, Field(gt=0, le=24 * 7)] = 8
    #: Consecutive failed logins of one account before it is locked (0: never locked).
    lockout_threshold: Annotated[int, Field(ge=0)] = 5
    #: First lock; each further failure past the threshold doubles it, up to the maximum.
    lockout_seconds: Annotated[int, Field(ge=1)] = 60
    lockout_max_seconds: Annotated[int, Field(ge=1)] = 15 * 60
    #: Failed logins allowed per client address and minute, all accounts together (0: no limit).
    login_failures_per_address_per_minute: Annotated[int, Field(ge=0)] = 20
    #: argon2id parameters (RFC 9106 §4 low-memory profile by default; OWASP's floor is
    #: 19 MiB, t=2, p=1). Hashes made with other values are replaced at the next login.
    argon2_time_cost: Annotated[int, Field(ge=1)] = 3
    argon2_memory_kib: Annotated[int, Field(ge=1024)] = 65536
    argon2_parallelism: Annotated[int, Field(ge=1, le=64)] = 4
    #: Optional sign-in through an OpenID Connect provider (``[console.oidc]``; unset: off).
    oidc: OidcSettings | None = None


#: Shortest bootstrap admin token accepted (``secrets.token_urlsafe(32)`` gives 43 characters).
BOOTSTRAP_TOKEN_MIN_LENGTH = 32
#: Fewest distinct characters: refuses ``aaaa…`` and other long but guessable values.
BOOTSTRAP_TOKEN_MIN_DISTINCT = 10


def bootstrap_token_problem(token: str) -> str | None:
    """Why ``token`` is too weak to stand for an admin key (docs/security.md §2), or ``None``.

    The token opens full admin rights from any address, so it must resist guessing like a real
    key does (OWASP ASVS 4.0 §2.10.4: no default or guessable service credentials).
    """
    if len(token) < BOOTSTRAP_TOKEN_MIN_LENGTH:
        return (
            f"bootstrap_admin_token must have at least {BOOTSTRAP_TOKEN_MIN_LENGTH} characters "
            f"(has {len(token)}); generate one with: openssl rand -base64 32"
        )
    if len(set(token)) < BOOTSTRAP_TOKEN_MIN_DISTINCT:
        return (
            f"bootstrap_admin_token must use at least {BOOTSTRAP_TOKEN_MIN_DISTINCT} different "
            "characters; generate one with: openssl rand -base64 32"
        )
    return None


class MetricsSettings(Section):
    """Prometheus metrics (docs/deployment.md §6): who may read ``/metrics``, and where a
    worker-only process serves them."""

    #: ``/metrics`` on the API port; off: 404.
    enabled: bool = True
    #: Addresses (CIDR networks) allowed to scrape without an API key (the Prometheus
    #: servers). Anyone else needs a ``technician`` or ``admin`` key (401 without one, 403 with
    #: another role). The client address is the peer's, or the forwarded one from
    #: ``api.trusted_proxies``.
    scrape_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    #: ``hub worker`` (no API): serve ``/metrics`` on this port (unset: not served; 0: any free
    #: port), to ``scrape_networks`` only.
    worker_port: Annotated[int | None, Field(ge=0, le=65535)] = None
    worker_host: str = "127.0.0.1"
    #: Queue depth, circuit and worker gauges are read from the database at most this often.
    database_cache_seconds: Annotated[float, Field(ge=0)] = 5.0


class TracingSettings(Section):
    """OpenTelemetry traces, exported over OTLP/HTTP (off by default; docs/deployment.md §6)."""

    enabled: bool = False
    #: OTLP/HTTP traces endpoint of the collector.
    endpoint: str = "http://127.0.0.1:4318/v1/traces"
    service_name: str = "motcua-hub"
    #: Share of new traces recorded (a caller's sampled ``traceparent`` is always followed).
    sample_ratio: Annotated[float, Field(ge=0, le=1)] = 1.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUB_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    database_url: str = "sqlite:///var/hub.db"
    #: Password put into ``database_url`` (so that the URL itself holds no secret; typically
    #: from the secrets directory, file ``hub_database_password``).
    database_password: SecretStr | None = None
    #: Directory of secret files (Docker/Kubernetes secrets, ``/run/secrets``). Read from
    #: ``HUB_SECRETS_DIR`` (or a keyword argument) before the other sources, so not from the file.
    secrets_dir: Path | None = None
    #: Token accepted as an admin API key, to create the first real keys (hub/auth/keys.py).
    bootstrap_admin_token: SecretStr | None = None
    data_dir: Path = Path("var")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    api: ApiSettings = Field(default_factory=ApiSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    endpoints: dict[str, EndpointSettings] = Field(default_factory=dict)
    routing: list[RoutingRule] = Field(default_factory=list)
    lookup: LookupSettings = Field(default_factory=LookupSettings)
    signing: SigningSettings = Field(default_factory=SigningSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    outages: OutageSettings = Field(default_factory=OutageSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @model_validator(mode="after")
    def _routes_name_known_endpoints(self) -> Settings:
        for index, rule in enumerate(self.routing):
            unknown = [name for name in rule.endpoints if name not in self.endpoints]
            if unknown:
                raise ValueError(f"routing[{index}] names unknown endpoints: {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _schedules_name_webhook_endpoints(self) -> Settings:
        for schedule in self.reports.schedules:
            if schedule.endpoint is None:
                continue
            endpoint = self.endpoints.get(schedule.endpoint)
            if endpoint is None or endpoint.kind != "webhook":
                raise ValueError(
                    f"reports.schedules {schedule.name}: endpoint {schedule.endpoint!r} "
                    "is not a declared webhook endpoint"
                )
        return self

    @model_validator(mode="after")
    def _bootstrap_token_is_strong(self) -> Settings:
        """Checked at start, so ``hub serve`` refuses a weak token with a configuration error."""
        if self.bootstrap_admin_token is not None and self.bootstrap_admin_token.get_secret_value():
            problem = bootstrap_token_problem(self.bootstrap_admin_token.get_secret_value())
            if problem is not None:
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _password_into_database_url(self) -> Settings:
        if self.database_password is not None:
            from sqlalchemy.engine import make_url

            url = make_url(self.database_url).set(password=self.database_password.get_secret_value())
            self.database_url = url.render_as_string(hide_password=False)
        return self

    def secret_environment(self) -> Mapping[str, str]:
        """Where ``password_env`` / ``pin_env`` variables are looked up: the process
        environment, then the files of the secrets directory (named like the variable)."""
        if self.secrets_dir is None:
            return os.environ
        files = NestedSecretsSettingsSource.load_secrets(self.secrets_dir.expanduser().resolve())
        return ChainMap(os.environ, files)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        given = init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        secrets_dir = given.get("secrets_dir") or os.environ.get(SECRETS_DIR_ENV)
        if secrets_dir:
            try:
                secrets = NestedSecretsSettingsSource(
                    file_secret_settings, secrets_dir=secrets_dir, secrets_dir_missing="error"
                )
            except SettingsError as exc:
                raise ConfigurationError(f"{SECRETS_DIR_ENV}={secrets_dir}: {exc}") from None
            sources = (*sources, secrets)
        path = os.environ.get(CONFIG_FILE_ENV)
        if not path:
            return sources
        if not os.path.isfile(path):
            raise ConfigurationError(f"{CONFIG_FILE_ENV}={path} does not exist")
        try:
            return (*sources, TomlConfigSettingsSource(settings_cls, toml_file=path))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{CONFIG_FILE_ENV}={path} is not valid TOML: {exc}") from exc


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
