"""A SoftHSM2 token for the PKCS#11 tests: its configuration, the token, keys and certificates
imported from the test PKI (``softhsm2-util`` and python-pkcs11, as a Government USB token
carries them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")


def softhsm_conf(base: Path) -> Path:
    """A ``softhsm2.conf`` keeping its tokens under ``base`` (point ``SOFTHSM2_CONF`` at it)."""
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    return conf


def init_token(label: str, pin: str, so_pin: str) -> None:
    """A new token ``label`` in the first free slot."""
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin],
        check=True,
        capture_output=True,
    )


def import_key(key_path: Path, token: str, label: str, cid: str, pin: str) -> None:
    """The private key at ``key_path`` (PEM) onto ``token`` as ``label`` with id ``cid`` (hex)."""
    subprocess.run(
        [
            "softhsm2-util",
            "--import",
            str(key_path),
            "--token",
            token,
            "--label",
            label,
            "--id",
            cid,
            "--pin",
            pin,
        ],
        check=True,
        capture_output=True,
    )


def import_certificate(session: object, pem_path: Path, label: str, cid: bytes) -> None:
    """The certificate at ``pem_path`` as a token object of an open read-write ``session``."""
    from pkcs11 import Attribute, CertificateType, ObjectClass

    cert = x509.load_pem_x509_certificate(pem_path.read_bytes())
    session.create_object(  # type: ignore[attr-defined]
        {
            Attribute.CLASS: ObjectClass.CERTIFICATE,
            Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
            Attribute.TOKEN: True,
            Attribute.LABEL: label,
            Attribute.ID: cid,
            Attribute.SUBJECT: cert.subject.public_bytes(),
            Attribute.ISSUER: cert.issuer.public_bytes(),
            Attribute.VALUE: cert.public_bytes(serialization.Encoding.DER),
        }
    )
