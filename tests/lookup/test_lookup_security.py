"""The public lookup against guessing (docs/security.md): forwarded headers only from trusted
proxies, wrong ID numbers limited per dossier code, the same work for unknown codes, a keyed
owner-ID digest, and the security headers of a public page."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, update
from typer.testing import CliRunner

from hub.api.app import create_app
from hub.cli import build_cli
from hub.config import load_settings
from hub.db.models import DossierRow
from hub.db.session import Database
from hub.lookup.owner_hash import GENERATED_KEY_PATH, OwnerIdHasher
from hub.lookup.service import LookupService
from hub.services.intake import IntakeService
from schemas.changes import DossierUpsert
from schemas.dossier import Owner
from schemas.errors import ConfigurationError, NotFoundError, TooManyRequestsError
from schemas.status import DossierStatus
from tests.api.livehub import LiveHub, dossier_json, live_hub
from tests.lookup.support import many_steps
from tests.sample_dossier import T0, make_dossier

CODE = "000.00.18.H42-251125-0001"
OTHER = "000.00.18.H42-251125-0002"
OWNER_ID = "001099012345"
KEY = "k" * 32


@pytest.fixture
def hub(database_url: str, tmp_path: Path) -> Iterator[LiveHub]:
    with live_hub(database_url, tmp_path / "data") as running:
        with running.client("source") as client:
            assert client.post("/api/v1/dossiers", json={"dossier": dossier_json()}).status_code == 201
        yield running


def guesses(client: Any, count: int, *, rotate: bool, code: str = CODE) -> list[int]:
    """``count`` wrong ID numbers, each with its own ``X-Forwarded-For`` when ``rotate``."""
    statuses = []
    for n in range(count):
        forwarded = f"203.0.113.{n + 1}" if rotate else "203.0.113.250"
        answer = client.get(
            f"/api/v1/lookup/{code}",
            params={"id_number": f"{1000 + n:012d}"},
            headers={"X-Forwarded-For": forwarded},
        )
        statuses.append(answer.status_code)
    return statuses


# --- 1. forwarded headers and limits ----------------------------------------------------------


def test_forwarded_for_from_an_untrusted_peer_does_not_reset_the_limit(
    database_url: str, tmp_path: Path
) -> None:
    lookup = {"rate_limit_per_minute": 3, "failed_attempts_per_code_per_hour": 0}
    with live_hub(database_url, tmp_path / "d", lookup=lookup) as running, running.client() as client:
        statuses = guesses(client, 5, rotate=True)
    assert statuses == [404, 404, 404, 429, 429]


def test_forwarded_for_from_a_trusted_proxy_names_the_client(database_url: str, tmp_path: Path) -> None:
    with (
        live_hub(
            database_url,
            tmp_path / "d",
            api={"trusted_proxies": ["127.0.0.0/8"]},
            lookup={"rate_limit_per_minute": 3, "failed_attempts_per_code_per_hour": 0},
        ) as running,
        running.client() as client,
    ):
        rotating = guesses(client, 5, rotate=True)
        one_client = guesses(client, 4, rotate=False)
    assert rotating == [404] * 5
    assert one_client == [404, 404, 404, 429]


def test_wrong_id_numbers_are_limited_per_code_whatever_the_client(database_url: str, tmp_path: Path) -> None:
    with live_hub(
        database_url,
        tmp_path / "d",
        api={"trusted_proxies": ["127.0.0.1"]},
        lookup={"rate_limit_per_minute": 1000, "failed_attempts_per_code_per_hour": 3},
    ) as running:
        with running.client("source") as client:
            for code in (CODE, OTHER):
                body = {"dossier": dossier_json(code=code)}
                assert client.post("/api/v1/dossiers", json=body).status_code == 201
        with running.client() as client:
            known = guesses(client, 4, rotate=True)
            locked = client.get(f"/api/v1/lookup/{CODE}", params={"id_number": OWNER_ID})
            page = client.get("/tra-cuu", params={"MHS": CODE, "SGT": OWNER_ID})
            unknown = guesses(client, 4, rotate=True, code="000.00.18.H42-251125-0777")
            other = client.get(f"/api/v1/lookup/{OTHER}", params={"id_number": OWNER_ID})
    assert known == [404, 404, 404, 429]
    # even the right number waits: the guesser cannot tell it from the others
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 60 * 50
    assert locked.json()["error"]["code"] == "rate_limited"
    assert page.status_code == 429
    assert int(page.headers["retry-after"]) > 60 * 50
    assert "quá nhiều lần" in page.text
    # unknown codes are limited alike, so a 429 does not reveal that a code exists
    assert unknown == [404, 404, 404, 429]
    assert other.status_code == 200


# --- 2. the same work whatever the outcome ----------------------------------------------------


def test_a_wrong_id_costs_the_same_for_a_big_dossier_as_for_no_dossier(db: Database, tmp_path: Path) -> None:
    """Counted, not timed: the statements a lookup runs and what they return are the same for
    a dossier with 300 steps, an unknown code and a malformed one (benchmarks/bench_lookup.py
    times it)."""
    settings = load_settings(data_dir=tmp_path, lookup={"owner_id_key": KEY})
    dossier = make_dossier(status=DossierStatus.RECEIVED, steps=many_steps(300, T0))
    IntakeService(db, settings).upsert_dossier(DossierUpsert(dossier=dossier), actor="tests")
    service = LookupService(db, settings.lookup, OwnerIdHasher.from_settings(settings))

    def work(code: str) -> list[tuple[str, int, int]]:
        """Each statement run, with the rows it returns and their size in characters."""
        executed: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            executed.append((statement, parameters))

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            with pytest.raises(NotFoundError):
                service.lookup(code, "037099009999")
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        shapes = []
        with db.engine.connect() as connection:
            for statement, parameters in executed:
                if not statement.lstrip().upper().startswith("SELECT"):
                    shapes.append((statement, 0, 0))  # BEGIN (SQLite): the same for every lookup
                    continue
                rows = connection.exec_driver_sql(statement, parameters).all()
                shapes.append((statement, len(rows), sum(len(repr(tuple(row))) for row in rows)))
        return shapes

    known, unknown, malformed = work(dossier.code), work(OTHER), work("no-such-code")
    assert (
        [(s, n) for s, n, _ in known] == [(s, n) for s, n, _ in unknown] == [(s, n) for s, n, _ in malformed]
    )
    selects = [(n, size) for s, n, size in known if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1  # one query, returning one row, whatever the code
    assert selects[0][0] == 1
    assert selects[0][1] < 100  # the digest only, never the dossier's document
    # the right number still finds it
    assert service.lookup(dossier.code, "037099001234").code == dossier.code


# --- 3. the keyed owner-ID digest -------------------------------------------------------------


def stored_digest(db: Database, code: str) -> str | None:
    with db.sessions() as session:
        return session.scalar(select(DossierRow.owner_id_hash).where(DossierRow.code == code))


def test_stored_owner_digest_is_an_hmac_with_the_configured_key(db: Database, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, lookup={"owner_id_key": KEY})
    IntakeService(db, settings).upsert_dossier(DossierUpsert(dossier=make_dossier()), actor="tests")
    stored = stored_digest(db, make_dossier().code)
    assert stored != hashlib.sha256(b"037099001234").hexdigest()  # what a leaked table reversed
    assert stored == hmac.new(KEY.encode(), b"037099001234", hashlib.sha256).hexdigest()
    other_key = load_settings(data_dir=tmp_path, lookup={"owner_id_key": "z" * 32})
    assert OwnerIdHasher.from_settings(other_key).digest("037099001234") != stored
    service = LookupService(db, settings.lookup, OwnerIdHasher.from_settings(settings))
    assert service.lookup(make_dossier().code, " 037099001234 ").code == make_dossier().code


def test_hub_lookup_rehash_rekeys_rows_stored_before_the_key(
    db: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upgrade path: rows stored with plain SHA-256 (or another key) answer "not found"
    until ``hub lookup rehash`` re-keys them from the ID number the dossier holds."""
    settings = load_settings(data_dir=tmp_path, lookup={"owner_id_key": KEY})
    intake = IntakeService(db, settings)
    without_id = make_dossier(code=OTHER).model_copy(update={"owner": Owner(name="Lê Văn Cường")})
    for dossier in (make_dossier(), without_id):
        intake.upsert_dossier(DossierUpsert(dossier=dossier), actor="tests")
    with db.transaction() as session:  # as the hub before this change stored it
        session.execute(
            update(DossierRow)
            .where(DossierRow.code == CODE)
            .values(owner_id_hash=hashlib.sha256(b"037099001234").hexdigest())
        )
    service = LookupService(db, settings.lookup, OwnerIdHasher.from_settings(settings))
    with pytest.raises(NotFoundError):
        service.lookup(CODE, "037099001234")

    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    monkeypatch.setenv("HUB_LOOKUP__OWNER_ID_KEY", KEY)
    monkeypatch.delenv("HUB_CONFIG_FILE", raising=False)
    first = CliRunner().invoke(build_cli(), ["lookup", "rehash"])
    again = CliRunner().invoke(build_cli(), ["lookup", "rehash"])
    assert first.exit_code == 0, first.output
    assert "re-keyed: 1 dossiers" in first.output
    assert "re-keyed: 0 dossiers" in again.output
    assert service.lookup(CODE, "037099001234").code == CODE
    assert stored_digest(db, OTHER) is None


