"""Typed signing settings: trust anchors, TSA, revocation policy and the server-held keys.

``hub.config.Settings`` composes :class:`SigningSettings` under ``signing``. Secrets never live
here: keys name the environment variable that holds their password or PIN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from schemas.settings import Section
from signing.appearance import AppearanceTemplate

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Pkcs12KeySettings(Section):
    """A server-held key in a PKCS#12 file; the password is read from the environment variable
    named by ``password_env`` at start-up (secrets never live in the configuration file)."""

    kind: Literal["pkcs12"]
    path: Path
    password_env: Annotated[str, Field(pattern=_ENV_NAME)]
    #: PNG drawn for this key's visible signatures: the officer's blue signature image or the
    #: agency's red seal (Decree 30/2020 Appendix I, 7d and 8a).
    image_path: Path | None = None
    prefer_pss: bool = False


class Pkcs11KeySettings(Section):
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
    image_path: Path | None = None
    prefer_pss: bool = False
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


class SigningSettings(Section):
    trust_anchor_paths: list[Path] = Field(default_factory=list)
    tsa_url: str | None = None
    tsa_timeout_seconds: float = 180
    revocation_policy: Literal["warn", "refuse"] = "warn"
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

    @model_validator(mode="after")
    def _result_keys_known(self) -> SigningSettings:
        for attr in ("result_officer_key", "result_agency_key"):
            key = getattr(self, attr)
            if key is not None and key not in self.keys:
                raise ValueError(f"{attr} names unknown key {key!r}")
        return self
