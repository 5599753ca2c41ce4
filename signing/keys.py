"""Key sources behind one interface: PKCS#12 file, PKCS#11 token/HSM.

Decree 130/2018 Art. 9 (and Decree 68/2024) require the private key to be under the signer's
sole control at signing time: keys stay in the token (PKCS#11) or in the officer's PKCS#12
file; PINs and passwords are held in :class:`Secret` (never logged, never in ``repr``) and
PKCS#11 sessions are always closed. External signing (key never reaches the hub) lives in
:mod:`signing.external`.

A :class:`KeySource` is a *picklable description* of where the key is; ``open()`` yields a
pyHanko :class:`~pyhanko.sign.signers.Signer`. Batch workers receive the description and open
the key once per worker process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from asn1crypto import algos
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.sign.signers import Signer, SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

from schemas.errors import ConfigurationError, SigningError, TokenPinError
from signing.settings import read_file

__all__ = [
    "KeySource",
    "LoadedKeySigner",
    "Pkcs11KeySource",
    "Pkcs12KeySource",
    "RemoteKeySource",
    "RemoteSignCallback",
    "Secret",
    "TemplateSignedAttrsMixin",
]

_log = logging.getLogger(__name__)


class Secret:
    """A PIN or password that never shows up in logs, ``repr`` or tracebacks' locals dumps."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('******')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:  # picklable for worker processes
        return (Secret, (self._value,))


class TemplateSignedAttrsMixin(Signer):
    """Builds PAdES signed attributes from a per-signer cached template.

    pyHanko rebuilds content-type, message-digest and ESS signing-certificate-v2 through
    asn1crypto for every document, and the freshly built attribute set makes the rest of the CMS
    assembly re-encode the certificates too (~9 ms per signature). For one signer the first and
    last attributes never change: the template is taken once from pyHanko's own output, and
    anything unusual (CAdES extras, Adobe revocation attribute, dry runs) goes to pyHanko.
    """

    async def signed_attrs(
        self,
        data_digest: bytes,
        digest_algorithm: str,
        attr_settings: Any = None,
        content_type: str = "data",
        use_pades: bool = False,
        timestamper: Any = None,
        dry_run: bool = False,
        is_pdf_sig: bool = True,
    ) -> Any:
        """PAdES signed attributes: cached template + this document's message digest."""
        args = (digest_algorithm, attr_settings, content_type, use_pades, timestamper, dry_run, is_pdf_sig)
        plain = (
            use_pades
            and is_pdf_sig
            and content_type == "data"
            and not dry_run
            and getattr(attr_settings, "adobe_revinfo_attr", None) is None
            and getattr(attr_settings, "cades_signed_attrs", None) is None
        )
        if not plain:
            return await super().signed_attrs(data_digest, *args)
        templates: dict[str, tuple[bytes, ...]] = self.__dict__.setdefault("_attr_templates", {})
        template = templates.get(digest_algorithm)
        if template is None:
            # A batch starts all its documents at once: they share one reference build (per
            # event loop) instead of each building it before the first one is cached.
            pending: dict[tuple[int, str], asyncio.Future[tuple[bytes, ...]]]
            pending = self.__dict__.setdefault("_attr_pending", {})
            key = (id(asyncio.get_running_loop()), digest_algorithm)
            build = pending.get(key)
            if build is None:

                async def build_and_cache() -> tuple[bytes, ...]:
                    # cached before the future completes: a document arriving between the
                    # build's end and its waiters' wake-up finds the template, not a new build
                    built = await self._attr_template(bytes(len(data_digest)), args)
                    templates[digest_algorithm] = built
                    return built

                build = pending[key] = asyncio.ensure_future(build_and_cache())
                build.add_done_callback(lambda _done: pending.pop(key, None))
            template = await asyncio.shield(build)
        if not template:
            return await super().signed_attrs(data_digest, *args)
        from asn1crypto import cms
        from pyhanko.sign.general import simple_cms_attribute

        digest_attr = simple_cms_attribute("message_digest", data_digest).dump()  # type: ignore[no-untyped-call]
        return cms.CMSAttributes.load(_der_tlv(0x31, template[0] + digest_attr + template[1]))

    async def _attr_template(self, zero_digest: bytes, args: tuple[Any, ...]) -> tuple[bytes, ...]:
        """pyHanko's encoded content-type and signing-certificate-v2 attributes for this signer,
        or ``()`` when its attributes are not the plain PAdES three."""
        reference = await super().signed_attrs(zero_digest, *args)
        parts = [attr.dump() for attr in reference]
        kinds = [attr["type"].native for attr in reference]
        ok = kinds == ["content_type", "message_digest", "signing_certificate_v2"]
        return (parts[0], parts[2]) if ok else ()


