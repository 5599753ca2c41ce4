"""``hub simulate lgsp``: run the LGSP simulator (:mod:`hub.simulators.lgsp`).

Serves SOAP 1.1 (``/lgsp/soap11``) and SOAP 1.2 (``/lgsp/soap12``) on the bundled WSDL or a
province's own (``--wsdl``), the REST flavour under ``/{context}/{version}/Document/…`` and
``/token``; the simulators' control API under ``/_control/`` (faults, records, reset, stats).

Mounted by :mod:`hub.cli` as ``hub simulate lgsp --port 8802``. Run alone:
``python -m hub.commands.simulate_lgsp --port 8802``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hub.commands.simulating import HostOption, PortOption, run_until_interrupted

__all__ = ["app"]

app = typer.Typer(
    help="Mô phỏng nền tảng LGSP / run a simulator of the provincial LGSP (SOAP 1.1/1.2 and REST).",
    add_completion=False,
)


@app.callback(invoke_without_command=True)
def simulate_lgsp(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8802,
    wsdl: Annotated[
        Path | None, typer.Option(help="WSDL to serve (default: the bundled lgsp-motcua.wsdl).", exists=True)
    ] = None,
    username: Annotated[str, typer.Option(help="WS-Security UsernameToken user.")] = "hub",
    password: Annotated[str, typer.Option(help="WS-Security UsernameToken password.")] = "hub-secret",  # noqa: S107  simulator test credential
    client_id: Annotated[str, typer.Option(help="OAuth2 client_id for /token.")] = "hub-client",
    client_secret: Annotated[str, typer.Option(help="OAuth2 client_secret.")] = "hub-client-secret",  # noqa: S107  simulator test credential
    token_lifetime: Annotated[int, typer.Option(help="expires_in of issued tokens (s).", min=1)] = 3600,
    context: Annotated[str, typer.Option(help="WSO2 API context of the REST flavour.")] = "motcua",
    api_version: Annotated[str, typer.Option("--api-version", help="WSO2 API version.")] = "1.0.0",
    max_body: Annotated[int, typer.Option(help="Largest accepted request body (bytes).", min=1024)] = 2
    * 1024
    * 1024,
    require_digest: Annotated[bool, typer.Option(help="Refuse PasswordText tokens.")] = False,
    rest_validation: Annotated[
        str, typer.Option(help="REST body validation: 'xsd' (xmlschema, independent) or 'model' (fast).")
    ] = "xsd",
) -> None:
    """Serve the simulator until interrupted."""
    from hub.simulators.harness import Simulator, serve_until_cancelled
    from hub.simulators.lgsp import LgspSimulator, describe

    sim = LgspSimulator(
        wsdl_path=wsdl,
        host=host,
        port=port,
        username=username,
        password=password,
        client_id=client_id,
        client_secret=client_secret,
        token_lifetime_seconds=token_lifetime,
        context=context,
        version=api_version,
        max_body_bytes=max_body,
        require_digest=require_digest,
        rest_validation="model" if rest_validation == "model" else "xsd",
    )

    def announce(running: Simulator) -> None:
        assert isinstance(running, LgspSimulator)
        typer.echo(json.dumps(describe(running), ensure_ascii=False), err=False)

    run_until_interrupted(serve_until_cancelled(sim, announce))


if __name__ == "__main__":  # pragma: no cover
    app()
