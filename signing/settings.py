"""Typed signing settings: trust anchors, TSA, revocation policy and the server-held keys.

``hub.config.Settings`` composes :class:`SigningSettings` under ``signing``. Secrets never live
here: keys name the environment variable that holds their password or PIN.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from schemas.errors import ConfigurationError, HubError
from schemas.settings import Section
from signing.templates import AppearanceTemplate

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: An API key name (``hub.auth.keys``): who may use a server-held key.
#: An API key name, or ``user:<username>`` of a console account (docs/security.md §9).
_PRINCIPAL_NAME = r"^(user:[a-z0-9][a-z0-9._-]{1,63}|[A-Za-z0-9][A-Za-z0-9._@-]{0,99})$"
#: An abbreviation in a document symbol (Decree 30/2020 Appendix I, II.3): capitals and digits.
ABBREVIATION_PATTERN = r"^[A-ZĐ0-9]{1,20}$"


class KeyPurpose(StrEnum):
    """What a server-held key signs for (Decree 30/2020 Art. 5, 13(7), 17, 32(2), 33(2);
    docs/signing.md §5.1, §10.5)."""

    PERSONAL = "personal"
    """The competent person's own signature (box 7c), used by that officer only."""
    SEAL = "seal"
    """The agency signature (box 8, the seal), applied by the clerk (*văn thư*) who holds it,
    after the competent person's signature; also electronic copies and attachments."""


class ServerKeySettings(Section):
    """What every server-held key declares besides where it is: its purpose and who may use it.

    ``principals`` lists API key names (``hub keys create``) and ``user:<username>`` entries:
    the console account an API key is tied to (``hub keys create --account``); nobody else may
    sign with the key, and an empty list means nobody at all (default deny, docs/signing.md
    §10.5, docs/security.md §9).
    """

    purpose: KeyPurpose
    principals: list[Annotated[str, Field(pattern=_PRINCIPAL_NAME)]] = Field(default_factory=list)
    #: PNG drawn for this key's visible signatures: the officer's blue signature image or the
    #: agency's red seal (Decree 30/2020 Appendix I, 7d and 8a).
    image_path: Path | None = None
    prefer_pss: bool = False


class Pkcs12KeySettings(ServerKeySettings):
    """A server-held key in a PKCS#12 file; the password is read from the environment variable
    named by ``password_env`` at start-up (secrets never live in the configuration file)."""

    kind: Literal["pkcs12"]
    path: Path
    password_env: Annotated[str, Field(pattern=_ENV_NAME)]


class Pkcs11KeySettings(ServerKeySettings):
    """A key on a PKCS#11 token or HSM (Decree 68/2024 Art. 10 device/service certificate); the
    PIN is read from the environment variable named by ``pin_env`` at start-up."""

    kind: Literal["pkcs11"]
    module: Path
    token_label: str | None = None
    slot_no: Annotated[int | None, Field(ge=0)] = None
    key_label: str | None = None
    cert_label: str | None = None
    #: Hex ``CKA_ID`` of the key / certificate (labels often differ on Vietnamese tokens).
    key_id: Annotated[str | None, Field(pattern=r"^(?:[0-9A-Fa-f]{2})+$")] = None
    cert_id: Annotated[str | None, Field(pattern=r"^(?:[0-9A-Fa-f]{2})+$")] = None
    pin_env: Annotated[str, Field(pattern=_ENV_NAME)]
    use_raw_mechanism: bool = False
    extra_certs: list[Path] = Field(default_factory=list)

    @model_validator(mode="after")
    def _selects_token_and_key(self) -> Pkcs11KeySettings:
        if self.token_label is None and self.slot_no is None:
            raise ValueError("set token_label or slot_no")
        if self.key_label is None and self.key_id is None:
            raise ValueError("set key_label or key_id")
        return self


SigningKeySettings = Annotated[Pkcs12KeySettings | Pkcs11KeySettings, Field(discriminator="kind")]

#: Hosts of the Government CA's published revocation and certificate services (docs/signing.md
#: §12.3): Ban Cơ yếu Chính phủ's ``ca.gov.vn`` (CRLs and CA certificates, the URLs in the CA G2
#: certificate shipped in ``signing/anchors/cpcag2.pem``) and ``ocsp.ca.gov.vn`` (its OCSP
#: responder, same certificate); NEAC's ``rootca.gov.vn`` / ``public.rootca.gov.vn`` (CRL of the
#: national root that issues the licensed public CAs; URLs seen in public code, not in a shipped
#: certificate).
GOVERNMENT_REVOCATION_HOSTS: tuple[str, ...] = (
    "ca.gov.vn",
    "ocsp.ca.gov.vn",
    "rootca.gov.vn",
    "public.rootca.gov.vn",
)