class LoadedKeySigner(TemplateSignedAttrsMixin, SimpleSigner):
    """A :class:`SimpleSigner` that parses the private key once.

    pyHanko's ``SimpleSigner.sign_raw`` re-parses the DER key on every signature (≈35 ms for
    RSA-2048 with key validation); batch signing keeps the parsed key instead.
    """

    def __init__(
        self,
        *,
        private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        signing_cert: asn1_x509.Certificate,
        chain: list[asn1_x509.Certificate],
        prefer_pss: bool = False,
        embed_roots: bool = True,
    ) -> None:
        from pyhanko.keys.internal import translate_pyca_cryptography_key_to_asn1

        store = SimpleCertificateStore()  # type: ignore[no-untyped-call]
        store.register_multiple(chain)
        super().__init__(
            signing_cert=signing_cert,
            signing_key=translate_pyca_cryptography_key_to_asn1(private_key),
            cert_registry=store,
            prefer_pss=prefer_pss,
            embed_roots=embed_roots,
        )
        self._private_key = private_key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mech: algos.SignedDigestAlgorithm = self.get_signature_mechanism_for_digest(digest_algorithm)
        name = mech["algorithm"].native
        key = self._private_key
        if name == "rsassa_pss":
            assert isinstance(key, rsa.RSAPrivateKey)
            pss, hash_algo = process_pss_params(mech["parameters"])
            return key.sign(data, pss, hash_algo)
        hash_algo = get_pyca_cryptography_hash(digest_algorithm)
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hash_algo)
        return key.sign(data, ec.ECDSA(hash_algo))


def _der_tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


@runtime_checkable
class KeySource(Protocol):
    """Where the signing key lives. Must be picklable (batch workers re-open it)."""

    def open(self) -> Any:
        """Context manager yielding a pyHanko ``Signer``; releases the key/session on exit."""
        ...

    @property
    def description(self) -> str:
        """Human-readable, secret-free description for logs and results."""
        ...


@dataclass(frozen=True)
class Pkcs12KeySource:
    """A PKCS#12 (.p12/.pfx) file protected by a password."""

    path: Path
    password: Secret
    prefer_pss: bool = False

    @property
    def description(self) -> str:
        return f"PKCS#12 file {self.path.name}"

    @contextmanager
    def open(self) -> Iterator[Signer]:
        data = read_file(self.path, f"PKCS#12 file {self.path}", f"tệp PKCS#12 {self.path}")
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, self.password.reveal().encode())
        except ValueError:
            raise TokenPinError(
                "wrong PKCS#12 password (or corrupt file)",
                message_vi="Sai mật khẩu tệp PKCS#12 (hoặc tệp bị hỏng)",
                details={"key_source": self.description},
            ) from None
        if key is None or cert is None:
            raise ConfigurationError(
                f"{self.path.name} holds no private key and certificate",
                message_vi=f"Tệp {self.path.name} không chứa khóa bí mật và chứng thư số",
            )
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise SigningError(
                f"unsupported key type {type(key).__name__}: only RSA and ECDSA are allowed",
                message_vi="Loại khóa không được hỗ trợ (chỉ RSA hoặc ECDSA)",
            )
        der = serialization.Encoding.DER
        yield LoadedKeySigner(
            private_key=key,
            signing_cert=asn1_x509.Certificate.load(cert.public_bytes(der)),
            chain=[asn1_x509.Certificate.load(c.public_bytes(der)) for c in extra],
            prefer_pss=self.prefer_pss,
        )


