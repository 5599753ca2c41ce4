"""Hardened authentication (docs/security.md §2): a strong bootstrap token that retires once an
admin key exists, throttled failed authentication, and no revoking of the last admin key."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.auth.keys import ApiKeyService
from hub.auth.throttle import FailedAuthThrottle
from hub.config import load_settings
from hub.db.models import ApiKey, ApiRole, AuditEntry
from schemas.errors import ConfigurationError, ConflictError, TooManyRequestsError
from tests.api.livehub import BOOTSTRAP, LiveHub, dossier_json, live_hub

CREATE = "/api/v1/dossiers"
KEYS = "/api/v1/keys"
BAD_TOKEN = "hub_aaaaaaaa_" + "x" * 43


@pytest.fixture
def fresh_hub(database_url: str, tmp_path: Path) -> Iterator[LiveHub]:
    """A hub with no admin key yet (the state the bootstrap token is for)."""
    with live_hub(database_url, tmp_path / "data", roles=("source",)) as running:
        yield running


def _bootstrap_client(hub: LiveHub):  # type: ignore[no-untyped-def]
    return hub.client(headers={"Authorization": f"Bearer {BOOTSTRAP}"})


def test_bootstrap_token_works_until_an_admin_key_exists(fresh_hub: LiveHub) -> None:
    with _bootstrap_client(fresh_hub) as client:
        assert client.post(CREATE, json={"dossier": dossier_json()}).status_code == 201
        created = client.post(KEYS, json={"name": "first-admin", "role": "admin"})
        assert created.status_code == 201
        # From now on the bootstrap token is an unknown token, in this process and any other.
        refused = client.get(KEYS)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthenticated"
    assert ApiKeyService(fresh_hub.db, bootstrap_token=BOOTSTRAP).authenticate(BOOTSTRAP) is None
    with fresh_hub.client(headers={"Authorization": f"Bearer {created.json()['token']}"}) as admin:
        assert admin.get(KEYS).status_code == 200


def test_an_admin_key_made_elsewhere_retires_the_bootstrap_token(fresh_hub: LiveHub) -> None:
    with _bootstrap_client(fresh_hub) as client:
        assert client.get(KEYS).status_code == 200
        ApiKeyService(fresh_hub.db).create("cli-admin", "admin", actor="hub keys create")
        assert client.get(KEYS).status_code == 401


@pytest.mark.parametrize("token", ["x", "short-but-not-32-characters", "a" * 40, "ab" * 20])
def test_weak_bootstrap_token_is_refused_at_start_and_at_use(token: str, fresh_hub: LiveHub) -> None:
    with pytest.raises(ConfigurationError, match="bootstrap_admin_token"):
        load_settings(bootstrap_admin_token=token)
    with pytest.raises(ConfigurationError, match="bootstrap_admin_token"):
        ApiKeyService(fresh_hub.db, bootstrap_token=token)


def test_hub_serve_exits_with_a_configuration_error_for_a_weak_bootstrap_token(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HUB_")},
        "HUB_BOOTSTRAP_ADMIN_TOKEN": "weak-token-value",
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_API__PORT": "0",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "hub", "serve"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "configuration error" in done.stderr
    assert "bootstrap_admin_token must have at least 32 characters" in done.stderr
    assert "weak-token-value" not in done.stderr  # the secret is never echoed


def test_failed_authentication_is_throttled_per_address(database_url: str, tmp_path: Path) -> None:
    with live_hub(
        database_url,
        tmp_path / "data",
        api={"auth_failures_per_minute": 3},
        lookup={"sms_shared_secret": "gateway-secret"},
    ) as hub:
        with hub.client(headers={"Authorization": f"Bearer {BAD_TOKEN}"}) as bad:
            assert [bad.get(KEYS).status_code for _ in range(2)] == [401, 401]
        with hub.client(headers={"X-Gateway-Secret": "guess"}) as gateway:
            sms = gateway.post("/api/v1/sms/inbound", json={"src": "0912345678", "msgbody": "HS x"})
            assert sms.status_code == 403  # the third failure: a wrong gateway secret counts too
        with hub.client("admin") as admin:
            throttled = admin.get(KEYS)  # even a valid key: no oracle while throttled
        assert throttled.status_code == 429
        assert throttled.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        with hub.client() as anonymous:
            assert anonymous.get("/healthz").status_code == 200  # public routes stay open
        with hub.db.sessions() as session:
            audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "auth.throttled")).all()
        assert len(audited) == 1
        assert audited[0].details["client"] == "127.0.0.1"
        assert audited[0].details["last_failure"] == "wrong X-Gateway-Secret"


def test_throttle_counts_each_address_on_its_own() -> None:
    throttle = FailedAuthThrottle(2)
    assert throttle.failed("10.0.0.1") is False
    assert throttle.failed("10.0.0.1") is True  # used up: the caller logs and audits it once
    with pytest.raises(TooManyRequestsError) as raised:
        throttle.check("10.0.0.1")
    assert raised.value.retry_after is not None
    assert 0 < raised.value.retry_after <= 60
    throttle.check("10.0.0.2")
    FailedAuthThrottle(0).check("10.0.0.1")  # 0 disables


def test_the_last_admin_key_cannot_be_revoked(hub: LiveHub) -> None:
    with hub.client("admin") as admin:
        refused = admin.delete(f"{KEYS}/test-admin")
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert "last active admin key" in error["message"]
        assert error["message_vi"]
        second = admin.post(KEYS, json={"name": "second-admin", "role": "admin"}).json()["token"]
        assert admin.delete(f"{KEYS}/test-admin").status_code == 200
    with hub.client(headers={"Authorization": f"Bearer {second}"}) as admin:
        assert admin.delete(f"{KEYS}/second-admin").status_code == 409
        assert admin.delete(f"{KEYS}/test-source").status_code == 200  # other roles: as before
        assert admin.get(KEYS).status_code == 200


def test_two_admins_revoking_each_other_at_once_leave_one(hub: LiveHub) -> None:
    keys = ApiKeyService(hub.db)
    keys.create("admin-a", "admin", actor="tests")
    keys.revoke("test-admin", actor="tests")
    keys.create("admin-b", "admin", actor="tests")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def revoke(name: str, actor: str) -> None:
        barrier.wait()
        try:
            ApiKeyService(hub.db).revoke(name, actor=actor)
            outcomes[name] = "revoked"
        except ConflictError:
            outcomes[name] = "conflict"

    threads = [
        threading.Thread(target=revoke, args=("admin-a", "admin-b")),
        threading.Thread(target=revoke, args=("admin-b", "admin-a")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()) == ["conflict", "revoked"]
    with hub.db.sessions() as session:
        active = session.scalars(
            select(ApiKey.name).where(ApiKey.role == ApiRole.ADMIN.value, ApiKey.revoked_at.is_(None))
        ).all()
    assert len(active) == 1
