"""Issuance in Decree 30/2020 order: officer signs, the register numbers and dates, the clerk seals.

Real parts: the test PKI with OCSP/CRL/TSA on loopback, PKCS#12 keys from ``[signing.keys]``,
the hub's file store, intake and document register on SQLite and PostgreSQL, the hub's
verifier. The clock is injected only to cross a year boundary.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.db.models import AuditEntry, PaperState, RegisterState
from hub.db.session import Database
from hub.services.intake import IntakeService
from hub.services.issuance import DocumentRegister, IssuanceSpec
from hub.services.result_papers import ResultPapers
from hub.services.results import ResultSigningService
from hub.services.signing_keys import build_signing_facade
from hub.simulators.pki import RunningPki
from hub.storage.files import FileStore
from schemas.changes import DossierUpsert
from schemas.errors import (
    CertificateRejectedError,
    FeatureNotConfiguredError,
    InvalidInputError,
    SigningError,
)
from schemas.timefmt import VN_TZ
from signing.issuance import DATE_FIELD, NUMBER_FIELD, number_place_values
from signing.samples import sample_pdf
from signing.verification import Verdict, VerificationPolicy, verify_pdf
from tests.sample_dossier import CODE, make_dossier
from tests.services.results_support import CLERK, OFFICER, environ, signing_settings

AGENCY = "000.00.18.H42"
SPEC = IssuanceSpec(agency_code=AGENCY, agency_abbreviation="SNNMT", document_type="GCN", place="Ninh Bình")


class Clock:
    """A settable clock (Vietnam time) for the register."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self, db: Database, pki: RunningPki, images: dict[str, Path], tmp_path: Path, **extra: Any):
        settings = signing_settings(pki, images, tmp_path, **extra)
        self.db = db
        self.clock = Clock(datetime(2026, 12, 6, 9, 30, tzinfo=VN_TZ))
        self.register = DocumentRegister(db, clock=self.clock)
        self.intake = IntakeService(db, settings)
        self.files = FileStore(
            db, settings.data_dir / "files", public_base_url="http://127.0.0.1:8080", max_bytes=10**7
        )
        self.facade = build_signing_facade(settings, environ(pki))
        service = ResultSigningService.from_settings(
            settings, self.facade, self.files, self.intake, db, register=self.register
        )
        assert service is not None
        self.service = service
        self.policy = VerificationPolicy.from_paths(list(pki.pki.trusted_anchor_files))
        self.intake.upsert_dossier(DossierUpsert(dossier=make_dossier(), version=1), actor="src")

    def approved(self, title: str = "GIAY CHUNG NHAN") -> str:
        """A draft the officer has signed (the hub adds the number and date places first)."""
        draft = self.files.save(
            sample_pdf(title), filename="gcn.pdf", media_type="application/pdf", dossier_code=CODE
        )
        return self.service.sign_personal(OFFICER, CODE, draft.id).file_id

    def audit(self, action: str) -> list[dict[str, object]]:
        with self.db.sessions() as session:
            return list(
                session.scalars(
                    select(AuditEntry.details).where(AuditEntry.action == action).order_by(AuditEntry.id)
                )
            )


@pytest.fixture
def world(db: Database, pki: RunningPki, images: dict[str, Path], tmp_path: Path) -> World:
    return World(db, pki, images, tmp_path)


