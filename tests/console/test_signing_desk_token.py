"""The officer signs a draft with her own USB token from the desk: the desk prepares, ``hub
token-sign`` signs on a real SoftHSM2 token (PKCS#11), the desk completes; the clerk then
issues it. Real test PKI, real hub on loopback, SQLite and PostgreSQL."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from hub.audit.log import record
from hub.commands.token_sign import app as token_app
from hub.simulators.pki import RunningPki
from tests.api.livehub import LiveHub
from tests.console.desk_support import CODE, upload_draft
from tests.console.support import browser, csrf, login
from tests.signing.softhsm_support import MODULE, SoftHsm

TOKEN = "desk-token"
PIN = "135790"
TOKEN_ARGS = ["--pkcs11-module", str(MODULE), "--token-label", TOKEN, "--key-label", "officer"]


@pytest.fixture(scope="module")
def token(softhsm: SoftHsm, pki: RunningPki) -> Iterator[None]:
    """A SoftHSM2 token holding the officer's RSA key and certificate (label ``officer``) and,
    as Government tokens carry it, the issuing CA's certificate."""
    softhsm.token(
        TOKEN,
        PIN,
        keys=[(pki.pki.officer_key, "officer", "01")],
        certificates=[
            (pki.pki.officer_cert, "officer", b"\x01"),
            (pki.pki.issuing_ca_cert, "issuing", b"\x10"),
        ],
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HUB_SIGN_SECRET", PIN)
        yield


def _token(*args: str) -> str:
    result = CliRunner().invoke(token_app, list(args), env={"HUB_SIGN_SECRET": PIN, **os.environ})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def _prepare(client: httpx.Client, draft: str, certificate: str) -> httpx.Response:
    page = client.get(f"/console/signing/documents/{draft}")
    return client.post(
        f"/console/signing/documents/{draft}/token",
        data={"certificate": certificate, "csrf_token": csrf(page)},
    )


def test_officer_signs_with_her_token_and_the_clerk_issues_it(hub: LiveHub, token: None) -> None:
    draft = upload_draft(hub)
    certificate = _token("certificate", *TOKEN_ARGS)
    assert certificate.startswith("-----BEGIN CERTIFICATE-----")
    assert certificate.count("-----BEGIN CERTIFICATE-----") == 2  # hers, then the issuing CA's
    with browser(hub) as client:
        assert login(client, "officer").status_code == 303
        prepared = _prepare(client, draft, certificate)
        assert prepared.status_code == 200, prepared.text
        data = re.search(r'<pre class="command" id="data-to-sign">([A-Za-z0-9+/=]+)</pre>', prepared.text)
        action = re.search(r'action="(/console/signing/token/[A-Za-z0-9_-]+/complete)"', prepared.text)
        assert data is not None
        assert action is not None
        signature = _token("sign", *TOKEN_ARGS, "--data-b64", data.group(1)).strip()
        with browser(hub) as other:  # only she may complete her request
            assert login(other, "officer2").status_code == 303
            token_other = csrf(other.get("/console/signing"))
            stolen = other.post(action.group(1), data={"signature": signature, "csrf_token": token_other})
            assert stolen.status_code == 404
        wrong = client.post(
            action.group(1), data={"signature": "bm90IGEgc2lnbmF0dXJl", "csrf_token": csrf(prepared)}
        )
        assert wrong.status_code == 422  # a signature that does not verify is refused
        done = client.post(action.group(1), data={"signature": signature, "csrf_token": csrf(prepared)})
        assert done.status_code == 200, done.text
        assert "external:" in done.text
    with browser(hub) as client:
        assert login(client, "clerk").status_code == 303
        queue = client.get("/console/issuance")
        approved = re.findall(r'href="/console/issuance/documents/([A-Za-z0-9_-]+)', queue.text)
        assert len(approved) == 1
        form = client.get(f"/console/issuance/documents/{approved[0]}")
        issued = client.post(
            f"/console/issuance/documents/{approved[0]}/issue",
            data={"name": "Giấy chứng nhận", "key_id": "so-nnmt", "csrf_token": csrf(form)},
        )
        assert issued.status_code == 200, issued.text
        final = re.findall(r'href="/console/verification/([A-Za-z0-9_-]+)', issued.text)[0]
        report = html.unescape(client.get(f"/console/verification/{final}").text)
    assert re.search(r'id="verdict"[^>]*>Hợp lệ<', report)
    assert "Chữ ký số thứ 2" in report


def test_token_refusals(hub: LiveHub, token: None) -> None:
    draft = upload_draft(hub)
    with browser(hub) as client:
        assert login(client, "officer").status_code == 303
        assert _prepare(client, draft, "not a certificate").status_code == 422
    with browser(hub) as client:  # a clerk cannot prepare the officer's signature
        assert login(client, "clerk").status_code == 303
        token_clerk = csrf(client.get("/console/issuance"))
        refused = client.post(
            f"/console/signing/documents/{draft}/token",
            data={"certificate": _token("certificate", *TOKEN_ARGS), "csrf_token": token_clerk},
        )
        assert refused.status_code == 403
    result = CliRunner().invoke(
        token_app, ["sign", *TOKEN_ARGS, "--data-b64", "%%%"], env={"HUB_SIGN_SECRET": PIN}
    )
    assert result.exit_code == 4
    wrong_pin = CliRunner().invoke(token_app, ["certificate", *TOKEN_ARGS], env={"HUB_SIGN_SECRET": "000000"})
    assert wrong_pin.exit_code == 4
    assert "PIN" in wrong_pin.output


def test_a_request_is_found_however_many_signing_rows_she_wrote_since(hub: LiveHub, token: None) -> None:
    """Step 2 finds her prepared request by its id in the audit log, not among her newest rows
    only (600 later rows of hers: another tab's refused attempts, say)."""
    draft = upload_draft(hub)
    with browser(hub) as client:
        assert login(client, "officer").status_code == 303
        prepared = _prepare(client, draft, _token("certificate", *TOKEN_ARGS))
        assert prepared.status_code == 200, prepared.text
        data = re.search(r'<pre class="command" id="data-to-sign">([A-Za-z0-9+/=]+)</pre>', prepared.text)
        action = re.search(r'action="(/console/signing/token/[A-Za-z0-9_-]+/complete)"', prepared.text)
        assert data is not None
        assert action is not None
        with hub.db.transaction() as session:
            for n in range(600):
                record(
                    session,
                    actor="user:officer",
                    action="signing.results.sign",
                    target=f"dossier:{CODE}",
                    details={"outcome": "refused", "request_id": f"other-{n:04d}", "file_id": draft},
                )
        signature = _token("sign", *TOKEN_ARGS, "--data-b64", data.group(1)).strip()
        done = client.post(action.group(1), data={"signature": signature, "csrf_token": csrf(prepared)})
        assert done.status_code == 200, done.text
        assert "external:" in done.text