@dataclass(frozen=True)
class Pkcs11KeySource:
    """A key on a PKCS#11 token or HSM (VGCA Bit4id tokens, Viettel-CA, SoftHSM2 in tests).

    Select the token by ``token_label`` (or ``slot_no``) and the key/cert by label or hex id;
    Vietnamese tokens often have key and certificate labels that differ (pyHanko #456/#457),
    so ``key_label`` / ``cert_label`` / ``key_id`` / ``cert_id`` are independent.
    """

    module_path: Path
    pin: Secret
    token_label: str | None = None
    slot_no: int | None = None
    key_label: str | None = None
    cert_label: str | None = None
    key_id: bytes | None = None
    cert_id: bytes | None = None
    prefer_pss: bool = False
    #: Hash in software and call the raw mechanism (CKM_ECDSA / CKM_RSA_PKCS) for tokens
    #: without combined hash-and-sign mechanisms (pyHanko #38; SoftHSM2 for ECDSA).
    use_raw_mechanism: bool = False
    extra_certs: tuple[Path, ...] = field(default=())

    @property
    def description(self) -> str:
        return f"PKCS#11 token {self.token_label or self.slot_no} ({self.module_path.name})"

    def _not_on_token(self, session: Any, exc: Exception) -> ConfigurationError:
        """The key or certificate asked for is not on the token (labels and ids often differ
        on Vietnamese tokens, pyHanko #456/#457): say what the token holds instead."""
        import pkcs11.exceptions as p11e
        from pkcs11 import Attribute, ObjectClass

        held: list[str] = []
        for kind, cls in (("key", ObjectClass.PRIVATE_KEY), ("cert", ObjectClass.CERTIFICATE)):
            for obj in session.get_objects({Attribute.CLASS: cls}):
                try:
                    held.append(f"{kind} label={obj[Attribute.LABEL]!r} id={bytes(obj[Attribute.ID]).hex()}")
                except (KeyError, TypeError, AttributeError, p11e.PKCS11Error):
                    held.append(f"{kind} (unreadable label/id)")
        wanted = ", ".join(
            f"{name}={value!r}"
            for name, value in (
                ("key_label", self.key_label),
                ("key_id", self.key_id.hex() if self.key_id else None),
                ("cert_label", self.cert_label),
                ("cert_id", self.cert_id.hex() if self.cert_id else None),
            )
            if value is not None
        )
        found = "; ".join(held) or "no private key or certificate"
        return ConfigurationError(
            f"{exc} (asked for {wanted or 'any'}); the token holds: {found}. "
            "Select the key and certificate by --key-label/--cert-label or --key-id/--cert-id",
            message_vi=(
                f"Không tìm thấy khóa hoặc chứng thư số theo nhãn/mã đã chọn trên token; token có: {found}"
            ),
            details={"key_source": self.description},
        )

    def _no_session(self, exc: Exception) -> SigningError:
        """Why the token opened no session: a wrong or locked PIN (:class:`TokenPinError`), or
        any other refusal (no such token …)."""
        import pkcs11.exceptions as p11e

        pin_refusals: tuple[tuple[tuple[type[Exception], ...], str, str], ...] = (
            (
                (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange),
                "wrong PIN for the PKCS#11 token",
                "Sai mã PIN của thiết bị ký số (token)",
            ),
            ((p11e.PinLocked,), "the token PIN is locked", "Mã PIN của token đã bị khóa"),
        )
        details = {"key_source": self.description}
        for kinds, message, message_vi in pin_refusals:
            if isinstance(exc, kinds):
                return TokenPinError(message, message_vi=message_vi, details=details)
        return SigningError(
            f"cannot open the PKCS#11 token: {exc or type(exc).__name__}",
            message_vi="Không mở được phiên làm việc với token PKCS#11 (không tìm thấy token?)",
            details=details,
        )

    @contextmanager
    def open(self) -> Iterator[Signer]:
        import pkcs11.exceptions as p11e
        from pyhanko.config.pkcs11 import TokenCriteria
        from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session

        class _TemplatePkcs11Signer(TemplateSignedAttrsMixin, PKCS11Signer):
            pass

        from signing.trust import load_certificates

        if not self.module_path.exists():
            raise ConfigurationError(
                f"PKCS#11 module {self.module_path} not found",
                message_vi=f"Không tìm thấy thư viện PKCS#11 {self.module_path}",
            )
        try:
            session = open_pkcs11_session(
                str(self.module_path),
                slot_no=self.slot_no,
                token_criteria=TokenCriteria(label=self.token_label) if self.token_label else None,
                user_pin=self.pin.reveal(),
            )
        except p11e.PKCS11Error as exc:
            raise self._no_session(exc) from exc
        try:
            extra: list[asn1_x509.Certificate] = []
            for p in self.extra_certs:
                extra.extend(load_certificates(p))
            signer = _TemplatePkcs11Signer(
                session,
                cert_label=self.cert_label,
                key_label=self.key_label,
                key_id=self.key_id,
                cert_id=self.cert_id,
                ca_chain=extra or None,
                prefer_pss=self.prefer_pss,
                other_certs_to_pull=None,
                use_raw_mechanism=self.use_raw_mechanism,
            )
            try:
                signer.signing_cert  # noqa: B018 - loads the certificate and key handle now
            except p11e.PKCS11Error as exc:
                raise self._not_on_token(session, exc) from exc
            yield signer
        finally:
            session.close()
            _log.debug("PKCS#11 session closed (%s)", self.description)


