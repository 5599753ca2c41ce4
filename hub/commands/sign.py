"""``hub sign``: sign one or many PDFs (PAdES B-B/B-T/B-LT/B-LTA) with a PKCS#12 file or a
PKCS#11 token, with the Decree 30/2020 appearance of the chosen role.

PINs and passwords are never taken on the command line (they would show in ``ps``): they are
read from the environment variable named by ``--secret-env`` (default ``HUB_SIGN_SECRET``) or
prompted for without echo. Outputs are written atomically into ``--out``; a document that fails
leaves no output. Exit status: 0 all signed, 1 some documents failed, 4 refused before signing
(certificate rejected, revocation unavailable under ``refuse``, wrong PIN, bad configuration,
the audit log unreachable).

Every document is audited in the hub's database (``HUB_DATABASE_URL`` / the hub's
configuration) as actor ``cli:<os user>``, with its SHA-256, the key and the outcome, like the
API's signing paths (docs/signing.md §10.5); without a reachable, migrated database nothing is
signed.
"""

from __future__ import annotations

import enum
import getpass
import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from hub.commands.fetch_hosts import FetchHosts, fetch_settings
from hub.commands.option_groups import with_options
from hub.db.session import Database
from hub.services.signing_authority import PURPOSE_OF_ROLE, SigningAttempt, SigningAudit
from schemas.errors import HubError
from signing.appearance import AppearanceTemplate
from signing.keys import KeySource, Pkcs11KeySource, Pkcs12KeySource, Secret
from signing.models import (
    BatchItemResult,
    BatchResult,
    RevocationPolicy,
    SignatureLevel,
    SignOptions,
    SignRole,
)
from signing.signer_service import SigningConfig, SigningService
from signing.timestamping import TsaSettings
from signing.trust import TrustStore

__all__ = ["app"]

app = typer.Typer(help="Ký số văn bản PDF / sign PDF documents (PAdES).", add_completion=False)

#: Name (not value) of the environment variable read for the PIN/password.
DEFAULT_SECRET_ENV = "HUB_SIGN_SECRET"
EXIT_SOME_FAILED = 1
EXIT_REFUSED = 4


class CopyForm(enum.StrEnum):
    SAO_Y = "SAO Y"
    SAO_LUC = "SAO LỤC"
    TRICH_SAO = "TRÍCH SAO"


def _collect_inputs(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() == ".pdf" and f.is_file()))
        else:
            out.append(p)
    return out


def _secret(env_name: str, prompt: str) -> Secret:
    value = os.environ.get(env_name)
    if value is None:
        value = typer.prompt(prompt, hide_input=True)
    return Secret(value)


@contextmanager
def hub_database() -> Iterator[Database]:
    """The hub database named by the configuration, for the audit log (and the document
    register); refused with exit 4 when it cannot be opened."""
    from hub.config import load_settings
    from hub.runtime import open_database

    try:
        db = open_database(load_settings(), pool_size=1, retry_pauses=())
    except HubError as exc:
        typer.echo(f"Không ghi được nhật ký kiểm toán / cannot open the audit log: {exc.message}", err=True)
        raise typer.Exit(EXIT_REFUSED) from exc
    try:
        yield db
    finally:
        db.dispose()


@contextmanager
def _audit_log() -> Iterator[SigningAudit]:
    with hub_database() as db:
        yield SigningAudit(db)


@contextmanager
def refusing(refused_vi: str) -> Iterator[None]:
    """A command's body: pyHanko's own log quiet, a refusal or file error one line and exit 4."""
    for noisy in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    try:
        yield
    except HubError as exc:
        typer.echo(f"{refused_vi} / refused [{exc.code}]: {exc.message_vi} / {exc.message}", err=True)
        raise typer.Exit(EXIT_REFUSED) from exc
    except OSError as exc:
        typer.echo(f"Lỗi tệp / file error: {exc}", err=True)
        raise typer.Exit(EXIT_REFUSED) from exc


