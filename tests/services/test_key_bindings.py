"""Signing keys bound to accounts by an admin (issue 11; docs/security.md, "Signing keys bound to
accounts"): the console page and ``hub keys bind``, the role rules, the audit rows with
before/after, the effective principals the signing API checks, and the audit of the configured
keys at start.

A live hub with the console and the signing API on loopback, two PKCS#12 keys of the real test
PKI: ``lanh-ntl`` (personal, nobody configured) and ``so-nnmt`` (the seal, ``test-clerk``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from hub.api.app import CORE_ROUTE_MODULES
from hub.auth.keys import ApiKeyService
from hub.config import load_settings
from hub.db.models import AuditEntry
from hub.db.session import Database
from hub.db.signing_tables import SigningKeyBinding
from hub.services.key_bindings import CONFIG_ACTION, BoundGrants, record_config_snapshot
from hub.simulators.pki import RunningPki
from signing.facade import KeyGrant
from signing.samples import sample_pdf
from signing.settings import KeyPurpose, Pkcs12KeySettings
from tests.accounts.support import FAST
from tests.api.livehub import LiveHub, live_hub
from tests.cli.test_cli_commands import clean_env, run
from tests.console.support import add_account, browser, console_of, csrf, login

PAGE = "/console/admin/signing-keys"
DOCUMENTS = "/api/v1/signing/documents"
PASSWORD_ENV = "HUB_TEST_BINDING_P12"


def signing_config(pki: RunningPki, officer_principals: list[str] | None = None) -> dict[str, Any]:
    p = pki.pki
    return {
        "trust_anchor_paths": [str(path) for path in p.trusted_anchor_files],
        "revocation_fetch": {"allowed_hosts": [p.service_host]},
        "tsa_url": pki.tsa_url,
        "keys": {
            "lanh-ntl": {
                "kind": "pkcs12",
                "purpose": "personal",
                "principals": officer_principals or [],
                "path": str(p.officer_p12),
                "password_env": PASSWORD_ENV,
            },
            "so-nnmt": {
                "kind": "pkcs12",
                "purpose": "seal",
                "principals": ["test-clerk"],
                "path": str(p.agency_p12),
                "password_env": PASSWORD_ENV,
            },
        },
    }


@pytest.fixture
def key_hub(
    database_url: str, tmp_path: Path, pki: RunningPki, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveHub]:
    monkeypatch.setenv(PASSWORD_ENV, pki.pki.p12_password)
    with live_hub(
        database_url,
        tmp_path / "data",
        route_modules=(*CORE_ROUTE_MODULES, "hub.api.routes.signing"),
        console={**FAST, "secure_cookies": False},
        signing=signing_config(pki),
    ) as hub:
        add_account(hub, "root", "admin")
        add_account(hub, "lan", "officer")
        add_account(hub, "thu", "clerk")
        add_account(hub, "kt", "technician")
        add_account(hub, "nghi", "officer")
        console_of(hub).accounts.disable("nghi", actor="tests")
        yield hub


def key_hub_path(hub: LiveHub) -> Path:
    spec = hub.settings.signing.keys["lanh-ntl"]
    assert isinstance(spec, Pkcs12KeySettings)
    return spec.path


def audit_rows(db: Database, prefix: str) -> list[AuditEntry]:
    with db.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id)
            )
        )


def bound(db: Database) -> set[tuple[str, str]]:
    with db.sessions() as session:
        rows = session.execute(select(SigningKeyBinding.key_id, SigningKeyBinding.principal)).all()
        return {(key_id, principal) for key_id, principal in rows}


def post(client: httpx.Client, action: str, key_id: str, principal: str) -> httpx.Response:
    token = csrf(client.get(PAGE))
    return client.post(
        f"{PAGE}/{action}", data={"csrf_token": token, "key_id": key_id, "principal": principal}
    )


def sign(token: str, hub: LiveHub) -> httpx.Response:
    with httpx.Client(
        base_url=hub.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        return client.post(
            DOCUMENTS,
            files={"file": ("qd.pdf", sample_pdf("QD 7"), "application/pdf")},
            data={"key_id": "lanh-ntl", "options": json.dumps({"level": "B-B"})},
        )


def test_admin_binds_and_unbinds_in_the_console_and_the_signing_api_follows(key_hub: LiveHub) -> None:
    hub = key_hub
    lan_app = ApiKeyService(hub.db).create("lan-app", "officer", actor="tests", account="lan").token
    assert sign(lan_app, hub).status_code == 403  # nobody is configured on the personal key

    with browser(hub) as admin:
        assert login(admin, "root").status_code == 303
        page = admin.get(PAGE)
        assert page.status_code == 200
        assert "lanh-ntl" in page.text
        assert "so-nnmt" in page.text
        assert "test-clerk" in page.text  # the configured principal, marked as such
        assert "Tệp cấu hình" in page.text
        assert "Nguyễn Thị Lấp Lánh" in page.text  # the officer's certificate subject
        assert "password" not in page.text.lower()
        assert str(key_hub_path(hub)) not in page.text
        home = admin.get("/console/")
        assert PAGE in home.text

        done = post(admin, "bind", "lanh-ntl", "user:lan")
        assert done.status_code == 200, done.text
        assert "Đã gán khóa" in done.text
        assert ("lanh-ntl", "user:lan") in bound(hub.db)
        # the desk and result signing of this process read the same grants, refreshed at once
        grants = hub.app.state.services.signing.grants
        assert isinstance(grants, BoundGrants)
        assert "user:lan" in grants["lanh-ntl"].principals

        signed = sign(lan_app, hub)
        assert signed.status_code == 200, signed.text
        assert signed.content.startswith(b"%PDF")

        # refusals: nothing stored, a clear status
        assert post(admin, "bind", "so-nnmt", "user:lan").status_code == 422  # the seal, to an officer
        assert post(admin, "bind", "lanh-ntl", "user:thu").status_code == 422  # a personal key, to a clerk
        assert post(admin, "bind", "lanh-ntl", "user:ghost").status_code == 404
        assert post(admin, "bind", "lanh-ntl", "user:nghi").status_code == 422  # disabled
        assert post(admin, "bind", "nope", "user:lan").status_code == 404
        assert post(admin, "bind", "lanh-ntl", "user:lan").status_code == 409
        assert post(admin, "unbind", "so-nnmt", "test-clerk").status_code == 422  # configured: edit the file
        assert bound(hub.db) == {("lanh-ntl", "user:lan")}

        gone = post(admin, "unbind", "lanh-ntl", "user:lan")
        assert gone.status_code == 200, gone.text
        assert bound(hub.db) == set()
        assert "user:lan" not in grants["lanh-ntl"].principals

    refused = sign(lan_app, hub)
    assert refused.status_code == 403, refused.text

    rows = audit_rows(hub.db, "signing_key.")
    assert [(r.action, r.actor, r.target) for r in rows] == [
        ("signing_key.bind", "user:root", "signing_key:lanh-ntl"),
        ("signing_key.unbind", "user:root", "signing_key:lanh-ntl"),
    ]
    assert (rows[0].before, rows[0].after) == ({"principals": []}, {"principals": ["user:lan"]})
    assert (rows[1].before, rows[1].after) == ({"principals": ["user:lan"]}, {"principals": []})
    assert rows[0].details == {"key_id": "lanh-ntl", "purpose": "personal", "principal": "user:lan"}
    outcomes = [(r.actor, r.details["outcome"]) for r in audit_rows(hub.db, "signing.documents")]
    assert outcomes == [("lan-app", "refused"), ("lan-app", "signed"), ("lan-app", "refused")]

    # the start recorded the configured keys once (no secret, no path)
    (start,) = audit_rows(hub.db, CONFIG_ACTION)
    assert start.actor == "system:start"
    assert start.before is None
    assert start.after is not None
    keys = start.after["keys"]
    assert keys["so-nnmt"]["principals"] == ["test-clerk"]
    assert keys["lanh-ntl"]["purpose"] == "personal"
    assert len(keys["lanh-ntl"]["certificate_sha256"]) == 64
    assert "path" not in json.dumps(start.after)


def test_only_admins_open_the_page_and_officer_keys_bind_only_officers(key_hub: LiveHub) -> None:
    hub = key_hub
    for username in ("kt", "lan", "thu"):
        with browser(hub) as client:
            assert login(client, username).status_code == 303
            assert client.get(PAGE).status_code == 403
            assert (
                client.post(f"{PAGE}/bind", data={"key_id": "lanh-ntl", "principal": "user:lan"}).status_code
                == 403
            )
    # API keys: the role of the key decides
    keys = ApiKeyService(hub.db)
    keys.create("clerk-app", "clerk", actor="tests")
    with browser(hub) as admin:
        assert login(admin, "root").status_code == 303
        assert post(admin, "bind", "lanh-ntl", "clerk-app").status_code == 422
        assert post(admin, "bind", "lanh-ntl", "no-such-key").status_code == 404
        assert post(admin, "bind", "so-nnmt", "clerk-app").status_code == 200
        without_token = admin.post(f"{PAGE}/bind", data={"key_id": "lanh-ntl", "principal": "user:lan"})
        assert without_token.status_code == 403  # CSRF
    assert bound(hub.db) == {("so-nnmt", "clerk-app")}
    assert [r.action for r in audit_rows(hub.db, "signing_key.")] == ["signing_key.bind"]


def test_hub_keys_bind_unbind_and_bindings(
    database_url: str, tmp_path: Path, pki: RunningPki, db: Database
) -> None:
    from hub.accounts.service import AccountService
    from tests.accounts.support import PASSWORD, console_settings

    accounts = AccountService(db, console_settings())
    accounts.create("lan", "Nguyễn Thị Lan", PASSWORD, ["officer"], actor="tests")
    accounts.create("thu", "Trần Văn Thu", PASSWORD, ["clerk"], actor="tests")
    p = pki.pki
    config = tmp_path / "hub.toml"
    config.write_text(
        f"""
