"""docker/Dockerfile and docker/compose.yml, checked without a Docker engine (docs/deployment.md).

What a build or ``docker compose up`` would find out late: a COPY of a missing path, a command
the ``hub`` CLI does not have, a HEALTHCHECK on a route that does not exist, environment
variables or secret files that are no settings (silently ignored), the API or a worker starting
before the migrations, a root user, a writable root filesystem.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import BaseModel
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from hub.cli import build_cli
from hub.config import CONFIG_FILE_ENV, SECRETS_DIR_ENV, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
#: Environment variables of the hub that choose where settings come from (not settings).
SOURCE_VARIABLES = {CONFIG_FILE_ENV}
#: Where Compose mounts secrets in a container.
RUN_SECRETS = "/run/secrets"


# --- reading the files ------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile(path: Path = DOCKER / "Dockerfile") -> list[Instruction]:
    """The instructions of a Dockerfile: comments dropped, continuation lines joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "a continuation line ends the Dockerfile"
    return instructions


def _all(keyword: str) -> list[str]:
    return [i.arguments for i in dockerfile() if i.keyword == keyword]


def image_env() -> dict[str, str]:
    """Every ``ENV key=value`` of the Dockerfile."""
    env: dict[str, str] = {}
    for arguments in _all("ENV"):
        words = shlex.split(arguments)
        if "=" not in words[0]:  # legacy form: ENV key value
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, _, value = word.partition("=")
            env[key] = value
    return env


def image_cmd() -> list[str]:
    [cmd] = _all("CMD")
    command = json.loads(cmd)  # exec form: the hub is PID 1 and receives the signals
    assert isinstance(command, list)
    return [str(word) for word in command]


def healthcheck_command() -> str:
    [check] = _all("HEALTHCHECK")
    _options, _, command = check.partition(" CMD ")
    assert command, check
    return command


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def hub_services() -> dict[str, dict[str, Any]]:
    """The services running the hub's image (built from this repository)."""
    return {name: svc for name, svc in compose()["services"].items() if "build" in svc}


def command_of(service: dict[str, Any]) -> list[str]:
    assert "entrypoint" not in service, "the image's entrypoint is the hub itself"
    return [str(word) for word in service.get("command") or image_cmd()]


def secret_targets(service: dict[str, Any]) -> list[str]:
    return [s["target"] if isinstance(s, dict) else s for s in service.get("secrets", [])]


# --- settings keys ----------------------------------------------------------------------------


