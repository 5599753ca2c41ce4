"""Requests the hub makes on a certificate's word (docs/signing.md §12): only for certificates
that chain to a trust anchor, only http(s) to allow-listed hosts, bounded in time and size.

The "internal service" is a plain socket server on loopback that counts connections: a PDF or
an external-signing request carrying a certificate that points at it must not reach it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from asn1crypto import x509
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.api.errors import install_error_handlers
from hub.api.routes.verification import require_verifier, router
from hub.auth.keys import Principal
from hub.db.models import ApiRole
from hub.simulators.pki import RunningPki
from schemas.errors import CertificateRejectedError
from signing.external import ExternalSigningService
from signing.models import SignatureLevel, SignOptions
from signing.revocation_fetch import PolicyFetcherBackend, url_refusal
from signing.settings import GOVERNMENT_REVOCATION_HOSTS, RevocationFetchSettings, SigningSettings
from signing.signer_service import SigningService, config_from_settings
from signing.store import InMemoryPendingStore
from signing.testpki import TestPki, issue_extra_leaf
from signing.trust import TrustStore, default_anchor_dir, load_certificates
from signing.verification import VerificationPolicy, verify_pdf
from tests.signing.loopback_servers import LoopbackServer
from tests.signing.verify_helpers import make_pdf, sign


@pytest.fixture(scope="module")
def listener() -> Iterator[LoopbackServer]:
    """The internal address an attacker's certificate points at."""
    with LoopbackServer("record") as server:
        yield server


@pytest.fixture(autouse=True)
def _listener_starts_clean(listener: LoopbackServer) -> None:
    listener.connections = 0


def _leaf(pki: TestPki, name: str, issuer: Any, serial: int, base: str) -> Path:
    return issue_extra_leaf(
        pki,
        name,
        issuer=issuer,
        serial=serial,
        ocsp_url=f"{base}/ocsp",
        crl_url=f"{base}/crl",
        ca_issuers_url=f"{base}/issuer.crt",
    )


@pytest.fixture(scope="module")
def attacker_p12(running_pki: RunningPki, listener: LoopbackServer) -> dict[str, Path]:
    """Certificates whose AIA (OCSP, caIssuers) and CRL DP all point at the listener:
    ``untrusted`` (another root), ``forged`` (names the trusted issuing CA, other key) and
    ``trusted`` (really issued by the trusted issuing CA)."""
    base = f"http://{listener.host}"
    pki = running_pki.pki
    return {
        "untrusted": _leaf(pki, "ssrf_untrusted", "untrusted_root", 0x5001, base),
        "forged": _leaf(pki, "ssrf_forged", "forged_issuing_ca", 0x5003, base),
        "trusted": _leaf(pki, "ssrf_trusted", "issuing_ca", 0x5005, base),
    }


def _settings(pki: TestPki, *hosts: str, timeout: float = 10, max_bytes: int = 1 << 20) -> SigningSettings:
    """``[signing]`` as the demo writes it: the test PKI's root, its services allow-listed."""
    return SigningSettings(
        trust_anchor_paths=[*pki.trusted_anchor_files, *pki.intermediate_files],
        revocation_fetch=RevocationFetchSettings(
            allowed_hosts=[pki.service_host, *hosts], timeout_seconds=timeout, max_response_bytes=max_bytes
        ),
    )


