"""Decode X.509 certificates into :class:`~signing.verification.model.CertificateInfo`.

Vietnamese distinguished names (e.g. "CA phục vụ các cơ quan Nhà nước G2", "Ban Cơ yếu Chính phủ")
arrive as UTF8String or BMPString; everything is normalised to NFC by the model.
"""

from __future__ import annotations

from typing import Any

from asn1crypto import x509

from signing.verification.model import CertificateInfo

__all__ = ["certificate_info", "managing_unit", "name_attr"]


def name_attr(name: x509.Name, attr: str) -> str | None:
    """First value of a DN attribute (``common_name``, ``organization_name``, ...), joined if multi."""
    native: dict[str, Any] = dict(name.native)
    value = native.get(attr)
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def managing_unit(cert: x509.Certificate) -> str | None:
    """The certificate-managing unit of Circular 15/2025 §2.3.4(3): subject OU, then O."""
    parts = [
        p
        for p in (
            name_attr(cert.subject, "organizational_unit_name"),
            name_attr(cert.subject, "organization_name"),
        )
        if p
    ]
    return ", ".join(parts) if parts else None


def certificate_info(cert: x509.Certificate) -> CertificateInfo:
    public_key = cert.public_key
    try:
        bits: int | None = int(public_key.bit_size)
    except (ValueError, NotImplementedError):  # unusual curves / algorithms
        bits = None
    return CertificateInfo(
        subject_dn=str(cert.subject.human_friendly),
        common_name=name_attr(cert.subject, "common_name"),
        organization=name_attr(cert.subject, "organization_name"),
        organizational_unit=name_attr(cert.subject, "organizational_unit_name"),
        locality=name_attr(cert.subject, "locality_name"),
        email=name_attr(cert.subject, "email_address"),
        issuer_dn=str(cert.issuer.human_friendly),
        issuer_common_name=name_attr(cert.issuer, "common_name"),
        serial_number_hex=format(cert.serial_number, "X"),
        sha256_fingerprint=cert.sha256.hex().upper(),
        not_before=cert.not_valid_before,
        not_after=cert.not_valid_after,
        public_key_algorithm=str(public_key.algorithm),
        public_key_bits=bits,
    )
