"""TrustStore: production anchors pinned by fingerprint, custom anchors, refresh."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from schemas.errors import ConfigurationError
from signing.testpki import TestPki
from signing.trust import DEFAULT_ANCHOR_PINS, TrustStore, default_anchor_dir


def test_default_store_loads_pinned_government_anchors() -> None:
    store = TrustStore.default()
    subjects = " | ".join(a.subject for a in store.anchors)
    assert "RootCA chuyên dùng Chính phủ G2" in subjects
    assert "Vietnam National Root CA" in subjects
    # the G2 issuing CA is not self-signed: kept as a path-building intermediate
    assert any("CA phục vụ các cơ quan Nhà nước G2" in i.subject for i in store.intermediates)
    pinned = {a.source.name: a.sha256 for a in (*store.anchors, *store.intermediates)}
    assert pinned == dict(DEFAULT_ANCHOR_PINS)


def test_pin_mismatch_is_refused(tmp_path: Path, test_pki: TestPki) -> None:
    shutil.copy(test_pki.root_cert, tmp_path / "rootcag2.pem")  # impostor under a pinned name
    with pytest.raises(ConfigurationError) as exc:
        TrustStore([tmp_path], pins=DEFAULT_ANCHOR_PINS)
    assert "rootcag2.pem" in exc.value.message
    assert "không khớp" in exc.value.message_vi


def test_garbage_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(ConfigurationError):
        TrustStore([tmp_path / "bad.pem"])


def test_empty_directory_has_no_anchors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as exc:
        TrustStore([tmp_path])
    assert "Kho chứng thư" in exc.value.message_vi


def test_refresh_picks_up_new_anchor(tmp_path: Path, test_pki: TestPki) -> None:
    shutil.copy(default_anchor_dir() / "vnrca256.pem", tmp_path / "a.pem")
    store = TrustStore([tmp_path])
    assert len(store.anchors) == 1
    shutil.copy(test_pki.root_cert, tmp_path / "b.crt")
    store.refresh()
    assert len(store.anchors) == 2
    assert any("(TEST)" in a.subject for a in store.anchors)


def test_validation_context_trusts_test_root(trust_store: TrustStore, test_pki: TestPki) -> None:
    from asn1crypto import pem, x509
    from pyhanko_certvalidator import CertificateValidator

    _, _, der = pem.unarmor(test_pki.officer_cert.read_bytes())
    cert = x509.Certificate.load(der)
    vc = trust_store.validation_context(revocation_mode="hard-fail")
    validator = CertificateValidator(cert, validation_context=vc)
    import asyncio

    path = asyncio.run(validator.async_validate_usage({"non_repudiation"}))
    assert path.pkix_len == 2  # issuing CA + officer under the trusted root


def test_validation_context_sees_revocation(trust_store: TrustStore, test_pki: TestPki) -> None:
    import asyncio

    from asn1crypto import pem, x509
    from pyhanko_certvalidator import CertificateValidator
    from pyhanko_certvalidator.errors import RevokedError

    _, _, der = pem.unarmor(test_pki.revoked_cert.read_bytes())
    vc = trust_store.validation_context(revocation_mode="hard-fail")
    validator = CertificateValidator(x509.Certificate.load(der), validation_context=vc)
    with pytest.raises(RevokedError):
        asyncio.run(validator.async_validate_usage({"non_repudiation"}))
