"""``hub token-sign``: the officer's USB token side of external signing (docs/signing.md §14).

Runs on the officer's own computer, where the token is plugged in; it talks to the token
(PKCS#11, through the hub's :class:`signing.keys.Pkcs11KeySource`: token by label, key and
certificate by label or hex id, pyHanko's PKCS#11 signer) and to nobody else:

* ``hub token-sign certificate``: print the token's certificate (PEM), followed by the other
  certificates on the token (its CA chain), to paste into the signing desk (or send as
  ``certificate`` and ``chain`` to ``POST /api/v1/signing/external/prepare``);
* ``hub token-sign sign --data-b64 …``: sign the data the hub prepared (``data_to_sign_b64``:
  the DER of the CMS signed attributes) and print the signature in base64, to paste into the
  desk (or send as ``signature_b64`` to ``…/complete``).

The private key never leaves the token; the PIN is read from ``--secret-env`` (default
``HUB_SIGN_SECRET``) or asked for without echo. Exit 4 on any refusal (wrong PIN, key not on
the token, malformed data), with one line saying why.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from hub.commands.option_groups import with_options
from hub.commands.sign import EXIT_REFUSED, PssOption, TokenChoice
from schemas.errors import HubError

__all__ = ["app"]

app = typer.Typer(
    help="Ký bằng USB token của cán bộ / sign with the officer's own USB token (external signing).",
    add_completion=False,
    no_args_is_help=True,
)

ModuleOption = Annotated[Path, typer.Option("--pkcs11-module", help="PKCS#11 module (.so) of the token")]


def _refuse(message_vi: str, message: str) -> NoReturn:
    typer.echo(f"{message_vi} / {message}", err=True)
    raise typer.Exit(EXIT_REFUSED)


@dataclass(frozen=True, kw_only=True)
class TokenKey(TokenChoice):
    """The key on the token, chosen alike by both commands as ``hub sign`` chooses a PKCS#11
    one; here the module is required and there is no ``--p12``."""

    pkcs11_module: ModuleOption = field()  # no default: not the base class's None


@contextmanager
def _token_signer(key: TokenKey, *, pss: bool = False) -> Iterator[Any]:
    """The pyHanko signer of the key chosen on the token, its session open while in use; the
    token's refusal (wrong PIN, key or certificate not found …) exits with its reason."""
    source, _name = key.token(pss=pss)
    try:
        with source.open() as signer:
            yield signer
    except HubError as exc:
        _refuse(exc.message_vi, exc.message)


@app.command("certificate")
@with_options(key=TokenKey)
def certificate(key: TokenKey) -> None:
    """In chứng thư số trên token (PEM) / print the token's certificate (PEM)."""
    from asn1crypto import pem

    with _token_signer(key) as signer:
        cert = signer.signing_cert
        if cert is None:
            _refuse("Không có chứng thư số trên token", "no certificate on the token")
        # hers first, then the other certificates the token holds (its CA chain)
        others = [c for c in signer.cert_registry if c.dump() != cert.dump()]
        for each in (cert, *others):
            sys.stdout.write(pem.armor("CERTIFICATE", each.dump()).decode("ascii"))


@app.command("sign")
@with_options(key=TokenKey)
def sign(
    key: TokenKey,
    data_b64: Annotated[
        str, typer.Option("--data-b64", help="data_to_sign_b64 of the prepared request ('-': stdin)")
    ],
    digest: Annotated[
        str, typer.Option("--digest", help="digest_algorithm of the prepared request")
    ] = "sha256",
    pss: PssOption = False,
) -> None:
    """Ký dữ liệu hệ thống đã chuẩn bị, in chữ ký (base64) / sign the prepared data, print the
    signature (base64)."""
    text = sys.stdin.read() if data_b64 == "-" else data_b64
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        _refuse("--data-b64 không phải base64 hợp lệ", "--data-b64 is not valid base64")
    if not data or len(data) > 64 * 1024:
        _refuse("Dữ liệu cần ký rỗng hoặc quá lớn", "the data to sign is empty or too large")
    if digest not in ("sha256", "sha384", "sha512"):
        _refuse(f"Thuật toán băm không hỗ trợ: {digest}", f"unsupported digest algorithm: {digest}")
    with _token_signer(key, pss=pss) as signer:
        signature = asyncio.run(signer.async_sign_raw(data, digest))
    typer.echo(base64.b64encode(signature).decode("ascii"))
