"""Pre-signing certificate check.

Circular 15/2025/TT-BKHCN §2.2 and Annex II, Decree 68/2024 Art. 29 k1–k2 and Art. 31: before
signing, the software checks that the certificate (a) is within its validity period at signing
time, (b) fits its scope of use (key usage for signing documents), (c) chains to a recognised
trust anchor, and (d) is not revoked at signing time via OCSP or the latest CRL. If the
revocation status cannot be obtained the signer must be warned (policy ``warn``) or, by local
policy, signing is refused (``refuse``).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal

from asn1crypto import x509 as asn1_x509
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    DisallowedAlgorithmError,
    ExpiredError,
    InsufficientRevinfoError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
    ValidationError,
)

from schemas.errors import CertificateRejectedError, RevocationUnavailableError
from schemas.timefmt import VN_TZ, now_vn
from signing.models import CertificateCheck, RevocationPolicy, SigningWarning
from signing.trust import TrustStore

__all__ = ["ACCEPTED_KEY_USAGES", "acheck_signing_certificate"]

#: A document-signing certificate needs digitalSignature or nonRepudiation (contentCommitment).
ACCEPTED_KEY_USAGES = frozenset({"digital_signature", "non_repudiation"})
MIN_RSA_BITS = 2048


def _subject(cert: asn1_x509.Certificate) -> str:
    return str(cert.subject.human_friendly)


def _reject(
    reason: str, message: str, message_vi: str, cert: asn1_x509.Certificate
) -> CertificateRejectedError:
    return CertificateRejectedError(
        message,
        message_vi=message_vi,
        details={"reason": reason, "subject": _subject(cert), "serial": format(cert.serial_number, "x")},
    )


async def acheck_signing_certificate(
    cert: asn1_x509.Certificate,
    *,
    trust_store: TrustStore,
    chain: list[asn1_x509.Certificate] | None = None,
    at: datetime | None = None,
    revocation_policy: RevocationPolicy = RevocationPolicy.WARN,
    fetch_timeout: float | None = None,
) -> CertificateCheck:
    """Run the Circular 15/2025 pre-signing checks; raise or return the evidence.

    :raises CertificateRejectedError: expired/not yet valid, wrong key usage, untrusted chain,
        revoked, or a disallowed algorithm.
    :raises RevocationUnavailableError: no OCSP/CRL answer and ``revocation_policy`` is refuse.
    """
    at = (at or now_vn()).astimezone(VN_TZ)
    not_before = cert.not_valid_before.astimezone(VN_TZ)
    not_after = cert.not_valid_after.astimezone(VN_TZ)
    # (a) validity period — Decree 68/2024 Art. 31 k1a
    if at > not_after:
        raise _reject(
            "expired",
            f"certificate expired on {not_after.isoformat()}",
            f"Chứng thư số đã hết hạn từ {not_after.strftime('%d/%m/%Y %H:%M:%S')}",
            cert,
        )
    if at < not_before:
        raise _reject(
            "not_yet_valid",
            f"certificate is not valid before {not_before.isoformat()}",
            f"Chứng thư số chưa có hiệu lực (từ {not_before.strftime('%d/%m/%Y %H:%M:%S')})",
            cert,
        )
    # (b) scope of use — Art. 31 k1b; Circular Annex II: Key Usage
    usages = sorted(cert.key_usage_value.native) if cert.key_usage_value is not None else []
    if usages and not ACCEPTED_KEY_USAGES.intersection(usages):
        raise _reject(
            "key_usage",
            f"certificate key usage {usages} does not allow signing documents "
            "(needs digitalSignature or nonRepudiation)",
            "Chứng thư số không được phép dùng để ký văn bản "
            "(thiếu mục đích digitalSignature hoặc nonRepudiation)",
            cert,
        )

    # Circular 15/2025 Annex II: algorithms per current mandatory standards — RSA ≥ 2048 bits,
    # ECDSA on P-256/P-384/P-521.
    _check_key_strength(cert)

    warnings: list[SigningWarning] = []
    chain = list(chain or [])
    try:
        path, vc = await _validate(cert, chain, trust_store, at, "hard-fail", fetch_timeout)
        status: str = "good"
    except InsufficientRevinfoError:
        if revocation_policy is RevocationPolicy.REFUSE:
            raise RevocationUnavailableError(
                "the certificate's revocation status could not be checked (no OCSP answer, no current CRL)",
                message_vi=(
                    "Không kiểm tra được trạng thái thu hồi của chứng thư số "
                    "(không truy cập được OCSP và CRL mới nhất)"
                ),
                details={"subject": _subject(cert)},
            ) from None
        warnings.append(
            SigningWarning(
                code="revocation_unchecked",
                message="Revocation status could not be checked (OCSP and CRL unavailable); signed anyway",
                message_vi=(
                    "Cảnh báo: không kiểm tra được trạng thái thu hồi của chứng thư số "
                    "(OCSP và CRL không truy cập được); văn bản vẫn được ký"
                ),
            )
        )
        path, vc = await _validate(cert, chain, trust_store, at, "soft-fail", fetch_timeout)
        status = "unknown"

    ocsps = [base64.b64encode(o.dump()).decode() for o in vc.ocsps]
    crls = [base64.b64encode(c.dump()).decode() for c in vc.crls]
    source: Literal["ocsp", "crl", "none"] = (
        "ocsp" if ocsps and status == "good" else "crl" if crls and status == "good" else "none"
    )
    return CertificateCheck(
        subject=_subject(cert),
        issuer=str(cert.issuer.human_friendly),
        serial_hex=format(cert.serial_number, "x"),
        not_before=not_before,
        not_after=not_after,
        key_usage=usages,
        checked_at=at,
        chain=[_subject(c) for c in path],
        revocation_status="good" if status == "good" else "unknown",
        revocation_source=source,
        ocsp_responses=ocsps,
        crls=crls,
        warnings=warnings,
    )


_ALLOWED_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})


def _check_key_strength(cert: asn1_x509.Certificate) -> None:
    pub = cert.public_key
    algo = pub.algorithm
    if algo in ("rsa", "rsassa_pss"):
        if pub.bit_size < MIN_RSA_BITS:
            raise _reject(
                "weak_key",
                f"RSA key of {pub.bit_size} bits is below the {MIN_RSA_BITS}-bit minimum",
                f"Khóa RSA {pub.bit_size} bit không đạt độ dài tối thiểu {MIN_RSA_BITS} bit",
                cert,
            )
    elif algo == "ec":
        curve = pub.curve[1] if isinstance(pub.curve, tuple) else str(pub.curve)
        if curve not in _ALLOWED_CURVES:
            raise _reject(
                "weak_key",
                f"elliptic curve {curve} is not allowed (P-256, P-384, P-521)",
                f"Đường cong elliptic {curve} không được chấp nhận",
                cert,
            )
    else:
        raise _reject(
            "unsupported_key",
            f"unsupported public key algorithm {algo}",
            f"Thuật toán khóa {algo} không được hỗ trợ",
            cert,
        )


async def _validate(
    cert: asn1_x509.Certificate,
    chain: list[asn1_x509.Certificate],
    trust_store: TrustStore,
    at: datetime,
    mode: str,
    fetch_timeout: float | None,
) -> tuple[list[asn1_x509.Certificate], ValidationContext]:
    vc = trust_store.validation_context(
        allow_fetching=True,
        revocation_mode=mode,
        moment=at,
        other_certs=chain,
        fetch_timeout=fetch_timeout,  # fetches obey the store's policy (docs/signing.md §12)
    )
    validator = CertificateValidator(cert, intermediate_certs=chain, validation_context=vc)
    try:
        path = await validator.async_validate_usage(set())  # type: ignore[no-untyped-call]
    except RevokedError as exc:
        raise _reject(
            "revoked",
            f"certificate is revoked: {exc}",
            "Chứng thư số đã bị thu hồi tại thời điểm ký",
            cert,
        ) from None
    except (ExpiredError, NotYetValidError) as exc:
        raise _reject(
            "chain_expired",
            f"a certificate in the chain is outside its validity period: {exc}",
            "Một chứng thư trong đường dẫn chứng thực đã hết hạn hoặc chưa có hiệu lực",
            cert,
        ) from None
    except DisallowedAlgorithmError as exc:
        raise _reject(
            "weak_algorithm",
            f"disallowed algorithm in the certificate chain: {exc}",
            "Thuật toán trong chứng thư số không đạt yêu cầu",
            cert,
        ) from None
    except InsufficientRevinfoError:
        raise
    except PathBuildingError:
        raise _reject(
            "untrusted",
            "certificate does not chain to a configured trust anchor",
            "Chứng thư số không liên kết tới chứng thư gốc tin cậy (đường dẫn chứng thực không hợp lệ)",
            cert,
        ) from None
    except (PathValidationError, ValidationError) as exc:
        raise _reject(
            "invalid_path",
            f"certificate path validation failed: {exc}",
            f"Đường dẫn chứng thực không hợp lệ: {exc}",
            cert,
        ) from None
    return [c for c in path.iter_certs(include_root=True)], vc