def _candidates(annotation: Any) -> list[Any]:
    """The types a field may hold (``X | None`` → X; ``Annotated`` unwrapped; unions split)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _candidates(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [c for arg in typing.get_args(annotation) if arg is not type(None) for c in _candidates(arg)]
    return [annotation]


def is_settings_key(variable: str) -> bool:
    """Whether ``HUB_A__B__C`` (or the secret file ``hub_a__b__c``) names a setting ``a.b.c``."""
    if not variable.upper().startswith("HUB_"):
        return False
    parts = variable[4:].lower().split("__")
    current: list[Any] = [Settings]
    for part in parts:
        following: list[Any] = []
        for kind in current:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                field = kind.model_fields.get(part)
                if field is not None:
                    following.extend(_candidates(field.annotation))
            elif typing.get_origin(kind) is dict:  # endpoints.<name>: any name
                following.extend(_candidates(typing.get_args(kind)[1]))
        if not following:
            return False
        current = following
    return True


def test_the_key_check_itself() -> None:
    assert is_settings_key("HUB_API__PORT")
    assert is_settings_key("hub_endpoints__lgsp__client_secret")
    assert is_settings_key("HUB_RETENTION__DELIVERED_DAYS")
    assert not is_settings_key("HUB_API__PROT")
    assert not is_settings_key("HUB_ENDPOINTS__LGSP__SECRET")
    assert not is_settings_key("HUB_DATABASE_URL__X")
    assert not is_settings_key("DATABASE_URL")


# --- the Dockerfile ---------------------------------------------------------------------------


def test_every_copied_path_exists() -> None:
    context = (DOCKER / compose()["x-hub"]["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / compose()["x-hub"]["build"]["dockerfile"]).is_file()
    copies = _all("COPY") + _all("ADD")
    assert copies
    for arguments in copies:
        words = [word for word in shlex.split(arguments) if not word.startswith("--")]
        assert len(words) >= 2, arguments
        for source in words[:-1]:
            assert (context / source).exists(), f"COPY {source}: missing in the build context"


def test_the_image_runs_as_an_unprivileged_user() -> None:
    user = _all("USER")[-1].split(":")[0]
    assert user not in {"root", "0"}
    if user.isdigit():  # a numeric user must exist in the image
        assert any(f"--uid {user}" in run for run in _all("RUN")), user


def test_the_image_command_is_the_hub_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["hub"] == "hub.cli:main"
    assert image_cmd()[0] == "hub"


def test_environment_variables_the_image_sets_are_settings() -> None:
    hub_variables = [name for name in image_env() if name.upper().startswith("HUB_")]
    assert hub_variables
    for name in hub_variables:
        assert is_settings_key(name), f"ENV {name} is no setting (it would be ignored)"


# --- compose.yml ------------------------------------------------------------------------------


def test_every_service_runs_a_real_hub_command() -> None:
    cli = build_cli()
    services = hub_services()
    assert {"migrate", "hub", "worker"} <= set(services)
    for name, service in services.items():
        command = command_of(service)
        assert command[0] == "hub", name
        result = CliRunner().invoke(cli, [*command[1:], "--help"])
        assert result.exit_code == 0, (name, command, result.output)
        assert "Usage" in result.output


def test_migrations_run_once_before_the_api_and_the_workers() -> None:
    services = compose()["services"]
    migrate = services["migrate"]
    assert command_of(migrate) == ["hub", "db", "upgrade"]
    assert migrate["restart"] == "no"
    [(database, condition)] = migrate["depends_on"].items()
    assert condition == {"condition": "service_healthy"}
    assert "healthcheck" in services[database]
    for name, service in hub_services().items():
        if name == "migrate":
            continue
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name


def test_only_the_api_keeps_the_http_healthcheck() -> None:
    for name, service in hub_services().items():
        serves_http = command_of(service)[1] == "serve"
        disabled = service.get("healthcheck", {}).get("disable", False)
        assert disabled is not serves_http, name


def test_read_only_root_filesystem_with_writable_data_and_tmp() -> None:
    data_dir = image_env()["HUB_DATA_DIR"]
    for name, service in hub_services().items():
        assert service["read_only"] is True, name
        assert "/tmp" in service["tmpfs"], name
        mounts = {volume.split(":")[1]: volume for volume in service["volumes"]}
        assert data_dir in mounts, name
        assert not mounts[data_dir].startswith((".", "/")), "the data directory is a named volume"
        config = service["environment"][CONFIG_FILE_ENV]
        assert mounts[config].endswith(":ro"), name
        assert "ALL" in service.get("cap_drop", []), name


def test_secrets_are_files_named_like_settings() -> None:
    data = compose()
    defined = set(data["secrets"])
    for name, service in hub_services().items():
        env = service["environment"]
        assert env[SECRETS_DIR_ENV] == RUN_SECRETS, name
        for variable in env:
            assert variable in SOURCE_VARIABLES or is_settings_key(variable), (name, variable)
        assert make_url(env["HUB_DATABASE_URL"]).password is None, "the password comes from a file"
        assert "hub_database_password" in secret_targets(service), name
        for entry in service["secrets"]:
            assert entry["source"] in defined, (name, entry)
            assert is_settings_key(entry["target"]), (name, entry)
    # The API's bootstrap token is given to the API only.
    assert "hub_bootstrap_admin_token" in secret_targets(data["services"]["hub"])
    assert "hub_bootstrap_admin_token" not in secret_targets(data["services"]["worker"])
    # PostgreSQL reads the same password file.
    database = data["services"]["db"]
    assert database["environment"]["POSTGRES_PASSWORD_FILE"] == f"{RUN_SECRETS}/db_password"
    assert "POSTGRES_PASSWORD" not in database["environment"]


def test_the_configuration_compose_gives_the_api_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image's ENV, the service's environment, its secret files and the example config
    file together make valid settings (what ``hub serve`` would load in the container)."""
    service = compose()["services"]["hub"]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for target in secret_targets(service):
        (secrets / target).write_text(f"secret-{target}\n", encoding="utf-8")
    for name in [n for n in os.environ if n.startswith("HUB_")]:
        monkeypatch.delenv(name)
    for name, value in {**image_env(), **service["environment"]}.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv(CONFIG_FILE_ENV, str(DOCKER / "hub.example.toml"))
    monkeypatch.setenv(SECRETS_DIR_ENV, str(secrets))

    settings = load_settings()
    assert make_url(settings.database_url).password == "secret-hub_database_password"
    assert settings.bootstrap_admin_token is not None
    assert settings.bootstrap_admin_token.get_secret_value() == "secret-hub_bootstrap_admin_token"
    assert (settings.api.host, settings.api.port) == ("0.0.0.0", 8080)
    password = settings.endpoints["dvcqg"].password
    client_secret = settings.endpoints["lgsp"].client_secret
    assert password is not None
    assert password.get_secret_value() == "secret-hub_endpoints__dvcqg__password"
    assert client_secret is not None
    assert client_secret.get_secret_value() == "secret-hub_endpoints__lgsp__client_secret"


# --- the HEALTHCHECK against a hub started the image's way ------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_healthcheck_answers_when_the_hub_serves(database_url: str, tmp_path: Path) -> None:
    """``hub serve`` with the image's environment (on loopback): the HEALTHCHECK command, run as
    Docker runs it (``/bin/sh -c``), succeeds, and its URL path is a route answering 200."""
    port = _free_port()
    image = {**image_env(), "HUB_DATA_DIR": str(tmp_path / "data"), "HUB_API__HOST": "127.0.0.1"}
    env = {name: value for name, value in os.environ.items() if not name.startswith("HUB_")}
    env.update(image)
    env.update({"HUB_API__PORT": str(port), "HUB_DATABASE_URL": database_url, "HUB_LOG_LEVEL": "WARNING"})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python` of the image
    check = healthcheck_command()
    [path] = re.findall(r"https?://[^/'\"]+(/[^'\"\s]*)", check)

    hub = subprocess.Popen(image_cmd(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert hub.poll() is None, hub.stderr.read() if hub.stderr else ""
            result = subprocess.run(["/bin/sh", "-c", check], env=env, capture_output=True, timeout=10)
            if result.returncode == 0:
                break
            assert time.monotonic() < deadline, result.stderr
            time.sleep(0.2)
        response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
        assert response.status_code == 200
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(30)
    assert hub.returncode == 0
