"""A control slip and a tracking book signed with the agency key on request (docs/reports.md
§7.4): only the clerk on ``[signing] result_agency_key``; the hub's verifier accepts the result;
every attempt is in the audit log as ``signing.records``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from hub.db.models import AuditEntry
from hub.services.signing_keys import policy_from_settings
from hub.simulators.pki import RunningPki
from signing.verification import Verdict, verify_pdf
from tests.api.livehub import live_hub
from tests.reports.test_records import _named, _text
from tests.reports.test_report_sql import _store
from tests.services.results_support import signing_settings
from tests.services.test_results_api import signing_env  # noqa: F401  (fixture)


@pytest.mark.usefixtures("signing_env")
def test_clerk_signs_the_slip_and_the_book(
    database_url: str, pki: RunningPki, images: dict[str, Path], tmp_path: Path
) -> None:
    settings = signing_settings(pki, images, tmp_path)
    subject = _named()
    url = f"/api/v1/dossiers/{subject.code}/control-slip.pdf"
    with live_hub(database_url, tmp_path / "data", signing=settings.signing.model_dump(mode="json")) as hub:
        _store(hub.db, [subject])
        with hub.client("officer") as officer:  # the officer does not hold the seal
            refused = officer.get(url, params={"sign": "true"})
        with hub.client("clerk") as clerk:
            signed = clerk.get(url, params={"sign": "true"})
            book = clerk.get("/api/v1/reports/tracking-book", params={"period": "2025-03", "sign": "true"})
        with hub.db.sessions() as session:
            rows = session.execute(
                select(AuditEntry.action, AuditEntry.actor, AuditEntry.details).where(
                    AuditEntry.action == "signing.records"
                )
            ).all()
    assert refused.status_code == 403, refused.text
    assert signed.status_code == 200, signed.text
    assert book.status_code == 200, book.text
    policy = policy_from_settings(settings.signing)
    for data in (signed.content, book.content):
        report = verify_pdf(data, policy)
        assert report.signature_count == 1
        assert report.verdict is Verdict.VALID, report
    assert "PHIẾU KIỂM SOÁT QUÁ TRÌNH GIẢI QUYẾT HỒ SƠ" in _text(signed.content)
    outcomes = sorted((r.actor, r.details["outcome"]) for r in rows)
    assert outcomes == [("test-clerk", "signed"), ("test-clerk", "signed"), ("test-officer", "refused")]
    assert {r.details["dossier_code"] for r in rows if r.actor == "test-officer"} == {subject.code}
