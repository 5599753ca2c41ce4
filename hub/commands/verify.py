"""``hub verify <pdf>``: verify the digital signatures of a PDF from the command line.

Prints the Circular 15/2025 §2.3.4 report (Vietnamese by default, ``--lang en``) or the JSON
report (``--format json``). Exit status: 0 valid ("hợp lệ"), 1 invalid ("không hợp lệ"),
3 indeterminate ("không xác định"), 4 bad input (not a PDF, broken, encrypted, unsigned,
too large) or configuration error; with ``--format json`` that error is printed on stdout as
``{"error": {"code", "message", "message_vi", "details"}}``, the API's error shape.

Mounting: ``cli.add_typer(app)`` *without* a name merges the ``verify`` command into the main
CLI (``hub verify x.pdf``); ``add_typer(app, name="verify")`` would give ``hub verify verify``.
Run alone, ``app`` behaves as the single command.
"""

from __future__ import annotations

import enum
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from hub.commands.fetch_hosts import FetchHosts, fetch_settings
from schemas.errors import HubError
from signing.report import Lang, render_report
from signing.verification import (
    DEFAULT_MAX_PDF_BYTES,
    RevocationMode,
    Verdict,
    VerificationPolicy,
    verify_pdf_file,
)

__all__ = ["EXIT_CODES", "app"]

app = typer.Typer(
    help="Kiểm tra chữ ký số trên tệp PDF / verify the digital signatures of a PDF.",
    add_completion=False,
)

EXIT_CODES = {Verdict.VALID: 0, Verdict.INVALID: 1, Verdict.INDETERMINATE: 3}
EXIT_BAD_INPUT = 4


class OutputFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


def _fail(
    output_format: OutputFormat,
    lang: Lang,
    code: str,
    message: str,
    message_vi: str,
    details: dict[str, Any],
) -> NoReturn:
    """Bad input or configuration: exit 4 with the error, as a line on stderr or, with
    ``--format json``, as the API's error object ``{"error": {...}}`` on stdout."""
    if output_format is OutputFormat.JSON:
        body = {"error": {"code": code, "message": message, "message_vi": message_vi, "details": details}}
        sys.stdout.write(json.dumps(body, ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        typer.echo(f"Lỗi / error [{code}]: {message_vi if lang == 'vi' else message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


@app.command(name="verify")
def verify(
    pdf: Annotated[Path, typer.Argument(help="PDF file to verify", exists=False, dir_okay=False)],
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="text or json")] = (
        OutputFormat.TEXT
    ),
    lang: Annotated[Lang, typer.Option("--lang", "-l", help="report language (vi/en)")] = "vi",
    trust_anchor: Annotated[
        list[Path] | None,
        typer.Option(
            "--trust-anchor",
            "-t",
            help="trust anchor file or directory (repeatable); default: pinned government anchors",
        ),
    ] = None,
    intermediate: Annotated[
        list[Path] | None, typer.Option("--intermediate", help="extra CA certificate for path building")
    ] = None,
    revocation: Annotated[
        RevocationMode, typer.Option("--revocation", help="require: OCSP/CRL mandatory; soft: warn only")
    ] = RevocationMode.SOFT,
    offline: Annotated[bool, typer.Option("--offline", help="do not fetch OCSP/CRL/certificates")] = False,
    fetch_host: FetchHosts = None,
    max_bytes: Annotated[
        int, typer.Option("--max-bytes", help="refuse larger files")
    ] = DEFAULT_MAX_PDF_BYTES,
) -> None:
    """Verify every signature and document time-stamp in PDF."""
    # pyHanko logs every failed path build with a traceback; the report already says why.
    for noisy in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    try:
        options = {
            "revocation_mode": revocation,
            "allow_fetching": not offline,
            "max_pdf_bytes": max_bytes,
            "fetch_settings": fetch_settings(fetch_host),
        }
        if trust_anchor:
            policy = VerificationPolicy.from_paths(trust_anchor, intermediates=intermediate or (), **options)
        else:
            policy = VerificationPolicy.production(**options)
        if not pdf.is_file():
            _fail(
                output_format,
                lang,
                "file_not_found",
                f"File not found: {pdf}",
                f"Không tìm thấy tệp: {pdf}",
                {"path": str(pdf)},
            )
        report = verify_pdf_file(pdf, policy)
    except HubError as exc:
        _fail(output_format, lang, exc.code, exc.message, exc.message_vi, exc.details)
    if output_format is OutputFormat.JSON:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(render_report(report, lang))
    raise typer.Exit(EXIT_CODES[report.verdict])
