"""``hub pki``: the throwaway Government-shaped test PKI for demos (never for production).

``hub pki init DIR`` writes certificates, keys, PKCS#12 bundles, sample signature/seal PNGs and a
sample PDF; ``hub pki serve DIR`` serves its OCSP, CRL, certificate and RFC 3161 TSA endpoints on loopback
until interrupted, keeping the PKI already in DIR (built at the first start, or by ``--rebuild``).
"""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path
from typing import Annotated

import typer

from hub.simulators.pki import existing_test_pki, serve_test_pki
from signing.samples import sample_pdf, sample_seal_png, sample_signature_png
from signing.testpki import TestPki, build_test_pki

__all__ = ["app"]

app = typer.Typer(help="PKI thử nghiệm / demo test PKI (not for production).", no_args_is_help=True)


def _samples(directory: Path) -> None:
    (directory / "signature.png").write_bytes(sample_signature_png())
    (directory / "seal.png").write_bytes(sample_seal_png())
    (directory / "sample.pdf").write_bytes(sample_pdf("QUYET DINH 123/QD-SNNMT", pages=2))


def _describe(pki: TestPki) -> None:
    typer.echo(f"PKI in {pki.directory} (services at {pki.base_url})")
    typer.echo(f"  trust anchor : {pki.root_cert}")
    typer.echo(f"  officer      : {pki.officer_p12}  (password: {pki.p12_password}, test only)")
    typer.echo(f"  agency       : {pki.agency_p12}")
    typer.echo(f"  TSA          : {pki.tsa_url}")


@app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="output directory")],
    base_url: Annotated[
        str, typer.Option(help="where 'hub pki serve' will listen")
    ] = "http://127.0.0.1:8765",
) -> None:
    """Create the demo PKI and sample images/PDF."""
    pki = build_test_pki(directory, base_url=base_url)
    _samples(directory)
    _describe(pki)


DEFAULT_PORT = 8765


def serve_port(directory: Path, port: int | None, rebuild: bool) -> int:
    """The port to serve ``directory``'s PKI on: the one it was built for unless ``--port``
    or ``--rebuild`` says otherwise; a different port for a kept PKI is refused (its
    certificates name their OCSP/CRL/TSA URLs)."""
    kept = None if rebuild else existing_test_pki(directory)
    if kept is None:
        return port if port is not None else DEFAULT_PORT
    built_for = urllib.parse.urlsplit(kept.base_url).port or DEFAULT_PORT
    if port is not None and port != built_for:
        typer.echo(
            f"PKI trong {directory} được tạo cho cổng {built_for}; dùng --port {built_for} hoặc "
            f"--rebuild / the PKI in {directory} was built for port {built_for}: use --port "
            f"{built_for}, or --rebuild (earlier test signatures then stop verifying)",
            err=True,
        )
        raise typer.Exit(4)
    return built_for


@app.command("serve")
def serve(
    directory: Annotated[Path, typer.Argument(help="PKI directory (kept; created if missing)")],
    port: Annotated[
        int | None, typer.Option(help=f"loopback port (default: the PKI's own, else {DEFAULT_PORT})")
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="generate a new PKI (earlier signatures stop verifying)")
    ] = False,
) -> None:
    """Serve OCSP, CRL, certificates and the TSA for the demo PKI until Ctrl-C (the PKI is kept
    across restarts unless --rebuild)."""
    with serve_test_pki(directory, port=serve_port(directory, port, rebuild), rebuild=rebuild) as running:
        _samples(directory)
        _describe(running.pki)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("stopped")
