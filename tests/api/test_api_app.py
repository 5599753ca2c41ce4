"""App factory and CLI assembly: optional modules are included when present, never hidden when broken."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from fastapi.routing import iter_route_contexts
from typer.testing import CliRunner

from hub.api.app import OPTIONAL_ROUTE_MODULES, ROUTE_MODULES, create_app, load_routers
from hub.cli import COMMAND_MODULES, CommandModule, build_cli
from hub.config import load_settings
from hub.db.migrate import upgrade


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    package = tmp_path / "hubfake_plugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text(
        "from fastapi import APIRouter\nimport typer\n"
        "router = APIRouter()\n\n@router.get('/fake')\n"
        "def fake() -> dict[str, str]:\n    return {'ok': 'yes'}\n\n"
        "app = typer.Typer()\n\n@app.command('good')\ndef good() -> None:\n    typer.echo('good ran')\n"
    )
    (package / "broken.py").write_text("import hubfake_does_not_exist  # noqa\n")
    (package / "empty.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "hubfake_plugins"
    for name in [m for m in sys.modules if m.startswith("hubfake_plugins")]:
        del sys.modules[name]


def test_missing_route_modules_are_skipped(fake_package: str) -> None:
    routers = load_routers((f"{fake_package}.missing", f"{fake_package}.good", "no_such_top_level.routes"))
    assert [name for name, _ in routers] == [f"{fake_package}.good"]


def test_import_errors_inside_present_modules_propagate(fake_package: str) -> None:
    with pytest.raises(ModuleNotFoundError, match="hubfake_does_not_exist"):
        load_routers((f"{fake_package}.broken",))
    with pytest.raises(TypeError, match="router"):
        load_routers((f"{fake_package}.empty",))


def test_every_present_route_module_is_mounted(tmp_path: Path) -> None:
    app = create_app(load_settings(database_url=f"sqlite:///{tmp_path / 'h.db'}", data_dir=tmp_path))
    present = [name for name in ROUTE_MODULES if importlib.util.find_spec(name) is not None]
    assert app.state.route_modules == present
    assert set(OPTIONAL_ROUTE_MODULES) <= set(ROUTE_MODULES)
    assert app.openapi_url == "/api/v1/openapi.json"


def test_api_routes_are_matched_before_the_console(tmp_path: Path) -> None:
    """Routes are tried in order: the console's pages (all under /console/) come last, so an
    API call is not first compared with each of them."""
    app = create_app(load_settings(database_url=f"sqlite:///{tmp_path / 'h.db'}", data_dir=tmp_path))
    paths = [context.path or "" for context in iter_route_contexts(app.routes)]
    first_console = next(i for i, path in enumerate(paths) if path.startswith("/console/"))
    assert all(path.startswith("/console/") for path in paths[first_console:])
    assert paths.index("/api/v1/dossiers") < first_console


def test_cli_mounts_present_command_modules(fake_package: str) -> None:
    cli = build_cli(
        (
            CommandModule(("good",), f"{fake_package}.good"),
            CommandModule(("nested", "good2"), f"{fake_package}.good"),
            CommandModule(("missing",), f"{fake_package}.missing"),
        )
    )
    runner = CliRunner()
    assert "good ran" in runner.invoke(cli, ["good"]).output  # single command named like its mount: merged
    assert "good ran" in runner.invoke(cli, ["nested", "good2", "good"]).output
    assert runner.invoke(cli, ["missing"]).exit_code != 0
    broken = build_cli((CommandModule(("broken",), f"{fake_package}.broken"),))  # imported when run
    with pytest.raises(ModuleNotFoundError):
        runner.invoke(broken, ["broken"], catch_exceptions=False)


def test_cli_mounts_every_present_module() -> None:
    cli = build_cli()
    assert isinstance(cli, typer.Typer)
    names = {group.name for group in cli.registered_groups} | {
        command.name for command in cli.registered_commands
    }
    for path, module, _help in COMMAND_MODULES:
        if importlib.util.find_spec(module) is not None:
            output = CliRunner().invoke(cli, [*path, "--help"]).output
            assert "Usage" in output, (path, output)
    assert {"db", "keys", "serve"} <= names


def test_bootstrap_admin_token_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "Ro7-bootstrap-Secret-for-tests-xQ2vL9"
    monkeypatch.setenv("HUB_BOOTSTRAP_ADMIN_TOKEN", token)
    upgrade(f"sqlite:///{tmp_path / 'h.db'}")
    app = create_app(
        load_settings(database_url=f"sqlite:///{tmp_path / 'h.db'}", data_dir=tmp_path),
        route_modules=(),
    )
    principal = app.state.services.keys.authenticate(token)
    assert principal is not None
    assert principal.role.value == "admin"
    assert app.state.services.keys.authenticate(token[:-1] + "M") is None
