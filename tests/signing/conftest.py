"""Shared fixtures for signing and verification tests: a live test PKI on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from signing.testpki import RunningPki, TestPki, serve_test_pki
from signing.trust import TrustStore


@pytest.fixture(scope="session")
def running_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPki]:
    """OCSP + CRL + TSA services for the throwaway Government-shaped PKI (one per session)."""
    with serve_test_pki(tmp_path_factory.mktemp("pki")) as running:
        yield running


@pytest.fixture
def pki_services(running_pki: RunningPki) -> Iterator[RunningPki]:
    """The session PKI, with the knobs (TSA delay, revocation outage) reset after each test."""
    yield running_pki
    running_pki.set_tsa_delay(0)
    running_pki.set_tsa_available(True)
    running_pki.set_revocation_available(True)


@pytest.fixture(scope="session")
def test_pki(running_pki: RunningPki) -> TestPki:
    return running_pki.pki


@pytest.fixture(scope="session")
def trust_store(test_pki: TestPki) -> TrustStore:
    return TrustStore.from_test_pki(test_pki)
