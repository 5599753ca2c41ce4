"""``hub simulate dvcqg``: run the national-portal simulator (:mod:`hub.simulators.dvcqg`).

Mounting: ``simulate.add_typer(app, name="dvcqg")`` under a ``simulate`` group gives
``hub simulate dvcqg --port 8801``. Run alone: ``python -m hub.commands.simulate_dvcqg``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from hub.commands.simulating import HostOption, PortOption, run_until_interrupted

__all__ = ["app"]

app = typer.Typer(
    help="Mô phỏng Cổng DVCQG / run a simulator of the National Public Service Portal adapter.",
    add_completion=False,
)


@app.callback(invoke_without_command=True)
def simulate_dvcqg(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8801,
    username: Annotated[str, typer.Option(help="Adapter account name.")] = "hub",
    password: Annotated[str, typer.Option(help="Adapter account password.")] = "hub-secret",  # noqa: S107  simulator test credential
    prefix: Annotated[str, typer.Option(help="Adapter base path.")] = "/apiDVC-GPLX/tcdbdvcdata",
    madonvi: Annotated[str | None, typer.Option(help="Require this madonvi in envelopes.")] = None,
    session_ttl: Annotated[float, typer.Option(help="Session lifetime in seconds.", min=0.001)] = 1800,
    progress_text: Annotated[
        bool, typer.Option(help="Answer CapNhatTienDoHoSoMC in plain text (§3.8).")
    ] = False,
) -> None:
    """Serve the simulator until interrupted; control API under /_control (faults, records)."""
    from hub.simulators.dvcqg import SimulatorConfig, serve_forever

    config = SimulatorConfig(
        prefix=prefix,
        username=username,
        password=password,
        madonvi=madonvi,
        session_ttl_seconds=session_ttl,
        progress_answer="text" if progress_text else "json",
    )
    run_until_interrupted(serve_forever(config, host, port))


if __name__ == "__main__":  # pragma: no cover
    app()
