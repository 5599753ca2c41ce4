"""Result papers signed twice (officer B-T, agency seal B-LTA), stored and attached for delivery.

Real parts only: the throwaway Government-shaped PKI with its OCSP/CRL/TSA on loopback, PKCS#12
keys configured through ``[signing.keys]`` (passwords from an environment mapping), the hub's
file store and intake service on SQLite and PostgreSQL, and the hub's own verifier.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.config import Settings
from hub.db.models import OutboxMessage, PaperState, ResultPaperRow, StoredFile
from hub.db.session import Database
from hub.services.intake import IntakeService
from hub.services.result_files import store_and_attach
from hub.services.result_papers import ResultPapers
from hub.services.results import ResultSigningService
from hub.services.signing_keys import build_signing_facade
from hub.simulators.pki import RunningPki
from hub.storage.files import FileStore, StoredFileInfo
from schemas.changes import DossierUpsert
from schemas.errors import CertificateRejectedError, ConflictError, InvalidInputError, NotFoundError
from signing.samples import sample_pdf
from signing.verification import PadesLevel, Verdict, VerificationPolicy, verify_pdf
from tests.rowcounts import row_counts
from tests.sample_dossier import CODE, make_dossier
from tests.services.results_support import CLERK, OFFICER, OTHER, environ, signing_settings


class World:
    def __init__(self, db: Database, settings: Settings, env: dict[str, str]) -> None:
        self.db = db
        self.settings = settings
        self.intake = IntakeService(db, settings)
        self.files = FileStore(
            db, settings.data_dir / "files", public_base_url="http://127.0.0.1:8080", max_bytes=10**7
        )
        self.facade = build_signing_facade(settings, env)
        service = ResultSigningService.from_settings(settings, self.facade, self.files, self.intake, db)
        assert service is not None
        self.service = service

    def counts(self) -> tuple[int, int]:
        files, messages = row_counts(self.db, StoredFile, OutboxMessage)
        return files, messages


@pytest.fixture
def world(db: Database, pki: RunningPki, images: dict[str, Path], tmp_path: Path) -> World:
    w = World(db, signing_settings(pki, images, tmp_path), environ(pki))
    w.intake.upsert_dossier(DossierUpsert(dossier=make_dossier(), version=1), actor="src")
    return w


def upload(world: World, code: str | None = CODE, data: bytes | None = None) -> str:
    stored = world.files.save(
        data or sample_pdf("GIAY CHUNG NHAN 12/GCN-SNNMT"),
        filename="giay-chung-nhan.pdf",
        media_type="application/pdf",
        dossier_code=code,
    )
    return stored.id


def test_signs_twice_stores_and_attaches_for_delivery(world: World, pki: RunningPki) -> None:
    file_id = upload(world)
    files_before, messages_before = world.counts()

    approved = world.service.sign_personal(OFFICER, CODE, file_id)
    assert world.counts() == (files_before + 1, messages_before)  # stored, not attached yet
    assert world.intake.get_dossier(CODE).results == []
    signed = world.service.issue_and_attach(
        CLERK, CODE, approved.file_id, name="Giấy chứng nhận", result_code="GCN-0001"
    )

    # stored: a new file whose bytes are the signed PDF, served at the hub's download URL
    info, path = world.files.get(signed.file_id)
    data = path.read_bytes()
    assert info.filename == "giay-chung-nhan.signed.pdf"
    assert info.dossier_code == CODE
    assert signed.download_url == f"http://127.0.0.1:8080/files/{signed.file_id}"
    assert hashlib.sha256(data).hexdigest() == signed.sha256 == info.sha256
    assert world.counts()[0] == files_before + 2

    # attached: DanhSachGiayToKetQua carries the URL and the hash, and a sync message is queued
    dossier = world.intake.get_dossier(CODE)
    assert [r.model_dump(mode="json") for r in dossier.results] == [signed.result.model_dump(mode="json")]
    result = dossier.results[0]
    assert str(result.download_url) == signed.download_url
    assert result.sha256 == signed.sha256
    assert result.signed is True
    assert result.result_code == "GCN-0001"
    assert world.counts()[1] == messages_before + 1
    with world.db.sessions() as session:
        last = session.scalars(select(OutboxMessage).order_by(OutboxMessage.seq.desc())).first()
    assert last is not None
    assert last.payload["dossier"]["results"][0]["download_url"] == signed.download_url

    # two signatures in Decree 30 order, checked by the hub's verifier
    assert [s.field_name for s in (approved.signature, *signed.signatures)] == ["Sig_personal", "Sig_agency"]
    assert [s.level.value for s in (approved.signature, *signed.signatures)] == ["B-T", "B-LTA"]
    policy = VerificationPolicy.from_paths(
        list(pki.pki.trusted_anchor_files), fetch_settings=pki.pki.fetch_settings()
    )
    report = verify_pdf(data, policy, file_name=info.filename)
    assert report.verdict is Verdict.VALID, report.reasons
    assert report.verdict_vi == "hợp lệ"
    assert report.signature_count == 2
    officer, agency = report.signatures
    assert officer.signer_name == "Nguyễn Thị Lấp Lánh"
    assert officer.is_certification
    assert officer.docmdp_permission == 2
    assert officer.has_signature_timestamp  # B-T when signed; the later DSS/time-stamp extend it
    assert agency.signer_name == "Sở Nông nghiệp và Môi trường tỉnh Ninh Bình"
    assert agency.pades_level is PadesLevel.B_LTA
    assert report.document_timestamp_count == 1

    # the seal widget overlaps the personal signature's left side (Appendix I, 8a)
    reader = PdfFileReader(io.BytesIO(data))
    rects = {s.field_name: [float(v) for v in s.sig_field["/Rect"]] for s in reader.embedded_signatures}
    personal, seal = rects["Sig_personal"], rects["Sig_agency"]
    assert seal[0] < personal[0] < seal[2] < personal[2]


def test_revoked_officer_stores_and_attaches_nothing(
    db: Database, pki: RunningPki, images: dict[str, Path], tmp_path: Path
) -> None:
    world = World(db, signing_settings(pki, images, tmp_path, officer="revoked"), environ(pki))
    world.intake.upsert_dossier(DossierUpsert(dossier=make_dossier(), version=1), actor="src")
    file_id = upload(world)
    before = world.counts()
    revision = world.intake.delivery_state(CODE)

    with pytest.raises(CertificateRejectedError) as caught:
        world.service.sign_personal(OFFICER, CODE, file_id)

    error = caught.value
    assert error.details["stage"] == "officer"
    assert error.details["reason"] == "revoked"
    assert error.details["dossier_code"] == CODE
    assert CODE in error.message
    assert "officer's signature" in error.message
    assert "thu hồi" in error.message_vi
    assert "người có thẩm quyền" in error.message_vi
    assert world.counts() == before  # no stored file, no outbound message
    assert world.intake.get_dossier(CODE).results == []
    assert world.intake.delivery_state(CODE) == revision


def test_refused_agency_signature_keeps_the_half_signed_paper_nowhere(
    db: Database, pki: RunningPki, images: dict[str, Path], tmp_path: Path
) -> None:
    settings = signing_settings(pki, images, tmp_path)
    settings.signing.keys["so-nnmt"].path = pki.pki.expired_p12  # type: ignore[union-attr]
    world = World(db, settings, environ(pki))
    world.intake.upsert_dossier(DossierUpsert(dossier=make_dossier(), version=1), actor="src")
    approved = world.service.sign_personal(OFFICER, CODE, upload(world))
    before = world.counts()

    with pytest.raises(CertificateRejectedError) as caught:
        world.service.issue_and_attach(CLERK, CODE, approved.file_id, name="Giấy chứng nhận")

    assert caught.value.details["stage"] == "agency"
    assert "con dấu" in caught.value.message_vi
    assert world.counts() == before
    assert world.intake.get_dossier(CODE).results == []


def test_unknown_dossier_and_foreign_file_are_refused_before_signing(world: World) -> None:
    world.intake.upsert_dossier(DossierUpsert(dossier=make_dossier(OTHER), version=1), actor="src")
    foreign = upload(world, OTHER)
    before = world.counts()
    with pytest.raises(NotFoundError):
        world.service.sign_personal(OFFICER, "000.00.18.H42-251125-0099", foreign)
    with pytest.raises(InvalidInputError) as caught:
        world.service.sign_personal(OFFICER, CODE, foreign)
    assert "thuộc hồ sơ" in caught.value.message_vi
    with pytest.raises(InvalidInputError):
        world.service.seal_and_attach(CLERK, CODE, foreign, name="GCN")
    with pytest.raises(NotFoundError):
        world.service.sign_personal(OFFICER, CODE, "A" * 32)
    assert world.counts() == before


def test_broken_pdf_is_refused_without_output(world: World) -> None:
    file_id = upload(world, data=b"%PDF-1.7\n this is not a pdf \n%%EOF\n")
    before = world.counts()
    with pytest.raises(InvalidInputError) as caught:
        world.service.sign_personal(OFFICER, CODE, file_id)
    assert caught.value.details["stage"] == "officer"
    assert world.counts() == before
    assert world.intake.get_dossier(CODE).results == []


def test_signing_the_same_draft_twice_is_refused_without_a_second_copy(world: World) -> None:
    file_id = upload(world)
    approved = world.service.sign_personal(OFFICER, CODE, file_id)
    first = world.service.issue_and_attach(CLERK, CODE, approved.file_id, name="Giấy chứng nhận")
    assert first.result.id == f"KQ-{approved.file_id}"
    before = world.counts()

    with pytest.raises(ConflictError) as caught:
        world.service.issue_and_attach(CLERK, CODE, approved.file_id, name="Giấy chứng nhận")

    assert "đã được ký số và đính kèm" in caught.value.message_vi
    assert caught.value.details["download_url"] == first.download_url
    assert world.counts() == before
    assert len(world.intake.get_dossier(CODE).results) == 1


def test_an_uploaded_draft_and_its_attachment_commit_together(world: World) -> None:
    """The draft row of an uploaded unsigned PDF is written in the attachment's transaction
    (docs/signing.md §14.2): when it fails, the dossier keeps no attachment, the outbox no
    message and the store no file; when it succeeds, the draft waits for its officer."""
    papers = ResultPapers(world.db)
    hook = papers.upload_hook(
        CODE, "Giấy chứng nhận", media_type="application/pdf", signed=False, signer=None
    )
    assert hook is not None
    assert papers.upload_hook(CODE, "Ảnh", media_type="image/png", signed=False, signer=None) is None

    def failing(session: Session, stored: StoredFileInfo) -> None:
        hook(session, stored)
        raise RuntimeError("the draft row could not be written")

    before = world.counts()
    with pytest.raises(RuntimeError):
        store_and_attach(
            world.files, world.intake, CODE, sample_pdf("GIAY CHUNG NHAN 13/GCN-SNNMT"),
            filename="gcn.pdf", media_type="application/pdf", name="Giấy chứng nhận", actor="src",
            also=failing,
        )  # fmt: skip
    assert world.counts() == before
    assert world.intake.get_dossier(CODE).results == []
    assert row_counts(world.db, ResultPaperRow) == (0,)

    attached = store_and_attach(
        world.files, world.intake, CODE, sample_pdf("GIAY CHUNG NHAN 13/GCN-SNNMT"),
        filename="gcn.pdf", media_type="application/pdf", name="Giấy chứng nhận", actor="src",
        also=hook,
    )  # fmt: skip
    with world.db.sessions() as session:
        row = session.scalar(select(ResultPaperRow))
    assert row is not None
    assert (row.file_id, row.state) == (attached.stored.id, PaperState.DRAFT.value)
