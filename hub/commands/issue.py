"""``hub issue``: issue an officer-signed PDF — register number and date written in, then the
agency seal — in Decree 30/2020 order (Art. 14, 15, 17; docs/signing.md §13).

The input must carry the competent person's valid signature (judged by the hub's verifier with
the given trust anchors) and empty number and date places. The number comes from the hub's
document register (the database named by the configuration, ``HUB_DATABASE_URL``), per issuing
agency and year, shared with ``POST /dossiers/{code}/results/issue``; the seal key is the
clerk's own file or token (as for ``hub sign``). A failure after the number was taken voids it
in the register (never reused) and writes no output. Every step is audited as actor
``cli:<os user>``, action ``signing.cli.issue``.

Exit status: 0 issued, 4 refused (no valid officer signature, no open number places, the
register or audit log unreachable, certificate rejected, signing failed).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hub.commands.option_groups import with_options
from hub.commands.sign import (
    KeyChoice,
    RevocationOption,
    TrustAnchorOption,
    TsaTimeoutOption,
    TsaUrlOption,
    cli_actor,
    hub_database,
    refusing,
    trust_store,
    tsa_settings,
)
from hub.db.session import Database
from hub.services.issuance import (
    DocumentRegister,
    IssuanceSpec,
    IssuedNumber,
    number_details,
    numbered,
    require_open_places,
)
from hub.services.signing_authority import SealCheck, SigningAttempt, SigningAudit, sha256_hex
from schemas.errors import HubError
from signing.keys import KeySource
from signing.models import RevocationPolicy, SignatureLevel, SignOptions, SignRole
from signing.service import atomic_write
from signing.settings import ABBREVIATION_PATTERN, KeyPurpose
from signing.signer_service import SigningConfig, SigningService
from signing.verification import VerificationPolicy
from signing.verification.policy import RevocationMode

__all__ = ["app"]

app = typer.Typer(
    help="Cấp số, ngày ban hành và đóng dấu văn bản đã ký / issue a signed document.", add_completion=False
)


def _issuance_defaults() -> dict[str, str]:
    """``[signing.issuance]`` of the hub's configuration, when there is one."""
    from hub.config import load_settings

    try:
        issuance = load_settings().signing.issuance
    except HubError:
        return {}
    return issuance.model_dump(exclude_none=True) if issuance is not None else {}


def _issuance_option(flag: str, what: str) -> Any:  # typer.Option is typed Any
    """An option whose default is read from ``[signing.issuance]`` (see :func:`_issuance_defaults`)."""
    return typer.Option(flag, help=f"{what}; default [signing.issuance]")


@app.command(name="issue")
@with_options(key_choice=KeyChoice)
def issue(
    source: Annotated[Path, typer.Argument(help="PDF signed by the competent person")],
    out: Annotated[Path, typer.Option("--out", "-o", help="issued PDF to write")],
    agency_code: Annotated[str | None, _issuance_option("--agency-code", "register owner")] = None,
    agency_abbreviation: Annotated[
        str | None, _issuance_option("--agency-abbreviation", "e.g. SNNMT")
    ] = None,
    document_type: Annotated[str | None, _issuance_option("--document-type", "e.g. GCN, QĐ")] = None,
    place: Annotated[str | None, _issuance_option("--place", "e.g. Ninh Bình")] = None,
    *,
    key_choice: KeyChoice,
    seal_image: Annotated[Path | None, typer.Option("--seal-image", help="red PNG, real size")] = None,
    level: Annotated[
        SignatureLevel, typer.Option("--level", help="PAdES level of the seal")
    ] = SignatureLevel.B_LTA,
    trust_anchor: TrustAnchorOption = None,
    tsa_url: TsaUrlOption = None,
    tsa_timeout: TsaTimeoutOption = 180.0,
    revocation_policy: RevocationOption = RevocationPolicy.WARN,
    as_json: Annotated[bool, typer.Option("--json", help="print the number and output as JSON")] = False,
) -> None:
    """Number, date and seal SOURCE into OUT (the number from the hub's register)."""
    defaults = _issuance_defaults()
    values = {
        "agency_code": agency_code or defaults.get("agency_code"),
        "agency_abbreviation": agency_abbreviation or defaults.get("agency_abbreviation"),
        "document_type": document_type or defaults.get("document_type"),
        "place": place or defaults.get("place"),
    }
    missing = [f"--{name.replace('_', '-')}" for name, value in values.items() if not value]
    if missing:
        raise typer.BadParameter(f"missing {', '.join(missing)} (and no [signing.issuance] default)")
    for name in ("agency_abbreviation", "document_type"):
        if not re.fullmatch(ABBREVIATION_PATTERN, str(values[name])):
            raise typer.BadParameter(f"--{name.replace('_', '-')} must be upper-case letters or digits")
    spec = IssuanceSpec(**{name: str(value) for name, value in values.items()})
    with refusing("Từ chối cấp số"):
        data = source.read_bytes()
        key, key_id = key_choice.load()
        store = trust_store(trust_anchor)
        config = SigningConfig(
            trust_store=store,
            tsa=tsa_settings(tsa_url, tsa_timeout),
            revocation_policy=revocation_policy,
            seal_png=seal_image.read_bytes() if seal_image else None,
        )
        policy = VerificationPolicy.from_trust_store(
            store,
            revocation_mode=RevocationMode.REQUIRE
            if revocation_policy is RevocationPolicy.REFUSE
            else RevocationMode.SOFT,
        )
        options = SignOptions(level=level, role=SignRole.AGENCY, prefer_pss=key_choice.pss)
        actor = cli_actor()
        attempt = SigningAttempt(
            actor, "cli.issue", key_id, sha256_hex(data), KeyPurpose.SEAL, file_id=str(source)
        )
        with hub_database() as db:
            number, sealed = _issue(db, attempt, data, spec, policy, config, key, options, out)
    if as_json:
        answer = {**number.model_dump(mode="json"), "output": str(out), "sha256": sha256_hex(sealed)}
        sys.stdout.write(json.dumps(answer, ensure_ascii=False, indent=2) + "\n")
    else:
        typer.echo(f"Đã ban hành / issued: Số {number.symbol} — {number.date_line} → {out}")


def _issue(
    db: Database,
    attempt: SigningAttempt,
    data: bytes,
    spec: IssuanceSpec,
    policy: VerificationPolicy,
    config: SigningConfig,
    key: KeySource,
    options: SignOptions,
    out: Path,
) -> tuple[IssuedNumber, bytes]:
    """Check, number, fill, seal, write; each step audited, the number voided on failure."""
    audit = SigningAudit(db)
    try:
        SealCheck(policy).require_signed(data)
        require_open_places(data)
    except HubError as exc:
        audit.refused(attempt, exc)
        raise
    with numbered(
        DocumentRegister(db),
        data,
        spec,
        actor=attempt.actor,
        source_sha256=attempt.document_sha256,
        on_number=lambda n: audit.record(attempt, "numbered", **number_details(n)),
        on_void=lambda n, why: audit.record(attempt, "voided", reason=why[:300], **number_details(n)),
    ) as document:
        try:
            sealed, _result = asyncio.run(SigningService(config).sign_bytes(document.data, key, options))
            atomic_write(out, sealed)
        except BaseException as exc:
            audit.failed(attempt, exc)
            raise
        document.issued(file_id=str(out), sha256=sha256_hex(sealed))
    audit.record(attempt, "signed", output_sha256=sha256_hex(sealed), **number_details(document.number))
    return document.number, sealed
