"""Server-held signing keys from ``[signing.keys]`` and the signing facade built on them.

A key entry says *where* the key is (PKCS#12 file or PKCS#11 token/HSM) and *which environment
variable* holds its password or PIN; the secret itself never sits in the configuration file
(a file of that name in the secrets directory, ``HUB_SECRETS_DIR``, serves too).
Everything is checked once at start-up (files present, variables set, images fit Decree 30/2020
Appendix I under ``image_policy``), but no key is opened then: a wrong PIN tried at every
restart could lock a token. Server-held keys are
device/service certificates or keys the agency decided to keep in its HSM (Decree 68/2024
Art. 10, docs/signing.md §2.2); officers' own tokens go through external signing.

Example (TOML file named by ``HUB_CONFIG_FILE``)::

    [signing]
    trust_anchor_paths = ["/etc/hub/anchors"]
    tsa_url = "http://tsa.ca.gov.vn/"
    result_officer_key = "lanh-ntl"
    result_agency_key = "so-nnmt"

    [signing.keys.lanh-ntl]
    kind = "pkcs12"
    purpose = "personal"              # the competent person's own signature
    principals = ["lanh-ntl"]         # API key names allowed to use it (docs/signing.md §10.5)
    path = "/etc/hub/keys/lanh-ntl.p12"
    password_env = "HUB_KEY_LANH_NTL_PASSWORD"
    image_path = "/etc/hub/images/chu-ky-lanh-ntl.png"   # blue signature, transparent PNG

    [signing.keys.so-nnmt]
    kind = "pkcs11"
    purpose = "seal"                  # the agency seal, applied by the clerk
    principals = ["van-thu-so"]
    module = "/usr/lib/x86_64-linux-gnu/libbit4xpki.so"
    token_label = "SO NNMT NINH BINH"
    key_label = "agency"
    pin_env = "HUB_KEY_SO_NNMT_PIN"
    image_path = "/etc/hub/images/con-dau-so-nnmt.png"   # red seal, real size
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hub.config import Settings
from hub.db.session import Database
from schemas.errors import ConfigurationError, SignatureImageRejectedError
from signing.facade import SigningFacade
from signing.image_policy import ImagePolicy, check_appearance_image
from signing.keys import KeySource, Pkcs11KeySource, Pkcs12KeySource, Secret
from signing.models import SignRole
from signing.settings import KeyPurpose, Pkcs11KeySettings, Pkcs12KeySettings, SigningSettings
from signing.verification import RevocationMode, VerificationPolicy

__all__ = ["build_signing_facade", "key_images", "key_source", "key_sources", "policy_from_settings"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _secret(key_id: str, variable: str, environ: Mapping[str, str]) -> Secret:
    value = environ.get(variable)
    if not value:
        raise ConfigurationError(
            f"signing key {key_id!r}: environment variable {variable} (its password/PIN) is not set",
            message_vi=f"Khóa ký '{key_id}': chưa đặt biến môi trường {variable} (mật khẩu/PIN của khóa)",
        )
    return Secret(value)


def _require_file(key_id: str, what: str, path: Path) -> None:
    if not path.is_file():
        raise ConfigurationError(
            f"signing key {key_id!r}: {what} {path} does not exist",
            message_vi=f"Khóa ký '{key_id}': không tìm thấy tệp {path}",
        )


def key_source(
    key_id: str, spec: Pkcs12KeySettings | Pkcs11KeySettings, environ: Mapping[str, str]
) -> KeySource:
    """The :class:`~signing.keys.KeySource` for one configured key (not opened)."""
    if isinstance(spec, Pkcs12KeySettings):
        _require_file(key_id, "PKCS#12 file", spec.path)
        return Pkcs12KeySource(
            spec.path, _secret(key_id, spec.password_env, environ), prefer_pss=spec.prefer_pss
        )
    _require_file(key_id, "PKCS#11 module", spec.module)
    for extra in spec.extra_certs:
        _require_file(key_id, "certificate file", extra)
    return Pkcs11KeySource(
        module_path=spec.module,
        pin=_secret(key_id, spec.pin_env, environ),
        token_label=spec.token_label,
        slot_no=spec.slot_no,
        key_label=spec.key_label,
        cert_label=spec.cert_label,
        key_id=bytes.fromhex(spec.key_id) if spec.key_id else None,
        cert_id=bytes.fromhex(spec.cert_id) if spec.cert_id else None,
        prefer_pss=spec.prefer_pss,
        use_raw_mechanism=spec.use_raw_mechanism,
        extra_certs=tuple(spec.extra_certs),
    )


def key_sources(signing: SigningSettings, environ: Mapping[str, str] | None = None) -> dict[str, KeySource]:
    """Every configured key by id; ``environ`` defaults to the process environment."""
    env = os.environ if environ is None else environ
    return {key_id: key_source(key_id, spec, env) for key_id, spec in signing.keys.items()}


def key_images(signing: SigningSettings) -> dict[str, bytes]:
    """The signature/seal PNG of each key that has one, checked against Decree 30/2020
    Appendix I for the key's purpose (blue signature, red seal, transparent PNG;
    docs/signing.md §5.4): with ``image_policy = "refuse"`` a bad image is a configuration
    error at start-up, not a refusal at the first signature."""
    images: dict[str, bytes] = {}
    for key_id, spec in signing.keys.items():
        if spec.image_path is None:
            continue
        role = SignRole.PERSONAL if spec.purpose is KeyPurpose.PERSONAL else SignRole.AGENCY
        images[key_id] = _checked_image(
            f"signing key {key_id!r}", f"Khóa ký '{key_id}'", spec.image_path, role, signing
        )
    for name, template in signing.templates.items():
        for path, role in (
            (template.signature_image, SignRole.PERSONAL),
            (template.seal_image, SignRole.AGENCY),
        ):
            if path is not None:
                _checked_image(f"signing template {name!r}", f"Mẫu chữ ký '{name}'", path, role, signing)
    return images


def _checked_image(owner: str, owner_vi: str, path: Path, role: SignRole, signing: SigningSettings) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"{owner}: cannot read image {path}: {exc.strerror}",
            message_vi=f"{owner_vi}: không đọc được hình ảnh {path}",
        ) from None
    if not data.startswith(_PNG_MAGIC):
        raise ConfigurationError(
            f"{owner}: {path} is not a PNG image",
            message_vi=f"{owner_vi}: {path} không phải ảnh PNG",
        )
    try:
        check_appearance_image(data, role, ImagePolicy(signing.image_policy))
    except SignatureImageRejectedError as exc:
        raise ConfigurationError(
            f'{owner}: image {path}: {exc.message} ([signing] image_policy = "refuse")',
            message_vi=f"{owner_vi}: hình ảnh {path}: {exc.message_vi}",
            details=exc.details,
        ) from None
    return data


def build_signing_facade(
    settings: Settings, environ: Mapping[str, str] | None = None, *, db: Database | None = None
) -> SigningFacade:
    """The facade the API and the result service use: ``[signing]`` policy + configured keys.

    With ``db``, the keys' principals are the configured ones and the admin's bindings
    (:class:`hub.services.key_bindings.BoundGrants`, docs/security.md).

    Passwords and PINs are looked up in ``environ``, by default the process environment and
    then the secrets directory (:meth:`hub.config.Settings.secret_environment`). Pending
    external-signing requests live under ``data_dir/signing-pending``.
    """
    keys = key_sources(settings.signing, settings.secret_environment() if environ is None else environ)
    key_images(settings.signing)  # bad signature/seal images stop the start (docs/signing.md §5.4)
    facade = SigningFacade.from_settings(settings.signing, Path(settings.data_dir), keys=keys)
    if db is not None:
        from hub.services.key_bindings import BoundGrants

        facade.grants = BoundGrants(facade.grants, db)
    return facade


def policy_from_settings(
    signing: SigningSettings | None, *, max_pdf_bytes: int | None = None
) -> VerificationPolicy:
    """Policy from ``[signing]`` settings: configured anchors, or the pinned government ones, and
    the ``[signing.revocation_fetch]`` allowlist and limits."""
    options: dict[str, Any] = {}
    if max_pdf_bytes is not None:
        options["max_pdf_bytes"] = max_pdf_bytes
    if signing is not None:
        options["revocation_mode"] = (
            RevocationMode.REQUIRE if signing.revocation_policy == "refuse" else RevocationMode.SOFT
        )
        # what may be fetched online, and within which limits (docs/signing.md §12)
        options["fetch_settings"] = signing.revocation_fetch
        if signing.trust_anchor_paths:
            return VerificationPolicy.from_paths(list(signing.trust_anchor_paths), **options)
    return VerificationPolicy.production(**options)