def test_issue_numbers_dates_then_seals_in_that_order(world: World) -> None:
    approved = world.approved()
    _info, path = world.files.get(approved)
    assert number_place_values(path.read_bytes()) == {NUMBER_FIELD: None, DATE_FIELD: None}

    issued = world.service.issue_and_attach(CLERK, CODE, approved, name="Giấy chứng nhận")

    assert issued.document_number.symbol == "01/GCN-SNNMT"
    assert issued.document_number.date_line == "Ninh Bình, ngày 06 tháng 12 năm 2026"
    _info, path = world.files.get(issued.file_id)
    data = path.read_bytes()
    assert number_place_values(data) == {
        NUMBER_FIELD: "Số: 01/GCN-SNNMT",
        DATE_FIELD: "Ninh Bình, ngày 06 tháng 12 năm 2026",
    }
    report = verify_pdf(data, world.policy)
    assert report.verdict is Verdict.VALID, report.reasons
    officer, agency = report.signatures
    assert officer.is_certification
    assert officer.docmdp_permission == 2
    assert officer.modifications.permitted is True
    assert officer.modifications.filled_fields == [DATE_FIELD, NUMBER_FIELD]  # filled after her
    assert "form_fields_filled" in {r.code for r in officer.reasons}
    assert agency.modifications.filled_fields == []  # ...and before the seal
    assert world.intake.get_dossier(CODE).results[0].signed is True

    (line,) = world.register.lines(AGENCY, 2026)
    assert (line.number, line.symbol, line.state) == (1, "01/GCN-SNNMT", RegisterState.ISSUED)
    assert (line.output_file_id, line.output_sha256) == (issued.file_id, issued.sha256)
    assert (line.actor, line.dossier_code) == (CLERK.name, CODE)
    steps = [(d["outcome"], d.get("document_number")) for d in world.audit("signing.results.issue")]
    assert steps == [("numbered", "01/GCN-SNNMT"), ("signed", "01/GCN-SNNMT")]


def test_seal_before_the_number_is_refused(world: World) -> None:
    approved = world.approved()
    with pytest.raises(InvalidInputError) as caught:
        world.service.seal_and_attach(CLERK, CODE, approved, name="Giấy chứng nhận")
    assert caught.value.details["reason"] == "document_number_missing"
    assert world.intake.get_dossier(CODE).results == []
    assert world.register.lines(AGENCY, 2026) == []
    (row,) = world.audit("signing.results.seal")
    assert row["outcome"] == "refused"


def test_refusals_before_the_number_take_none(world: World) -> None:
    unsigned = world.files.save(
        sample_pdf(), filename="d.pdf", media_type="application/pdf", dossier_code=CODE
    )
    with pytest.raises(InvalidInputError) as caught:
        world.service.issue_and_attach(CLERK, CODE, unsigned.id, name="GCN")
    assert caught.value.details["reason"] == "seal_requires_officer_signature"
    issued = world.service.issue_and_attach(CLERK, CODE, world.approved(), name="GCN")
    with pytest.raises(InvalidInputError) as caught:  # a numbered document is not numbered again
        world.service.issue_and_attach(CLERK, CODE, issued.file_id, name="GCN", result_id="KQ-2")
    assert caught.value.details["reason"] == "already_numbered"
    assert [line.number for line in world.register.lines(AGENCY, 2026)] == [1]


def test_a_failed_seal_voids_its_number_which_is_never_reused(
    db: Database, pki: RunningPki, images: dict[str, Path], tmp_path: Path
) -> None:
    world = World(db, pki, images, tmp_path)
    approved = world.approved()
    config = world.facade.service.config
    tsa, config.tsa = config.tsa, None  # the B-LTA seal cannot get its time-stamp
    with pytest.raises(SigningError) as caught:
        world.service.issue_and_attach(CLERK, CODE, approved, name="GCN")
    assert caught.value.details["stage"] == "agency"
    assert world.intake.get_dossier(CODE).results == []

    config.tsa = tsa
    issued = world.service.issue_and_attach(CLERK, CODE, approved, name="GCN")

    void, used = world.register.lines(AGENCY, 2026)
    assert (void.number, void.state) == (1, RegisterState.VOID)
    assert void.void_reason
    assert void.output_file_id is None
    assert (used.number, used.state, used.output_file_id) == (2, RegisterState.ISSUED, issued.file_id)
    assert issued.document_number.symbol == "02/GCN-SNNMT"
    outcomes = [d["outcome"] for d in world.audit("signing.results.issue")]
    assert outcomes == ["numbered", "failed", "voided", "numbered", "signed"]


