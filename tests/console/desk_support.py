"""A live hub with server-held keys bound to console accounts, for the signing-desk tests.

The keys (test PKI, PKCS#12): ``lanh-ntl`` (personal, ``user:officer``), ``pho-gd`` (personal,
``user:officer2``: another officer's key) and ``so-nnmt`` (the agency seal, ``user:clerk``);
``[signing.issuance]`` numbers as ``NN/GCN-SNNMT``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hub.simulators.pki import RunningPki, serve_test_pki
from signing.samples import sample_pdf, write_sample_images
from tests.accounts.support import FAST
from tests.api.livehub import LiveHub, dossier_json, live_hub
from tests.console.support import add_account

CODE = "000.00.18.H42-251125-0001"
PASSWORD_ENV = "HUB_TEST_DESK_P12"
ISSUANCE = {"agency_abbreviation": "SNNMT", "place": "Ninh Bình", "document_type": "GCN"}


def _key(purpose: str, account: str, path: Path, image: Path | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": "pkcs12",
        "purpose": purpose,
        "principals": [f"user:{account}"],
        "path": str(path),
        "password_env": PASSWORD_ENV,
    }
    return entry if image is None else {**entry, "image_path": str(image)}


def desk_signing(pki: RunningPki, images: dict[str, Path]) -> dict[str, Any]:
    """``[signing]`` with the three keys bound to console accounts."""
    p = pki.pki
    return {
        "trust_anchor_paths": [str(path) for path in p.trusted_anchor_files],
        "revocation_fetch": {"allowed_hosts": [p.service_host]},
        "tsa_url": pki.tsa_url,
        "tsa_timeout_seconds": 20,
        "keys": {
            "lanh-ntl": _key("personal", "officer", p.officer_p12, images["officer"]),
            "pho-gd": _key("personal", "officer2", p.officer_ecdsa_p12, images["officer"]),
            "so-nnmt": _key("seal", "clerk", p.agency_p12, images["agency"]),
        },
        "result_officer_key": "lanh-ntl",
        "result_agency_key": "so-nnmt",
        "issuance": ISSUANCE,
    }


def desk_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPki]:
    with serve_test_pki(tmp_path_factory.mktemp("pki")) as running:
        yield running


def desk_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample_images(tmp_path_factory.mktemp("images"))


# The signing-desk tests' fixtures (made available to tests/console by its conftest.py).


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPki]:
    """The test PKI (CAs, OCSP, CRL, TSA on loopback), one per test module."""
    yield from desk_pki(tmp_path_factory)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The signature and seal images of the desk's keys."""
    return desk_images(tmp_path_factory)


@contextmanager
def desk_hub(
    database_url: str,
    data_dir: Path,
    pki: RunningPki,
    images: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    **console: Any,
) -> Iterator[LiveHub]:
    """The hub with the desk's keys and one console account per role (officer, officer2,
    clerk, tech, admin)."""
    monkeypatch.setenv(PASSWORD_ENV, pki.pki.p12_password)
    with live_hub(
        database_url,
        data_dir,
        console={**FAST, "secure_cookies": False, **console},
        signing=desk_signing(pki, images),
        api={"max_body_bytes": 4 * 1024 * 1024},
    ) as hub:
        for username, role in (
            ("officer", "officer"),
            ("officer2", "officer"),
            ("clerk", "clerk"),
            ("tech", "technician"),
            ("admin", "admin"),
        ):
            add_account(hub, username, role)
        yield hub


@pytest.fixture
def hub(
    database_url: str,
    tmp_path: Path,
    pki: RunningPki,
    images: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[LiveHub]:
    """A fresh :func:`desk_hub` for each test."""
    with desk_hub(database_url, tmp_path / "data", pki, images, monkeypatch) as running:
        yield running


def upload_draft(
    hub: LiveHub, title: str = "GIAY CHUNG NHAN", *, code: str = CODE, signer: str | None = None
) -> str:
    """The dossier (created once) and an unsigned draft result uploaded by the source system
    (assigned to officer ``signer`` when given)."""
    with hub.client("source") as source:
        if source.get(f"/api/v1/dossiers/{code}").status_code == 404:
            created = source.post("/api/v1/dossiers", json={"dossier": dossier_json(code)})
            assert created.status_code == 201, created.text
        draft = source.post(
            f"/api/v1/dossiers/{code}/results/upload",
            files={"file": (f"{title.lower().replace(' ', '-')}.pdf", sample_pdf(title), "application/pdf")},
            data={"name": "Giấy chứng nhận an toàn thực phẩm", **({"signer": signer} if signer else {})},
        )
        assert draft.status_code == 201, draft.text
    file_id: str = draft.json()["file_id"]
    return file_id