def test_owner_id_key_is_required_with_a_secrets_directory(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    settings = load_settings(data_dir=tmp_path / "data", secrets_dir=secrets)
    with pytest.raises(ConfigurationError, match="hub_lookup__owner_id_key"):
        create_app(settings)
    (secrets / "hub_lookup__owner_id_key").write_text(KEY + "\n", encoding="utf-8")
    from_file = load_settings(data_dir=tmp_path / "data", secrets_dir=secrets)
    assert OwnerIdHasher.from_settings(from_file).digest("1") == OwnerIdHasher(KEY.encode()).digest("1")
    with pytest.raises(ConfigurationError, match="owner_id_key"):
        load_settings(lookup={"owner_id_key": "too short"})


def test_without_a_key_one_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    first = OwnerIdHasher.from_settings(settings).digest(OWNER_ID)
    path = tmp_path / GENERATED_KEY_PATH
    assert path.stat().st_mode & 0o077 == 0
    assert len(path.read_text(encoding="ascii").strip()) >= 32
    assert OwnerIdHasher.from_settings(settings).digest(OWNER_ID) == first
    assert (
        OwnerIdHasher.from_settings(load_settings(data_dir=tmp_path / "elsewhere")).digest(OWNER_ID) != first
    )


def test_a_lookup_with_a_rate_limited_code_is_refused_before_any_work(db: Database, tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, lookup={"owner_id_key": KEY, "failed_attempts_per_code_per_hour": 1}
    )
    service = LookupService(db, settings.lookup, OwnerIdHasher.from_settings(settings))
    with pytest.raises(NotFoundError):
        service.lookup(CODE, "1")
    with pytest.raises(TooManyRequestsError):
        service.lookup(CODE.lower(), "2")  # the same code, however written
    with pytest.raises(NotFoundError):
        service.lookup(OTHER, "2")


# --- 4. security headers ----------------------------------------------------------------------


def test_public_pages_and_the_api_send_security_headers(hub: LiveHub) -> None:
    with hub.client() as client:
        form = client.get("/tra-cuu")
        found = client.get("/tra-cuu", params={"MHS": CODE, "SGT": OWNER_ID})
        missing = client.get("/tra-cuu", params={"MHS": CODE, "SGT": "001099099999"})
        api = client.get(f"/api/v1/lookup/{CODE}", params={"id_number": OWNER_ID})
        health = client.get("/healthz")
        docs = client.get("/api/v1/docs")
    for answer in (form, found, missing, api, health, docs):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    for page in (form, found, missing):
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src" not in policy
        assert "unsafe-inline" not in policy
        assert "<script" not in page.text
        # the page's one inline style is the one the policy allows by its hash
        styles = re.findall(r"<style>(.*?)</style>", page.text, re.S)
        assert len(styles) == 1
        digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
        assert f"style-src 'sha256-{digest}'" in policy
        assert "style=" not in page.text  # no inline style attributes (the hash does not cover them)
        assert "form-action 'self'" in policy
    assert api.headers["content-security-policy"].startswith("default-src 'none'")
    assert docs.status_code == 200
    assert "default-src" not in docs.headers["content-security-policy"]  # Swagger UI loads CDN scripts
