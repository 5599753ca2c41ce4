"""Batch signing: per-document outcomes, progress, nothing half-written, worker processes,
concurrent time-stamping with a shared time-stamper."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from hub.simulators.pki import RunningPki
from schemas.errors import CertificateRejectedError
from signing.keys import Pkcs12KeySource
from signing.models import BatchItemResult, SignatureLevel, SignOptions
from signing.samples import write_sample_pdfs
from signing.signer_service import SigningService

KeyFactory = Callable[..., Pkcs12KeySource]


def _signed_ok(path: Path) -> bool:
    reader = PdfFileReader(io.BytesIO(path.read_bytes()))
    return len(reader.embedded_signatures) == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_batch_outcomes_and_progress(
    workers: int, signing_service: SigningService, p12_key: KeyFactory, tmp_path: Path
) -> None:
    inputs = write_sample_pdfs(tmp_path / "in", 8)
    inputs[3].write_bytes(b"%PDF-1.7 broken")
    inputs.append(tmp_path / "in" / "missing.pdf")
    seen: list[tuple[str, int, int]] = []

    def progress(item: BatchItemResult, done: int, total: int) -> None:
        seen.append((item.input_path.name, done, total))

    out_dir = tmp_path / "out"
    result = signing_service.sign_batch(
        inputs,
        out_dir,
        p12_key("officer"),
        SignOptions(level=SignatureLevel.B_T),
        workers=workers,
        progress=progress,
    )
    assert [i.input_path for i in result.items] == inputs
    assert result.succeeded == 7
    assert result.failed == 2
    broken, missing = result.items[3], result.items[8]
    assert broken.error_code == "invalid_pdf"
    assert broken.error_vi
    assert missing.error_code == "invalid_input"
    assert broken.output_path is None
    # progress: one call per document, counts reach the total
    assert sorted(name for name, _, _ in seen) == sorted(p.name for p in inputs)
    assert max(done for _, done, _ in seen) == 9
    assert {total for _, _, total in seen} == {9}
    # nothing half-written: exactly the successful outputs, no temp files
    produced = sorted(p.name for p in out_dir.iterdir())
    assert produced == sorted(i.output_path.name for i in result.items if i.ok and i.output_path)
    assert not (out_dir / "qd-003.pdf").exists()
    for item in result.items:
        if item.ok:
            assert item.output_path is not None
            assert _signed_ok(item.output_path)
    assert result.certificate is not None
    assert result.certificate.revocation_status == "good"


def test_batch_refuses_revoked_certificate_before_touching_files(
    signing_service: SigningService, p12_key: KeyFactory, tmp_path: Path
) -> None:
    inputs = write_sample_pdfs(tmp_path / "in", 3)
    with pytest.raises(CertificateRejectedError):
        signing_service.sign_batch(
            inputs, tmp_path / "out", p12_key("revoked"), SignOptions(level=SignatureLevel.B_B)
        )
    assert not (tmp_path / "out").exists()


def test_batch_duplicate_names(signing_service: SigningService, p12_key: KeyFactory, tmp_path: Path) -> None:
    a = write_sample_pdfs(tmp_path / "a", 1)
    b = write_sample_pdfs(tmp_path / "b", 1)
    result = signing_service.sign_batch(
        a + b, tmp_path / "out", p12_key("officer"), SignOptions(level=SignatureLevel.B_B)
    )
    assert [i.ok for i in result.items] == [True, False]
    assert "duplicate" in (result.items[1].error or "")


def test_batch_shares_one_slow_tsa_concurrently(
    signing_service: SigningService, p12_key: KeyFactory, tmp_path: Path, pki_services: RunningPki
) -> None:
    """With TSA latency, documents are time-stamped concurrently and all succeed (speed is
    measured in benchmarks/bench_signing.py, not asserted here)."""
    pki_services.set_tsa_delay(0.3)
    before = pki_services.counters["tsa"]
    inputs = write_sample_pdfs(tmp_path / "in", 12)
    result = signing_service.sign_batch(
        inputs, tmp_path / "out", p12_key("officer_ecdsa"), SignOptions(level=SignatureLevel.B_T), workers=1
    )
    assert result.failed == 0
    assert pki_services.counters["tsa"] - before == 12  # one token per document, no dry runs


def test_batch_tsa_down_fails_documents_not_batch(
    signing_service: SigningService, p12_key: KeyFactory, tmp_path: Path, pki_services: RunningPki
) -> None:
    pki_services.set_tsa_available(False)
    inputs = write_sample_pdfs(tmp_path / "in", 2)
    result = signing_service.sign_batch(
        inputs, tmp_path / "out", p12_key("officer"), SignOptions(level=SignatureLevel.B_T)
    )
    assert result.failed == 2
    assert {i.error_code for i in result.items} == {"tsa_unavailable"}
    assert list((tmp_path / "out").iterdir()) == []


def test_batch_never_overwrites_originals(
    signing_service: SigningService, p12_key: KeyFactory, tmp_path: Path
) -> None:
    inputs = write_sample_pdfs(tmp_path / "in", 2)
    originals = [p.read_bytes() for p in inputs]
    result = signing_service.sign_batch(
        inputs, tmp_path / "in", p12_key("officer"), SignOptions(level=SignatureLevel.B_B)
    )
    assert result.failed == 2
    assert "ghi đè bản gốc" in (result.items[0].error_vi or "")
    assert [p.read_bytes() for p in inputs] == originals


def test_byte_budget_serialises_large_documents() -> None:
    import asyncio

    from signing.signer_service import _ByteBudget

    async def scenario() -> list[str]:
        budget = _ByteBudget(100)
        log: list[str] = []

        async def job(name: str, size: int) -> None:
            held = await budget.acquire(size)
            log.append(f"start {name}")
            await asyncio.sleep(0.01)
            log.append(f"end {name}")
            await budget.release(held)

        await asyncio.gather(job("a", 80), job("b", 80), job("c", 500))
        return log

    log = asyncio.run(scenario())
    # never two 80-byte jobs at once within a 100-byte budget; the oversized one runs alone
    assert log.index("end a") < log.index("start b")
    assert log.index("end b") < log.index("start c")


def test_pool_with_work_stealing_signs_each_document_once(
    signing_service: SigningService, p12_key: KeyFactory, tmp_path: Path
) -> None:
    inputs = write_sample_pdfs(tmp_path / "in", 40)
    done_counts: list[int] = []
    result = signing_service.sign_batch(
        inputs,
        tmp_path / "out",
        p12_key("officer"),
        SignOptions(level=SignatureLevel.B_B),
        workers=3,
        progress=lambda item, done, total: done_counts.append(done),
    )
    assert result.failed == 0
    assert sorted(done_counts) == list(range(1, 41))
    for item in result.items:
        assert item.output_path is not None
        assert _signed_ok(item.output_path)  # exactly one signature: no chunk signed twice


def test_leftovers_of_a_killed_batch_are_removed_and_reported(
    signing_service: SigningService, p12_key: KeyFactory, tmp_path: Path
) -> None:
    """A batch killed with SIGKILL leaves its ``.<name>.<random>.part`` temp files; the next
    batch into the same directory removes them and says so."""
    inputs = write_sample_pdfs(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    leftover = out / ".qd-007.pdf.k3x9q2ab.part"
    leftover.write_bytes(b"%PDF-1.7 half written" * 1000)
    keep = out / "notes.part.txt"
    keep.write_text("not ours")
    result = signing_service.sign_batch(
        inputs, out, p12_key("officer"), SignOptions(level=SignatureLevel.B_B)
    )
    assert result.failed == 0
    assert not leftover.exists()
    assert keep.exists()
    (warning,) = [w for w in result.warnings if w.code == "interrupted_batch_cleaned"]
    assert ".qd-007.pdf.k3x9q2ab.part" in warning.message
    assert "Đã xóa 1 tệp" in warning.message_vi
    assert sorted(p.name for p in out.iterdir()) == ["notes.part.txt", "qd-000.pdf", "qd-001.pdf"]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_get_the_mode_of_the_process_umask(
    signing_service: SigningService, p12_key: KeyFactory, tmp_path: Path, umask: int
) -> None:
    inputs = write_sample_pdfs(tmp_path / "in", 1)
    old = os.umask(umask)
    try:
        signing_service.sign_batch(
            inputs, tmp_path / "out", p12_key("officer"), SignOptions(level=SignatureLevel.B_B)
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out" / "qd-000.pdf").stat().st_mode) == 0o666 & ~umask


def test_batch_builds_the_signed_attribute_template_once(
    signing_service: SigningService, p12_key: KeyFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All documents of a batch start at once; they must share one build of the signer's
    attribute template (each one building it cost ~25 ms of CPU per document: the 100-document
    B-T batch of benchmarks/bench_signing.py took 4.8 s instead of about 2)."""
    from pyhanko.sign.signers import Signer

    built: list[str] = []
    original = Signer.signed_attrs

    async def counting(self: Signer, *args: Any, **kwargs: Any) -> Any:
        built.append(args[1])
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(Signer, "signed_attrs", counting)
    inputs = write_sample_pdfs(tmp_path / "in", 20)
    result = signing_service.sign_batch(
        inputs, tmp_path / "out", p12_key("officer"), SignOptions(level=SignatureLevel.B_T), workers=1
    )
    assert result.failed == 0
    assert built == ["sha256"]
    assert all(_signed_ok(p) for p in (tmp_path / "out").iterdir())