def _file_sha256(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return ""


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (containers)
        return f"cli:uid-{os.getuid()}"


def _audit_batch(
    audit: SigningAudit,
    attempts: dict[Path, SigningAttempt],
    result: BatchResult | None,
    refusal: HubError | None,
) -> None:
    """One audit row per input: signed / failed, or refused (all) when signing never began."""
    by_input = {item.input_path: item for item in result.items} if result is not None else {}
    for path, attempt in attempts.items():
        item = by_input.get(path)
        if item is None:
            audit.record(
                attempt,
                "refused",
                error_code=refusal.code if refusal is not None else "not_signed",
                reason=refusal.message[:300] if refusal is not None else None,
            )
        elif item.ok:
            output = item.output_path
            audit.record(attempt, "signed", output_sha256=_file_sha256(output) if output else None)
        else:
            audit.record(attempt, "failed", error_code=item.error_code, reason=item.error)


def _refuse(line: str) -> NoReturn:
    """The bilingual one-line refusal, exit 4 (no traceback)."""
    typer.echo(line, err=True)
    raise typer.Exit(EXIT_REFUSED)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where + ': ' if where else ''}{err.get('msg', '')}".removeprefix("Value error, ")


#: What each role-specific option is called on the command line (Decree 30/2020 Appendix I).
_ROLE_NEEDS = {
    SignRole.COPY: ("--agency-name", "agency_name", "bản sao điện tử cần tên cơ quan sao"),
    SignRole.ATTACHMENT: (
        "--document-number",
        "document_number",
        "phụ lục/tệp đính kèm cần số, ký hiệu văn bản",
    ),
}


def _options(**values: Any) -> SignOptions:
    """:class:`SignOptions`, or the bilingual refusal naming the missing command-line option."""
    need = _ROLE_NEEDS.get(values["role"])
    if need is not None and not values.get(need[1]):
        _refuse(f"Thiếu {need[0]}: {need[2]} / --role {values['role']} needs {need[0]}")
    try:
        return SignOptions(**values)
    except ValidationError as exc:
        _refuse(f"Tùy chọn ký không hợp lệ / invalid signing options: {_first_error(exc)}")


def _hex_id(option: str, value: str | None) -> bytes | None:
    """A PKCS#11 CKA_ID given in hex (``01``, ``a1b2``…)."""
    if value is None:
        return None
    try:
        return bytes.fromhex(value.replace(":", ""))
    except ValueError:
        raise typer.BadParameter(f"{option} must be hexadecimal (e.g. 01 or a1:b2)") from None


# --- options shared with ``hub issue`` ---------------------------------------------------------

P12Option = Annotated[Path | None, typer.Option("--p12", help="PKCS#12 (.p12/.pfx) key file")]
Pkcs11ModuleOption = Annotated[Path | None, typer.Option("--pkcs11-module", help="PKCS#11 module (.so)")]
TokenLabelOption = Annotated[str | None, typer.Option("--token-label", help="PKCS#11 token label")]
KeyLabelOption = Annotated[str | None, typer.Option("--key-label", help="PKCS#11 private key label")]
CertLabelOption = Annotated[str | None, typer.Option("--cert-label", help="PKCS#11 certificate label")]
KeyIdOption = Annotated[str | None, typer.Option("--key-id", help="PKCS#11 private key id (hex)")]
CertIdOption = Annotated[str | None, typer.Option("--cert-id", help="PKCS#11 certificate id (hex)")]
SecretEnvOption = Annotated[
    str, typer.Option("--secret-env", help="env variable holding the PIN / PKCS#12 password")
]
PssOption = Annotated[bool, typer.Option("--pss", help="RSASSA-PSS instead of PKCS#1 v1.5")]
TrustAnchorOption = Annotated[
    list[Path] | None,
    typer.Option("--trust-anchor", "-t", help="trust anchor file/dir (repeatable); default: government"),
]
TsaUrlOption = Annotated[str | None, typer.Option("--tsa-url", help="RFC 3161 TSA")]
TsaTimeoutOption = Annotated[float, typer.Option("--tsa-timeout", help="seconds per TSA attempt")]
RevocationOption = Annotated[
    RevocationPolicy, typer.Option("--revocation-policy", help="if OCSP/CRL unreachable: warn or refuse")
]


