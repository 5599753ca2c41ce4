"""Shared fixtures for signing and verification tests: a live test PKI on loopback, key sources,
sample images/PDFs, and wrappers around poppler's ``pdfsig`` and ``qpdf --check``."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.api.app import CORE_ROUTE_MODULES
from hub.simulators.pki import RunningPki, serve_test_pki
from signing.external import ExternalSigningService
from signing.facade import KeyGrant, SigningFacade
from signing.keys import Pkcs12KeySource, Secret
from signing.models import SignatureLevel, SignOptions, SignResult, SignRole
from signing.samples import sample_pdf, sample_seal_png, sample_signature_png
from signing.settings import KeyPurpose
from signing.signer_service import SigningConfig, SigningService
from signing.store import InMemoryPendingStore
from signing.testpki import TestPki
from signing.timestamping import TsaSettings
from signing.trust import TrustStore
from signing.verification import VerificationPolicy
from tests.api.livehub import LiveHub, live_hub


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
    running_pki.set_ocsp_available(True)
    running_pki.fail_next_tsa_requests(0)


@pytest.fixture(scope="session")
def test_pki(running_pki: RunningPki) -> TestPki:
    return running_pki.pki


@pytest.fixture(scope="session")
def trust_store(test_pki: TestPki) -> TrustStore:
    return TrustStore.from_test_pki(test_pki)


# --- signing -----------------------------------------------------------------------------------

KeyFactory = Callable[..., Pkcs12KeySource]


@pytest.fixture(scope="session")
def p12_key(test_pki: TestPki) -> KeyFactory:
    """``p12_key("officer")`` → PKCS#12 key source for that test-PKI certificate."""

    def make(name: str, *, prefer_pss: bool = False, password: str | None = None) -> Pkcs12KeySource:
        return Pkcs12KeySource(
            getattr(test_pki, f"{name}_p12"),
            Secret(password if password is not None else test_pki.p12_password),
            prefer_pss=prefer_pss,
        )

    return make


@pytest.fixture(scope="session")
def signature_png() -> bytes:
    return sample_signature_png()


@pytest.fixture(scope="session")
def seal_png() -> bytes:
    return sample_seal_png()


@pytest.fixture
def pdf_bytes() -> bytes:
    return sample_pdf("QUYET DINH 123/QD-SNNMT", pages=2)


@pytest.fixture
def signing_config(
    pki_services: RunningPki, trust_store: TrustStore, signature_png: bytes, seal_png: bytes
) -> SigningConfig:
    return SigningConfig(
        trust_store=trust_store,
        tsa=TsaSettings(
            url=pki_services.tsa_url, timeout_seconds=10, attempts=2, backoff_initial_seconds=0.05
        ),
        signature_png=signature_png,
        seal_png=seal_png,
    )


@pytest.fixture
def signing_service(signing_config: SigningConfig) -> SigningService:
    return SigningService(signing_config)


Sign = Callable[..., tuple[bytes, SignResult]]


@pytest.fixture
def sign(signing_service: SigningService, p12_key: KeyFactory, pdf_bytes: bytes) -> Sign:
    """``sign(options, key="officer", pdf=pdf_bytes, **key_options)`` → ``(signed, result)``:
    :meth:`SigningService.sign_bytes` with a test-PKI PKCS#12 key, run to completion."""

    def run(
        options: SignOptions, key: str = "officer", pdf: bytes | None = None, **key_options: Any
    ) -> tuple[bytes, SignResult]:
        source = p12_key(key, **key_options)
        return asyncio.run(signing_service.sign_bytes(pdf_bytes if pdf is None else pdf, source, options))

    return run


@pytest.fixture
def certified_then_sealed(sign: Sign) -> tuple[bytes, bytes]:
    """The hub's results flow on a two-page sample: the officer certifies (reserving the agency
    field), then the agency seals; ``(certified, sealed)``, both B-B."""
    certified, _ = sign(
        SignOptions(level=SignatureLevel.B_B, role=SignRole.PERSONAL, certify=True), pdf=sample_pdf(pages=2)
    )
    sealed, _ = sign(SignOptions(level=SignatureLevel.B_B, role=SignRole.AGENCY), key="agency", pdf=certified)
    return certified, sealed


@pytest.fixture(scope="session")
def pdfsig() -> Callable[[Path], str]:
    """poppler's ``pdfsig`` report (signature integrity checked; certificate trust skipped)."""

    def run(path: Path) -> str:
        return subprocess.run(
            ["pdfsig", "-nocert", str(path)], capture_output=True, text=True, check=False
        ).stdout

    return run


@pytest.fixture(scope="session")
def qpdf_check() -> Callable[[Path], subprocess.CompletedProcess[str]]:
    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True, check=False)

    return run


@pytest.fixture
def signing_hub(
    database_url: str,
    tmp_path: Path,
    signing_config: SigningConfig,
    test_pki: TestPki,
    trust_store: TrustStore,
) -> Iterator[LiveHub]:
    """A live hub with the signing routes and two server-held keys: ``officer-key`` (personal,
    for ``test-officer``) and ``agency-hsm`` (the seal, for ``test-clerk``)."""
    service = SigningService(signing_config)
    facade = SigningFacade(
        service,
        ExternalSigningService(service, InMemoryPendingStore(), ttl=timedelta(minutes=5)),
        {
            "officer-key": Pkcs12KeySource(test_pki.officer_p12, Secret(test_pki.p12_password)),
            "agency-hsm": Pkcs12KeySource(test_pki.agency_p12, Secret(test_pki.p12_password)),
        },
        {
            "officer-key": KeyGrant(KeyPurpose.PERSONAL, frozenset({"test-officer"})),
            "agency-hsm": KeyGrant(KeyPurpose.SEAL, frozenset({"test-clerk"})),
        },
    )
    route_modules = (*CORE_ROUTE_MODULES, "hub.api.routes.signing")
    with live_hub(database_url, tmp_path / "data", route_modules=route_modules) as hub:
        hub.app.state.services.signing = facade  # the test's keys (before any request)
        hub.app.state.verification_policy = VerificationPolicy.from_trust_store(trust_store)
        yield hub