#: ``await sign(data_to_sign, digest_algorithm)`` → raw signature (PKCS#1 v1.5/PSS or DER ECDSA).
RemoteSignCallback = Callable[[bytes, str], Awaitable[bytes]]


class _CallbackSigner(TemplateSignedAttrsMixin, Signer):
    """pyHanko signer whose raw signature comes from a remote service; checked on return."""

    def __init__(
        self,
        callback: RemoteSignCallback,
        cert: asn1_x509.Certificate,
        chain: list[asn1_x509.Certificate],
        prefer_pss: bool,
    ) -> None:
        store = SimpleCertificateStore()  # type: ignore[no-untyped-call]
        store.register_multiple(chain)
        super().__init__(signing_cert=cert, cert_registry=store, prefer_pss=prefer_pss)
        self._callback = callback
        self._cert = cert

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        from cryptography.exceptions import InvalidSignature
        from cryptography.x509 import load_der_x509_certificate

        signature = await self._callback(data, digest_algorithm)
        mech: algos.SignedDigestAlgorithm = self.get_signature_mechanism_for_digest(digest_algorithm)
        public_key = load_der_x509_certificate(self._cert.dump()).public_key()
        try:
            if isinstance(public_key, rsa.RSAPublicKey):
                if mech["algorithm"].native == "rsassa_pss":
                    pss, h = process_pss_params(mech["parameters"])
                    public_key.verify(signature, data, pss, h)
                else:
                    public_key.verify(
                        signature, data, padding.PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm)
                    )
            elif isinstance(public_key, ec.EllipticCurvePublicKey):
                public_key.verify(signature, data, ec.ECDSA(get_pyca_cryptography_hash(digest_algorithm)))
            else:
                raise SigningError("unsupported key type", message_vi="Loại khóa không được hỗ trợ")
        except (InvalidSignature, ValueError):
            raise SigningError(
                "the remote signing service returned a signature that does not match the certificate",
                message_vi="Chữ ký do dịch vụ ký từ xa trả về không khớp với chứng thư số",
            ) from None
        return signature


@dataclass(frozen=True)
class RemoteKeySource:
    """A key held by a remote signing service that answers synchronously (signing server, CSC-
    style API). For an officer's interactive tool use :mod:`signing.external` instead.

    Not picklable (holds a callback): batches with it run in one process (``workers=1``).
    """

    certificate: asn1_x509.Certificate
    sign: RemoteSignCallback
    chain: tuple[asn1_x509.Certificate, ...] = ()
    prefer_pss: bool = False
    name: str = "remote signing service"

    @property
    def description(self) -> str:
        return self.name

    @contextmanager
    def open(self) -> Iterator[Signer]:
        yield _CallbackSigner(self.sign, self.certificate, list(self.chain), self.prefer_pss)