def _api_verify(settings: SigningSettings, pdf: bytes) -> dict[str, Any]:
    """``POST /api/v1/verification`` with the policy the route builds from ``settings``."""
    app = FastAPI()
    app.include_router(router)
    install_error_handlers(app)
    app.state.settings = SimpleNamespace(signing=settings, api=SimpleNamespace(max_body_bytes=5_000_000))
    app.dependency_overrides[require_verifier] = lambda: Principal(name="van-thu", role=ApiRole.OFFICER)
    with TestClient(app) as client:
        r = client.post("/api/v1/verification", content=pdf, headers={"content-type": "application/pdf"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _codes(sig: dict[str, Any]) -> set[str]:
    return {r["code"] for r in sig["reasons"]}


# --- verification ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["untrusted", "forged"])
def test_verification_never_contacts_urls_of_an_untrusted_certificate(
    running_pki: RunningPki, attacker_p12: dict[str, Path], listener: LoopbackServer, which: str
) -> None:
    pdf = sign(make_pdf(), running_pki, attacker_p12[which])
    body = _api_verify(_settings(running_pki.pki, listener.host), pdf)
    assert listener.connections == 0
    sig = body["signatures"][0]
    assert body["verdict"] == "invalid"
    assert "untrusted_chain" in _codes(sig)
    assert sig["revocation"]["outcome"] == "unknown"
    assert sig["revocation"]["not_checked_reason"] == "untrusted_chain"


def test_trusted_chain_on_allowlisted_host_is_checked_online(running_pki: RunningPki) -> None:
    pdf = sign(make_pdf(), running_pki, running_pki.pki.officer_p12)
    sig = _api_verify(_settings(running_pki.pki), pdf)["signatures"][0]
    assert sig["verdict"] == "valid", sig["reasons"]
    assert sig["revocation"]["outcome"] == "passed"
    assert sig["revocation"]["source"] == "fetched"
    assert sig["revocation"]["not_checked_reason"] is None
    assert "revocation_not_checked" not in _codes(sig)


def test_trusted_chain_on_unlisted_host_is_not_checked_and_not_contacted(
    running_pki: RunningPki, attacker_p12: dict[str, Path], listener: LoopbackServer
) -> None:
    pdf = sign(make_pdf(), running_pki, attacker_p12["trusted"])
    sig = _api_verify(_settings(running_pki.pki), pdf)["signatures"][0]
    assert listener.connections == 0
    assert sig["verdict"] == "valid", sig["reasons"]
    assert sig["revocation"]["outcome"] == "unknown"
    assert sig["revocation"]["not_checked_reason"] == "host_not_allowed"
    warning = next(r for r in sig["reasons"] if r["code"] == "revocation_not_checked")
    assert warning["severity"] == "warning"
    assert "host_not_allowed" in warning["message"]
    assert "không thuộc danh sách được phép" in warning["message_vi"]


def test_default_allowlist_does_not_include_the_test_pki(running_pki: RunningPki) -> None:
    """Without the demo/test entry the test PKI's loopback responder is off limits."""
    pdf = sign(make_pdf(), running_pki, running_pki.pki.officer_p12)
    policy = VerificationPolicy.from_paths(list(running_pki.pki.trusted_anchor_files))
    sig = verify_pdf(pdf, policy).signatures[0]
    assert sig.revocation.not_checked_reason == "host_not_allowed"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("huge", "response_too_large"), ("slow", "timeout"), ("redirect", "fetch_failed")],
)
def test_allowlisted_server_is_bounded_in_size_time_and_redirects(
    running_pki: RunningPki, listener: LoopbackServer, tmp_path: Path, mode: Any, expected: str
) -> None:
    with LoopbackServer(mode, redirect_to=listener.url("/internal")) as server:
        p12 = issue_extra_leaf(
            running_pki.pki,
            f"ssrf_{mode}",
            issuer="issuing_ca",
            serial=0x5100 + len(mode),
            ocsp_url=server.url("/ocsp"),
            crl_url=server.url("/crl"),
        )
        pdf = sign(make_pdf(), running_pki, p12)
        settings = _settings(running_pki.pki, server.host, timeout=0.5, max_bytes=256 * 1024)
        sig = _api_verify(settings, pdf)["signatures"][0]
        assert server.connections >= 1
    assert sig["revocation"]["outcome"] == "unknown"
    assert sig["revocation"]["not_checked_reason"] == expected
    assert "revocation_not_checked" in _codes(sig)
    assert listener.connections == 0  # the redirect target was never followed


# --- external signing prepare -------------------------------------------------------------------


def _external(settings: SigningSettings) -> ExternalSigningService:
    return ExternalSigningService(SigningService(config_from_settings(settings)), InMemoryPendingStore())


def _der(path: Path) -> bytes:
    return bytes(load_certificates(path)[0].dump())


def _pem(p12: Path) -> Path:
    return p12.with_suffix(".crt.pem")


@pytest.mark.parametrize("which", ["untrusted", "forged"])
def test_external_prepare_never_contacts_urls_of_an_untrusted_certificate(
    running_pki: RunningPki, attacker_p12: dict[str, Path], listener: LoopbackServer, which: str
) -> None:
    service = _external(_settings(running_pki.pki, listener.host))
    cert = _der(_pem(attacker_p12[which]))
    with pytest.raises(CertificateRejectedError):
        asyncio.run(service.prepare(make_pdf(), cert, SignOptions(level=SignatureLevel.B_B)))
    assert listener.connections == 0


def test_external_prepare_unlisted_host_warns_without_connection(
    running_pki: RunningPki, attacker_p12: dict[str, Path], listener: LoopbackServer
) -> None:
    pki = running_pki.pki
    service = _external(_settings(pki))
    chain = [_der(pki.issuing_ca_cert), _der(pki.root_cert)]
    req = asyncio.run(
        service.prepare(
            make_pdf(),
            _der(_pem(attacker_p12["trusted"])),
            SignOptions(level=SignatureLevel.B_B),
            chain_der=chain,
        )
    )
    assert listener.connections == 0
    assert req.certificate is not None
    assert req.certificate.revocation_status == "unknown"
    assert "revocation_unchecked" in {w.code for w in req.warnings}


def test_external_prepare_allowlisted_host_checks_revocation(running_pki: RunningPki) -> None:
    pki = running_pki.pki
    req = asyncio.run(
        _external(_settings(pki)).prepare(
            make_pdf(),
            _der(pki.officer_cert),
            SignOptions(level=SignatureLevel.B_B),
            chain_der=[_der(pki.issuing_ca_cert), _der(pki.root_cert)],
        )
    )
    assert req.certificate is not None
    assert req.certificate.revocation_status == "good"
    assert req.certificate.ocsp_responses or req.certificate.crls


