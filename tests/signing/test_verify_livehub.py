"""Verification through the real hub (started by the runtime as ``hub serve`` does, real API keys
and database, settings-driven trust anchors) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub import runtime
from hub.api.app import CORE_ROUTE_MODULES
from hub.auth.keys import ApiKeyService
from hub.simulators.pki import RunningPki
from tests.api.livehub import BOOTSTRAP, bind_loopback, hub_settings
from tests.signing.verify_helpers import make_pdf, sign


@pytest.fixture
def live(database_url: str, tmp_path: Path, running_pki: RunningPki) -> Iterator[tuple[str, dict[str, str]]]:
    sock = bind_loopback()
    port = sock.getsockname()[1]
    pki = running_pki.pki
    settings = hub_settings(
        database_url,
        tmp_path / "data",
        port,
        signing={
            "trust_anchor_paths": [str(pki.root_cert), str(pki.issuing_ca_cert)],
            "revocation_policy": "warn",
        },
    )
    with runtime.run_in_thread(
        settings,
        worker=False,
        sock=sock,
        bootstrap_token=BOOTSTRAP,
        route_modules=(*CORE_ROUTE_MODULES, "hub.api.routes.verification"),
        access_log=False,
    ) as hub:
        keys = ApiKeyService(hub.db)
        tokens = {role: keys.create(f"v-{role}", role, actor="tests").token for role in ("officer", "source")}
        yield f"http://127.0.0.1:{port}", tokens


def test_officer_verifies_through_the_real_app(
    live: tuple[str, dict[str, str]], running_pki: RunningPki
) -> None:
    base_url, tokens = live
    pdf = sign(make_pdf(), running_pki, running_pki.pki.officer_p12, timestamp=True)
    headers = {"Authorization": f"Bearer {tokens['officer']}"}
    r = httpx.post(
        base_url + "/api/v1/verification",
        files={"file": ("qd.pdf", pdf, "application/pdf")},
        headers=headers,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verdict"] == "valid"
    assert body["policy"]["revocation_mode"] == "soft"
    assert any("RootCA chuyên dùng Chính phủ G2 (TEST)" in a for a in body["policy"]["trust_anchors"])


def test_roles_and_body_limit_through_the_real_app(live: tuple[str, dict[str, str]]) -> None:
    base_url, tokens = live
    url = base_url + "/api/v1/verification"
    pdf = make_pdf()
    anonymous = httpx.post(url, content=pdf, headers={"content-type": "application/pdf"}, timeout=30)
    assert anonymous.status_code == 401
    wrong_role = httpx.post(
        url,
        content=pdf,
        headers={"content-type": "application/pdf", "Authorization": f"Bearer {tokens['source']}"},
        timeout=30,
    )
    assert wrong_role.status_code == 403
    big = httpx.post(
        url,
        content=b"%PDF-1.7\n" + b"0" * (200 * 1024),
        headers={"content-type": "application/pdf", "Authorization": f"Bearer {tokens['officer']}"},
        timeout=30,
    )
    assert big.status_code == 413
    unsigned = httpx.post(
        url,
        content=pdf,
        headers={"content-type": "application/pdf", "Authorization": f"Bearer {tokens['officer']}"},
        timeout=30,
    )
    assert unsigned.status_code == 422
    assert "unsigned_pdf" in unsigned.text