[signing.keys.lanh-ntl]
kind = "pkcs12"
purpose = "personal"
principals = []
path = "{p.officer_p12}"
password_env = "{PASSWORD_ENV}"
""",
        "utf-8",
    )
    env = clean_env(
        HUB_DATABASE_URL=database_url,
        HUB_DATA_DIR=str(tmp_path / "data"),
        HUB_CONFIG_FILE=str(config),
        **{PASSWORD_ENV: p.p12_password},
        USER="duc",
    )
    ok = run(["keys", "bind", "lanh-ntl", "user:lan"], env, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "bound 'user:lan' to 'lanh-ntl'" in ok.stdout
    clerk = run(["keys", "bind", "lanh-ntl", "user:thu"], env, tmp_path)
    assert clerk.returncode == 1
    assert "may be bound only to a 'officer'" in clerk.stderr
    unknown = run(["keys", "bind", "nope", "user:lan"], env, tmp_path)
    assert unknown.returncode == 1
    assert "no signing key 'nope'" in unknown.stderr
    ghost = run(["keys", "bind", "lanh-ntl", "user:ghost"], env, tmp_path)
    assert ghost.returncode == 1
    assert "no account 'ghost'" in ghost.stderr

    listed = run(["keys", "bindings"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "user:lan" in listed.stdout
    assert "admin" in listed.stdout
    assert "cli:duc" in listed.stdout
    assert "Nguyễn Thị Lấp Lánh" in listed.stdout

    gone = run(["keys", "unbind", "lanh-ntl", "user:lan"], env, tmp_path)
    assert gone.returncode == 0, gone.stderr
    again = run(["keys", "unbind", "lanh-ntl", "user:lan"], env, tmp_path)
    assert again.returncode == 1
    assert "is not bound" in again.stderr

    assert bound(db) == set()
    rows = audit_rows(db, "signing_key.")
    assert [(r.action, r.actor, r.before, r.after) for r in rows] == [
        ("signing_key.bind", "cli:duc", {"principals": []}, {"principals": ["user:lan"]}),
        ("signing_key.unbind", "cli:duc", {"principals": ["user:lan"]}, {"principals": []}),
    ]


def test_a_change_of_the_configured_keys_is_audited_at_start(
    db: Database, tmp_path: Path, pki: RunningPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, pki.pki.p12_password)

    def settings(principals: list[str] | None = None, purpose: str = "seal") -> Any:
        config = signing_config(pki, principals)
        config["keys"]["so-nnmt"]["purpose"] = purpose
        return load_settings(database_url="sqlite://", data_dir=tmp_path, signing=config)

    assert record_config_snapshot(db, load_settings(database_url="sqlite://", data_dir=tmp_path)) is False
    assert record_config_snapshot(db, settings()) is True  # the first snapshot
    assert record_config_snapshot(db, settings()) is False  # unchanged: no row
    assert record_config_snapshot(db, settings(["user:lan"])) is True
    assert record_config_snapshot(db, settings(["user:lan"], purpose="personal")) is True
    rows = audit_rows(db, CONFIG_ACTION)
    assert len(rows) == 3
    first, principals, purpose = rows
    assert first.before is None
    assert first.details["first"] is True
    assert principals.before == first.after
    assert principals.before is not None
    assert principals.after is not None
    assert principals.before["keys"]["lanh-ntl"]["principals"] == []
    assert principals.after["keys"]["lanh-ntl"]["principals"] == ["user:lan"]
    assert purpose.before is not None
    assert purpose.after is not None
    assert (purpose.before["keys"]["so-nnmt"]["purpose"], purpose.after["keys"]["so-nnmt"]["purpose"]) == (
        "seal",
        "personal",
    )
    fingerprints = {key["certificate_sha256"] for key in purpose.after["keys"].values()}
    assert len(fingerprints) == 2
    assert None not in fingerprints


def test_processes_starting_together_audit_a_configuration_once(
    db: Database, tmp_path: Path, pki: RunningPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, pki.pki.p12_password)
    configured = load_settings(database_url="sqlite://", data_dir=tmp_path, signing=signing_config(pki))
    starters = 6
    barrier = threading.Barrier(starters)

    def start() -> bool:
        barrier.wait()
        return record_config_snapshot(db, configured)

    with ThreadPoolExecutor(starters) as pool:
        written = list(pool.map(lambda _: start(), range(starters)))
    assert written.count(True) == 1
    assert len(audit_rows(db, CONFIG_ACTION)) == 1


def test_bindings_made_elsewhere_reach_a_process_within_its_propagation_time(db: Database) -> None:
    now = [0.0]
    grants = BoundGrants(
        {"lanh-ntl": KeyGrant(KeyPurpose.PERSONAL, frozenset({"a"}))}, db, max_age=5.0, clock=lambda: now[0]
    )
    assert grants["lanh-ntl"].principals == {"a"}
    with db.transaction() as session:  # as another process (the CLI) would
        session.add(SigningKeyBinding(key_id="lanh-ntl", principal="user:lan", bound_by="cli:x"))
        session.add(SigningKeyBinding(key_id="gone-key", principal="user:lan", bound_by="cli:x"))
    now[0] = 4.9
    assert grants["lanh-ntl"].principals == {"a"}  # the copy is still fresh
    now[0] = 5.0
    assert grants["lanh-ntl"].principals == {"a", "user:lan"}
    assert set(grants) == {"lanh-ntl"}  # a binding of a key no longer configured grants nothing
    with db.transaction() as session:
        session.execute(delete(SigningKeyBinding))
    grants.refresh()  # what the signing API does before each signature
    assert grants["lanh-ntl"].principals == {"a"}
