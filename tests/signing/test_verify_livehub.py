"""Verification through the real hub (started by the runtime as ``hub serve`` does, real API keys
and database, settings-driven trust anchors) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.api.app import CORE_ROUTE_MODULES
from hub.simulators.pki import RunningPki
from tests.api.livehub import LiveHub, live_hub
from tests.signing.verify_helpers import make_pdf, sign

URL = "/api/v1/verification"


@pytest.fixture
def live(database_url: str, tmp_path: Path, running_pki: RunningPki) -> Iterator[LiveHub]:
    pki = running_pki.pki
    with live_hub(
        database_url,
        tmp_path / "data",
        route_modules=(*CORE_ROUTE_MODULES, "hub.api.routes.verification"),
        signing={
            "trust_anchor_paths": [str(pki.root_cert), str(pki.issuing_ca_cert)],
            "revocation_fetch": {"allowed_hosts": [pki.service_host]},
            "revocation_policy": "warn",
        },
    ) as hub:
        yield hub


def test_officer_verifies_through_the_real_app(live: LiveHub, running_pki: RunningPki) -> None:
    pdf = sign(make_pdf(), running_pki, running_pki.pki.officer_p12, timestamp=True)
    with live.client("officer", timeout=60) as officer:
        r = officer.post(URL, files={"file": ("qd.pdf", pdf, "application/pdf")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verdict"] == "valid"
    assert body["policy"]["revocation_mode"] == "soft"
    assert any("RootCA chuyên dùng Chính phủ G2 (TEST)" in a for a in body["policy"]["trust_anchors"])


def test_roles_and_body_limit_through_the_real_app(live: LiveHub) -> None:
    pdf = make_pdf()
    pdf_type = {"content-type": "application/pdf"}
    with live.client() as anonymous, live.client("source") as source, live.client("officer") as officer:
        assert anonymous.post(URL, content=pdf, headers=pdf_type).status_code == 401
        assert source.post(URL, content=pdf, headers=pdf_type).status_code == 403
        big = officer.post(URL, content=b"%PDF-1.7\n" + b"0" * (200 * 1024), headers=pdf_type)
        assert big.status_code == 413
        unsigned = officer.post(URL, content=pdf, headers=pdf_type)
    assert unsigned.status_code == 422
    assert "unsigned_pdf" in unsigned.text