# --- the policy itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://ocsp.ca.gov.vn/", True),
        ("http://ca.gov.vn/pki/pub/crl/cpcag2.crl", True),
        ("https://ca.gov.vn/pki/pub/crt/rootcag2.crt", True),
        ("http://OCSP.CA.GOV.VN/", True),
        ("http://ca.gov.vn:8080/crl", False),  # bare entry: default port only
        ("http://evil.ca.gov.vn/", False),  # no suffix entry for ca.gov.vn
        ("http://ca.gov.vn.evil.example/", False),
        ("http://user@ca.gov.vn/", False),
        ("http://127.0.0.1/", False),
        ("http://[::1]/", False),
        ("http://169.254.169.254/latest/meta-data/", False),
        ("ldap://ca.gov.vn/cn=crl", False),
        ("file:///etc/passwd", False),
        ("gopher://ca.gov.vn/", False),
    ],
)
def test_url_policy_defaults(url: str, allowed: bool) -> None:
    assert (url_refusal(url, RevocationFetchSettings()) is None) is allowed


def test_suffix_and_port_entries() -> None:
    settings = RevocationFetchSettings(allowed_hosts=[".example.vn", "127.0.0.1:8443"])
    assert url_refusal("http://ocsp.example.vn/", settings) is None
    assert url_refusal("http://127.0.0.1:8443/ocsp", settings) is None
    assert url_refusal("http://127.0.0.1:8444/ocsp", settings) is not None
    assert url_refusal("http://127.0.0.1/ocsp", settings) is not None


def test_defaults_cover_every_url_in_the_shipped_government_anchors() -> None:
    """The default allowlist is the Government CA's own published hosts (signing/anchors)."""
    urls: list[str] = []
    for path in sorted(default_anchor_dir().glob("*.pem")):
        cert: x509.Certificate = load_certificates(path)[0]
        urls += list(cert.ocsp_urls) + [dp.url for dp in cert.crl_distribution_points]
        urls += [
            d["access_location"].native
            for d in cert.authority_information_access_value or ()
            if d["access_method"].native == "ca_issuers"
        ]
    assert urls  # CA G2 names ca.gov.vn and ocsp.ca.gov.vn
    assert all(url_refusal(u, RevocationFetchSettings()) is None for u in urls), urls
    assert set(RevocationFetchSettings().allowed_hosts) == set(GOVERNMENT_REVOCATION_HOSTS)


def test_trust_store_refuses_an_unbounded_fetcher_backend(trust_store: TrustStore) -> None:
    from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

    with pytest.raises(TypeError):
        trust_store.validation_context(fetcher_backend=RequestsFetcherBackend())
    bounded = trust_store.fetcher_backend()
    assert isinstance(bounded, PolicyFetcherBackend)
    assert trust_store.validation_context(fetcher_backend=bounded) is not None


def test_settings_reject_malformed_host_entries() -> None:
    from pydantic import ValidationError

    for bad in ("http://ca.gov.vn", "ca.gov.vn/path", "", "a b"):
        with pytest.raises(ValidationError):
            RevocationFetchSettings(allowed_hosts=[bad])


def test_cli_verify_fetches_only_from_added_hosts(running_pki: RunningPki, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from hub.commands.verify import app as cli_app

    path = tmp_path / "qd.pdf"
    path.write_bytes(sign(make_pdf(), running_pki, running_pki.pki.officer_p12))
    base = [str(path), "-t", str(running_pki.pki.root_cert), "--format", "json"]
    runner = CliRunner()
    plain = json.loads(runner.invoke(cli_app, base).stdout)["signatures"][0]["revocation"]
    assert plain["not_checked_reason"] == "host_not_allowed"
    added = runner.invoke(cli_app, [*base, "--fetch-host", running_pki.pki.service_host])
    assert json.loads(added.stdout)["signatures"][0]["revocation"]["outcome"] == "passed"
    assert runner.invoke(cli_app, [*base, "--fetch-host", "http://x/"]).exit_code == 2


def test_non_http_revocation_url_is_reported_as_scheme_not_allowed(
    running_pki: RunningPki, listener: LoopbackServer
) -> None:
    p12 = issue_extra_leaf(
        running_pki.pki,
        "ssrf_ldap",
        issuer="issuing_ca",
        serial=0x5201,
        crl_url=f"ldap://{listener.host}/cn=crl",
    )
    pdf = sign(make_pdf(), running_pki, p12)
    sig = _api_verify(_settings(running_pki.pki, listener.host), pdf)["signatures"][0]
    assert listener.connections == 0
    assert sig["revocation"]["not_checked_reason"] == "scheme_not_allowed"