#: ``host`` (default port of the scheme only) or ``host:port``; a leading ``.`` matches subdomains.
_HOST_ENTRY = r"^\.?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$"


class RevocationFetchSettings(Section):
    """What the hub may fetch on a certificate's word: OCSP (RFC 6960), CRLs and issuer
    certificates (RFC 5280 §4.2.2.1, §4.2.1.13), only for certificates that chain to a trust
    anchor, only over http(s), only from these hosts, within a time and size budget
    (docs/signing.md §12; OWASP SSRF Prevention Cheat Sheet: allowlist, no redirects)."""

    allowed_hosts: list[Annotated[str, Field(pattern=_HOST_ENTRY)]] = Field(
        default_factory=lambda: list(GOVERNMENT_REVOCATION_HOSTS)
    )
    #: Whole request (connect, send, every byte of the answer) in seconds.
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    #: Largest OCSP response / CRL / certificate bundle read; a Government CRL is a few MB.
    max_response_bytes: Annotated[int, Field(gt=0, le=256 * 1024 * 1024)] = 16 * 1024 * 1024


class IssuanceSettings(Section):
    """What the issuance flow writes into an issued document's number and date places
    (Decree 30/2020 Art. 15, Appendix I; docs/signing.md §13): ``12/GCN-SNNMT`` and
    ``Ninh Bình, ngày 06 tháng 12 năm 2026``."""

    #: The issuing agency's abbreviation in every symbol (``SNNMT``).
    agency_abbreviation: Annotated[str, Field(pattern=ABBREVIATION_PATTERN)]
    #: The place name of the place-and-date line (the province or city, Appendix I II.4.a).
    place: Annotated[str, Field(min_length=1, max_length=60)]
    #: The document type abbreviation when a request names none (``GCN``, ``QĐ``, ``GP``).
    document_type: Annotated[str, Field(pattern=ABBREVIATION_PATTERN)] = "GCN"
    #: Whose register numbers the documents (one sequence per agency and year); default: the
    #: dossier's agency code.
    agency_code: Annotated[str | None, Field(max_length=40)] = None


class SigningSettings(Section):
    trust_anchor_paths: list[Path] = Field(default_factory=list)
    tsa_url: str | None = None
    tsa_timeout_seconds: float = 180
    revocation_policy: Literal["warn", "refuse"] = "warn"
    #: ``[signing.revocation_fetch]``: allowlist, timeout and size limit of online fetches.
    revocation_fetch: RevocationFetchSettings = Field(default_factory=RevocationFetchSettings)
    #: Signature/seal images that are not transparent PNGs in blue/red (Decree 30/2020
    #: Appendix I): refuse to sign, or sign and warn (docs/signing.md §5.4).
    image_policy: Literal["refuse", "warn"] = "refuse"
    font_path: Path = Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf")
    external_request_ttl_seconds: float = 900
    #: Appearance templates per procedure (``[signing.templates.giay-phep]``), chosen by the
    #: ``template`` signing option: a fixed signature box for documents whose signer block
    #: cannot be read from the page (docs/signing.md §5.5).
    templates: dict[str, AppearanceTemplate] = Field(default_factory=dict)
    #: Server-held signing keys by id (``[signing.keys.agency]``), built at start-up.
    keys: dict[str, SigningKeySettings] = Field(default_factory=dict)
    #: Key ids the result service signs with: the competent person, then the agency seal.
    result_officer_key: str | None = None
    result_agency_key: str | None = None
    #: The number and date written before the seal (``[signing.issuance]``); without it
    #: ``/results/issue`` is not configured.
    issuance: IssuanceSettings | None = None

    @model_validator(mode="after")
    def _result_keys_known(self) -> SigningSettings:
        """The result keys exist and fit their stage: a personal key signs first, a seal key
        seals (Decree 30/2020 Art. 13(7), 17)."""
        for attr, purpose in (
            ("result_officer_key", KeyPurpose.PERSONAL),
            ("result_agency_key", KeyPurpose.SEAL),
        ):
            key = getattr(self, attr)
            if key is None:
                continue
            if key not in self.keys:
                raise ValueError(f"{attr} names unknown key {key!r}")
            if self.keys[key].purpose is not purpose:
                raise ValueError(f"{attr} names key {key!r} whose purpose is not {purpose.value!r}")
        return self


def read_file(path: Path, what: str, what_vi: str, error: type[HubError] = ConfigurationError) -> bytes:
    """The bytes of ``path``; a file that cannot be read is ``error`` naming it (``what``,
    ``what_vi``) and why: by default a configuration error, as for the key files and trust
    anchors these settings name."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}", message_vi=f"Không đọc được {what_vi}") from exc