@dataclass(frozen=True, kw_only=True)
class TokenChoice:
    """A key on a PKCS#11 token named on the command line: the token by label, the key and its
    certificate by label or hex id; the PIN is read from ``secret_env`` or prompted for. Taken
    as it is by ``hub token-sign`` (module required there) and with ``--p12`` by
    :class:`KeyChoice`."""

    pkcs11_module: Pkcs11ModuleOption = None
    token_label: TokenLabelOption = None
    key_label: KeyLabelOption = None
    cert_label: CertLabelOption = None
    key_id: KeyIdOption = None
    cert_id: CertIdOption = None
    secret_env: SecretEnvOption = DEFAULT_SECRET_ENV

    def token(self, *, pss: bool) -> tuple[Pkcs11KeySource, str]:
        """The token's key source and its audit id."""
        if self.pkcs11_module is None:
            raise typer.BadParameter("--pkcs11-module is required")
        kid, cid = _hex_id("--key-id", self.key_id), _hex_id("--cert-id", self.cert_id)
        token = Pkcs11KeySource(
            module_path=self.pkcs11_module,
            pin=_secret(self.secret_env, "Mã PIN token / token PIN"),
            token_label=self.token_label,
            key_label=self.key_label,
            key_id=kid,
            # the certificate is found like the key unless told otherwise
            cert_label=self.cert_label or (self.key_label if cid is None else None),
            cert_id=cid if cid is not None or self.cert_label else kid,
            prefer_pss=pss,
        )
        key_text = f"{self.key_label or ''}{'#' + self.key_id if self.key_id else ''}" or "?"
        return token, f"pkcs11:{self.token_label or '?'}/{key_text}"


@dataclass(frozen=True, kw_only=True)
class KeyChoice(TokenChoice):
    """The key named on the command line: a PKCS#12 file or a PKCS#11 token (``hub sign``,
    ``hub issue``); its PIN or password is read from ``secret_env`` or prompted for."""

    p12: P12Option = None
    pss: PssOption = False

    def load(self) -> tuple[KeySource, str]:
        """The key source and its audit id."""
        if (self.p12 is None) == (self.pkcs11_module is None):
            raise typer.BadParameter("give exactly one key source: --p12 or --pkcs11-module")
        if self.p12 is not None:
            secret = _secret(self.secret_env, "Mật khẩu tệp PKCS#12 / PKCS#12 password")
            return Pkcs12KeySource(self.p12, secret, prefer_pss=self.pss), f"p12:{self.p12.name}"
        return self.token(pss=self.pss)


def trust_store(anchors: list[Path] | None, fetch_hosts: list[str] | None = None) -> TrustStore:
    """The anchors given (default: the government ones) and what may be fetched online."""
    fetch = fetch_settings(fetch_hosts)
    return TrustStore(anchors, pins={}, fetch_settings=fetch) if anchors else TrustStore(fetch_settings=fetch)


def tsa_settings(url: str | None, timeout: float) -> TsaSettings | None:
    return TsaSettings(url=url, timeout_seconds=timeout) if url else None


