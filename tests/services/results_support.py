"""Settings, principals and key-password environment shared by the result-signing tests (the
sample dossier: :mod:`tests.sample_dossier`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.auth.keys import Principal
from hub.config import Settings, load_settings
from hub.db.models import ApiRole
from hub.services.results import IssuedResult, ResultSigningService
from hub.simulators.pki import RunningPki

OTHER = "000.00.18.H42-251125-0002"
ENV = {"HUB_TEST_OFFICER_P12": "", "HUB_TEST_AGENCY_P12": ""}
#: ``[signing.issuance]``: how issued papers are numbered and dated (docs/signing.md §13).
ISSUANCE = {"agency_abbreviation": "SNNMT", "place": "Ninh Bình", "document_type": "GCN"}
#: The principals listed on the test keys (the live hub's API key names, tests/api/livehub.py).
OFFICER = Principal("test-officer", ApiRole.OFFICER)
CLERK = Principal("test-clerk", ApiRole.CLERK)


def p12_key(principal: Principal, path: Path, password_env: str, image: Path | None = None) -> dict[str, Any]:
    """A ``[signing.keys.*]`` PKCS#12 entry for ``principal``: personal for an officer, a seal
    for a clerk (docs/signing.md §10); its image drawn in the appearance when given."""
    entry: dict[str, Any] = {
        "kind": "pkcs12",
        "purpose": "personal" if principal.role is ApiRole.OFFICER else "seal",
        "principals": [principal.name],
        "path": str(path),
        "password_env": password_env,
    }
    return entry if image is None else {**entry, "image_path": str(image)}


def signing_settings(
    pki: RunningPki, images: dict[str, Path], tmp_path: Path, *, officer: str = "officer", **extra: Any
) -> Settings:
    p = pki.pki
    return load_settings(
        data_dir=tmp_path,
        endpoints={"cong-dvcqg": {"kind": "webhook", "url": "http://127.0.0.1:9/dvcqg"}},
        routing=[{"kinds": ["dossier.sync"], "endpoints": ["cong-dvcqg"]}],
        signing={
            "trust_anchor_paths": [str(path) for path in p.trusted_anchor_files],
            "revocation_fetch": {"allowed_hosts": [p.service_host]},
            "tsa_url": pki.tsa_url,
            "tsa_timeout_seconds": 20,
            "keys": {
                "lanh-ntl": p12_key(
                    OFFICER, getattr(p, f"{officer}_p12"), "HUB_TEST_OFFICER_P12", images["officer"]
                ),
                "so-nnmt": p12_key(CLERK, p.agency_p12, "HUB_TEST_AGENCY_P12", images["agency"]),
            },
            "result_officer_key": "lanh-ntl",
            "result_agency_key": "so-nnmt",
            "issuance": ISSUANCE,
            **extra,
        },
    )


def environ(pki: RunningPki) -> dict[str, str]:
    return dict.fromkeys(ENV, pki.pki.p12_password)


def sign_twice(service: ResultSigningService, code: str, file_id: str, **seal: Any) -> IssuedResult:
    """The officer signs ``file_id``, then the clerk issues it: number and date, seal, attach
    (Decree 30 order)."""
    approved = service.sign_personal(OFFICER, code, file_id)
    seal.setdefault("name", "Giấy chứng nhận")
    return service.issue_and_attach(CLERK, code, approved.file_id, **seal)