def test_revoked_seal_key_voids_the_number(
    db: Database, pki: RunningPki, images: dict[str, Path], tmp_path: Path
) -> None:
    world = World(db, pki, images, tmp_path)
    approved = world.approved()
    settings = signing_settings(pki, images, tmp_path)
    settings.signing.keys["so-nnmt"].path = pki.pki.revoked_p12  # type: ignore[union-attr]
    revoked = ResultSigningService.from_settings(
        settings,
        build_signing_facade(settings, environ(pki)),
        world.files,
        world.intake,
        db,
        register=world.register,
    )
    assert revoked is not None
    with pytest.raises(CertificateRejectedError):
        revoked.issue_and_attach(CLERK, CODE, approved, name="GCN")
    assert [(line.number, line.state) for line in world.register.lines(AGENCY, 2026)] == [
        (1, RegisterState.VOID)
    ]
    # the paper is not voided with its number: it waits for the clerk again (docs/signing.md §14.2)
    papers = ResultPapers(db)
    assert papers.approved(approved).state is PaperState.APPROVED
    assert [p.approved_file_id for p in papers.waiting_for_clerk().items] == [approved]


def test_parallel_issues_get_distinct_consecutive_numbers(world: World) -> None:
    approved = [world.approved(f"GCN {n}") for n in range(4)]
    symbols: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def issue(file_id: str) -> None:
        try:
            done = world.service.issue_and_attach(CLERK, CODE, file_id, name="GCN")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            return
        with lock:
            symbols.append(done.document_number.symbol)

    threads = [threading.Thread(target=issue, args=(file_id,)) for file_id in approved]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(symbols) == ["01/GCN-SNNMT", "02/GCN-SNNMT", "03/GCN-SNNMT", "04/GCN-SNNMT"]
    lines = world.register.lines(AGENCY, 2026)
    assert [(line.number, line.state) for line in lines] == [(n, RegisterState.ISSUED) for n in range(1, 5)]
    assert len({line.output_file_id for line in lines}) == 4


def test_register_is_per_agency_and_year_and_safe_under_concurrency(db: Database) -> None:
    clock = Clock(datetime(2026, 12, 31, 23, 59, tzinfo=VN_TZ))
    register = DocumentRegister(db, clock=clock)
    numbers: list[int] = []
    lock = threading.Lock()

    def reserve() -> None:
        for _ in range(8):
            taken = register.reserve(SPEC, actor="clerk", source_sha256="0" * 64)
            with lock:
                numbers.append(taken.number)

    threads = [threading.Thread(target=reserve) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(1, 49))
    assert len(register.lines(AGENCY, 2026)) == 48

    other = IssuanceSpec(
        agency_code="000.00.19.H42", agency_abbreviation="STP", document_type="QĐ", place="Ninh Bình"
    )
    assert register.reserve(other, actor="clerk", source_sha256="0" * 64).symbol == "01/QĐ-STP"

    clock.now = datetime(2027, 1, 1, 0, 1, tzinfo=VN_TZ)  # 1 January: numbering restarts
    first = register.reserve(SPEC, actor="clerk", source_sha256="0" * 64)
    assert (first.number, first.symbol, first.issued_on.isoformat()) == (1, "01/GCN-SNNMT", "2027-01-01")
    assert first.date_line == "Ninh Bình, ngày 01 tháng 01 năm 2027"
    assert register.reserve(SPEC, actor="clerk", source_sha256="0" * 64).number == 2
    assert len(register.lines(AGENCY, 2026)) == 48  # last year's register is closed, not renumbered


def test_issue_without_numbering_configured_is_refused(
    db: Database, pki: RunningPki, images: dict[str, Path], tmp_path: Path
) -> None:
    world = World(db, pki, images, tmp_path, issuance=None)
    with pytest.raises(FeatureNotConfiguredError):
        world.service.issue_and_attach(CLERK, CODE, world.approved(), name="GCN")