@app.command(name="sign")
@with_options(key_choice=KeyChoice)
def sign(
    inputs: Annotated[list[Path], typer.Argument(help="PDF files and/or directories of PDFs")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory (created if missing)")],
    key_choice: KeyChoice,
    level: Annotated[SignatureLevel, typer.Option("--level", help="PAdES level")] = SignatureLevel.B_T,
    role: Annotated[SignRole, typer.Option("--role", help="Decree 30 appearance")] = SignRole.INVISIBLE,
    certify: Annotated[bool, typer.Option("--certify", help="certification signature, DocMDP P=2")] = False,
    template_file: Annotated[
        Path | None, typer.Option("--template", help="appearance template JSON (AppearanceTemplate)")
    ] = None,
    signature_image: Annotated[Path | None, typer.Option("--signature-image", help="blue PNG")] = None,
    seal_image: Annotated[Path | None, typer.Option("--seal-image", help="red PNG, real size")] = None,
    copy_form: Annotated[CopyForm, typer.Option("--copy-form")] = CopyForm.SAO_Y,
    agency_name: Annotated[str | None, typer.Option("--agency-name")] = None,
    document_number: Annotated[str | None, typer.Option("--document-number")] = None,
    trust_anchor: TrustAnchorOption = None,
    tsa_url: TsaUrlOption = None,
    tsa_timeout: TsaTimeoutOption = 180.0,
    revocation_policy: RevocationOption = RevocationPolicy.WARN,
    fetch_host: FetchHosts = None,
    workers: Annotated[int | None, typer.Option("--workers", help="worker processes (default: auto)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the batch result as JSON")] = False,
) -> None:
    """Sign PDFs into OUT with one key (certificate checked once, before signing)."""
    with refusing("Từ chối ký"):
        key, audit_key = key_choice.load()
        try:
            template = (
                AppearanceTemplate.model_validate_json(template_file.read_text(encoding="utf-8"))
                if template_file
                else AppearanceTemplate()
            )
        except ValidationError as exc:
            _refuse(f"Mẫu trình bày không hợp lệ / invalid template {template_file}: {_first_error(exc)}")
        config = SigningConfig(
            trust_store=trust_store(trust_anchor, fetch_host),
            tsa=tsa_settings(tsa_url, tsa_timeout),
            revocation_policy=revocation_policy,
            templates={"default": template},
            signature_png=signature_image.read_bytes() if signature_image else None,
            seal_png=seal_image.read_bytes() if seal_image else None,
        )
        options = _options(
            level=level,
            role=role,
            certify=certify,
            prefer_pss=key_choice.pss,
            copy_form=copy_form.value,
            agency_name=agency_name,
            document_number=document_number,
        )
        files = _collect_inputs(inputs)
        if not files:
            typer.echo("Không có tệp PDF nào để ký / no PDF to sign", err=True)
            raise typer.Exit(EXIT_REFUSED)
        actor = cli_actor()
        attempts = {
            path: SigningAttempt(
                actor, "cli", audit_key, _file_sha256(path), PURPOSE_OF_ROLE[role], file_id=str(path)
            )
            for path in files
        }

        def progress(item: BatchItemResult, done: int, total: int) -> None:
            if not as_json:
                mark = "OK " if item.ok else "LỖI"
                detail = "" if item.ok else f" — {item.error_vi} ({item.error_code})"
                typer.echo(f"[{done}/{total}] {mark} {item.input_path.name}{detail}")

        with _audit_log() as audit:
            try:
                result = SigningService(config).sign_batch(
                    files, out, key, options, workers=workers, progress=progress
                )
            except HubError as exc:
                _audit_batch(audit, attempts, None, exc)
                raise
            _audit_batch(audit, attempts, result, None)
    if as_json:
        sys.stdout.write(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n")
    else:
        for w in result.warnings:
            typer.echo(f"Cảnh báo / warning: {w.message_vi} / {w.message}", err=True)
        typer.echo(
            f"Đã ký {result.succeeded}/{len(result.items)} tệp trong {result.elapsed_seconds:.1f} s "
            f"/ signed {result.succeeded} of {len(result.items)}"
        )
    raise typer.Exit(0 if result.failed == 0 else EXIT_SOME_FAILED)
