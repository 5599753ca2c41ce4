"""``hub pki``: the throwaway Government-shaped test PKI for demos (never for production).

``hub pki init DIR`` writes certificates, keys, PKCS#12 bundles, sample signature/seal PNGs and a
sample PDF; ``hub pki serve DIR --port 8765`` (re)builds the PKI for that port and serves its
OCSP, CRL, certificate and RFC 3161 TSA endpoints on loopback until interrupted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from hub.simulators.pki import serve_test_pki
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


@app.command("serve")
def serve(
    directory: Annotated[Path, typer.Argument(help="PKI directory (regenerated for the port)")],
    port: Annotated[int, typer.Option(help="loopback port")] = 8765,
) -> None:
    """Serve OCSP, CRL, certificates and the TSA for the demo PKI until Ctrl-C."""
    with serve_test_pki(directory, port=port) as running:
        _samples(directory)
        _describe(running.pki)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("stopped")
