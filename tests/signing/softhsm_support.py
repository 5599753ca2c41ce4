"""A SoftHSM2 token for the PKCS#11 tests: its configuration, the token, keys and certificates
imported from the test PKI (``softhsm2-util`` and python-pkcs11, as a Government USB token
carries them)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
#: The security officer's PIN of every test token.
SO_PIN = "24681012"


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


@dataclass(frozen=True, slots=True)
class SoftHsm:
    """The test session's SoftHSM2: one token directory, ``SOFTHSM2_CONF`` set for the whole run.

    The PKCS#11 library reads ``SOFTHSM2_CONF`` once, when a process first initialises it, so
    tests that each pointed it at a directory of their own saw one another's tokens vanish in
    one run (``NoSuchToken``); here every test's token lives in the one directory under a label
    of its own (the ``conftest`` fixture ``softhsm``).
    """

    conf: Path

    def token(
        self,
        label: str,
        pin: str,
        keys: Iterable[tuple[Path, str, str]] = (),
        certificates: Iterable[tuple[Path, str, bytes]] = (),
    ) -> str:
        """A new token ``label``: ``keys`` as (PEM path, label, hex id), ``certificates`` as
        (PEM path, label, id). The library is finalised first, so it sees the new token."""
        import pkcs11

        init_token(label, pin, SO_PIN)
        for key_path, key_label, cid in keys:
            import_key(key_path, label, key_label, cid, pin)
        pkcs11.lib(str(MODULE)).finalize()
        with pkcs11.lib(str(MODULE)).get_token(token_label=label).open(rw=True, user_pin=pin) as session:
            for pem_path, cert_label, cert_id in certificates:
                import_certificate(session, pem_path, cert_label, cert_id)
        return label
