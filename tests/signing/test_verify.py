"""Verification of signed PDFs against the live loopback test PKI (OCSP/CRL/TSA).

Fixtures are signed with pyHanko's own ``PdfSigner`` (tests.signing.verify_helpers), so these tests do
not depend on the hub's signing service. Every verdict is asserted together with the reason
that produced it.
"""

from __future__ import annotations

import dataclasses
import random
import re
import subprocess
import unicodedata
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.signers import PdfTimeStamper
from pyhanko.sign.timestamps import HTTPTimeStamper

from hub.api.errors import http_status_for
from hub.simulators.pki import RunningPki, serve_test_pki
from schemas.errors import InvalidPdfError, PayloadTooLargeError
from signing.trust import TrustStore
from signing.verification import (
    EncryptedPdfError,
    NotPdfError,
    PadesLevel,
    RevocationMode,
    SignatureFormat,
    UnsignedPdfError,
    Verdict,
    VerificationPolicy,
    VerificationReport,
    verify_pdf,
    verify_pdf_file,
)
from signing.verification.model import CheckOutcome, RevocationSource, SignatureReport, SigningTimeSource
from tests.signing.verify_helpers import (
    append_content_change,
    fill_text_field,
    make_pdf,
    make_pdf_with_text_field,
    overwrite_signed_bytes,
    sign,
)


@pytest.fixture(scope="module")
def policy(running_pki: RunningPki) -> VerificationPolicy:
    return VerificationPolicy.from_trust_store(TrustStore.from_test_pki(running_pki.pki))


@pytest.fixture(scope="module")
def base_pdf() -> bytes:
    return make_pdf()


@pytest.fixture(scope="module")
def pkcs7_pdf(running_pki: RunningPki, base_pdf: bytes) -> bytes:
    """What VGCA-style tools produce: adbe.pkcs7.detached, no time-stamp, no LTV data."""
    return sign(base_pdf, running_pki, running_pki.pki.officer_p12, pades=False)


@pytest.fixture(scope="module")
def double_signed(running_pki: RunningPki, base_pdf: bytes) -> bytes:
    """Decree 30: person certifies (DocMDP P=2), then the agency seal overlaps the left third."""
    pki = running_pki.pki
    first = sign(
        base_pdf, running_pki, pki.officer_p12, field="NguoiKy", certify=True, box=(300, 100, 500, 170)
    )
    return sign(first, running_pki, pki.agency_p12, field="CoQuan", box=(240, 80, 370, 210), timestamp=True)


def _codes(report: VerificationReport, index: int = 0) -> set[str]:
    return {r.code for r in report.signatures[index].reasons}


def _refused(pdf: bytes, policy: VerificationPolicy, code: str) -> SignatureReport:
    """The one signature of ``pdf``, after checking the report is INVALID for reason ``code``."""
    report = verify_pdf(pdf, policy)
    assert report.verdict is Verdict.INVALID
    assert code in _codes(report)
    return report.signatures[0]


# --- valid documents -----------------------------------------------------------------------


def test_pkcs7_without_ltv_is_accepted(pkcs7_pdf: bytes, policy: VerificationPolicy) -> None:
    report = verify_pdf(pkcs7_pdf, policy, file_name="qd.pdf")
    assert report.verdict is Verdict.VALID
    assert report.verdict_vi == "hợp lệ"
    sig = report.signatures[0]
    assert sig.signature_format is SignatureFormat.PKCS7
    assert sig.sub_filter == "adbe.pkcs7.detached"
    assert sig.pades_level is PadesLevel.NONE
    assert not sig.long_term_validation_data
    assert {"pkcs7_without_ltv", "claimed_time_only"} <= _codes(report)
    # Circular 15/2025 §2.3.4 fields
    assert sig.issuing_ca == "CA phục vụ các cơ quan Nhà nước G2 (TEST)"
    assert sig.signer_name == "Nguyễn Thị Lấp Lánh"
    assert sig.managing_unit == "Văn phòng Sở, Sở Nông nghiệp và Môi trường tỉnh Ninh Bình"
    assert sig.signing_time_source is SigningTimeSource.CLAIMED
    assert sig.signing_time is not None
    assert sig.signing_time.utcoffset() is not None
    assert sig.signing_time.utcoffset().total_seconds() == 7 * 3600  # type: ignore[union-attr]
    assert sig.integrity.outcome is CheckOutcome.PASSED
    assert sig.valid_at_signing_time.outcome is CheckOutcome.PASSED
    assert sig.certificate_valid_from < sig.signing_time < sig.certificate_valid_to
    assert sig.chain.outcome is CheckOutcome.PASSED
    assert sig.trust_anchor is not None
    assert "RootCA chuyên dùng Chính phủ G2 (TEST)" in sig.trust_anchor
    # OCSP fetched online from the loopback responder
    assert sig.revocation.outcome is CheckOutcome.PASSED
    assert sig.revocation.source is RevocationSource.FETCHED
    assert sig.revocation.ocsp_responses + sig.revocation.crls >= 1
    ocsp = next(e for e in sig.revocation.evidence if e.kind == "ocsp")
    assert ocsp.status == "good"
    assert ocsp.authority == "OCSP G2 (TEST)"
    assert ocsp.issued_at.utcoffset() == sig.signing_time.utcoffset()
    assert sig.modifications.coverage == "entire_file"
    assert report.file_name == "qd.pdf"


@pytest.mark.parametrize(
    ("options", "level"),
    [
        ({}, PadesLevel.B_B),
        ({"timestamp": True}, PadesLevel.B_T),
        ({"timestamp": True, "ltv": True}, PadesLevel.B_LT),
        ({"lta": True}, PadesLevel.B_LTA),
    ],
    ids=["B-B", "B-T", "B-LT", "B-LTA"],
)
def test_pades_level_detection(
    running_pki: RunningPki,
    base_pdf: bytes,
    policy: VerificationPolicy,
    options: dict[str, Any],
    level: PadesLevel,
) -> None:
    pdf = sign(base_pdf, running_pki, running_pki.pki.officer_p12, **options)
    report = verify_pdf(pdf, policy)
    sig = report.signatures[0]
    assert report.verdict is Verdict.VALID, sig.reasons
    assert sig.signature_format is SignatureFormat.PADES
    assert sig.pades_level is level
    if level is not PadesLevel.B_B:
        assert sig.signing_time_source is SigningTimeSource.TIMESTAMP
        assert sig.signature_timestamp is not None
        assert sig.signature_timestamp.tsa_name == "TSA G2 (TEST)"
        assert sig.signature_timestamp.outcome is CheckOutcome.PASSED
    if level in (PadesLevel.B_LT, PadesLevel.B_LTA):
        assert sig.long_term_validation_data
        assert sig.modifications.modification_level == "lta_updates"
        assert sig.modifications.permitted is True
    if level is PadesLevel.B_LTA:
        assert report.document_timestamp_count == 1
        assert report.document_timestamps[0].verdict is Verdict.VALID


def test_b_lt_verifies_offline_from_embedded_revocation_data(
    running_pki: RunningPki, base_pdf: bytes, policy: VerificationPolicy
) -> None:
    pdf = sign(base_pdf, running_pki, running_pki.pki.officer_p12, timestamp=True, ltv=True)
    report = verify_pdf(
        pdf, dataclasses.replace(policy, allow_fetching=False, revocation_mode=RevocationMode.REQUIRE)
    )
    sig = report.signatures[0]
    assert report.verdict is Verdict.VALID, sig.reasons
    assert sig.revocation.source is RevocationSource.EMBEDDED
    assert sig.revocation.outcome is CheckOutcome.PASSED
    assert sig.revocation.evidence
    assert all(e.source is RevocationSource.EMBEDDED for e in sig.revocation.evidence)


def test_ecdsa_signature_is_valid(
    running_pki: RunningPki, base_pdf: bytes, policy: VerificationPolicy
) -> None:
    pdf = sign(base_pdf, running_pki, running_pki.pki.officer_ecdsa_p12, timestamp=True)
    report = verify_pdf(pdf, policy)
    assert report.verdict is Verdict.VALID
    assert report.signatures[0].signer_certificate.public_key_algorithm == "ec"
    assert report.signatures[0].signer_name == "Trần Văn Đức"


def test_rsassa_pss_signature_is_valid(
    running_pki: RunningPki, base_pdf: bytes, policy: VerificationPolicy
) -> None:
    """Circular 15/2025 Annex I names RSASSA-PSS for signing; PKCS#1 v1.5 is accepted too."""
    pdf = sign(base_pdf, running_pki, running_pki.pki.officer_p12, pss=True, timestamp=True)
    report = verify_pdf(pdf, policy)
    assert report.verdict is Verdict.VALID
    assert report.signatures[0].signature_algorithm == "rsassa_pss"


def test_vgca_style_leaf_only_certified_pkcs7(
    running_pki: RunningPki, base_pdf: bytes, policy: VerificationPolicy
) -> None:
    """adbe.pkcs7.detached, only the signer certificate embedded, DocMDP P=2, no LTV: the path
    is completed from the trust store's issuing CA."""
    pdf = sign(base_pdf, running_pki, running_pki.pki.officer_p12, pades=False, leaf_only=True, certify=True)
    offline = dataclasses.replace(policy, allow_fetching=False)
    report = verify_pdf(pdf, offline)
    sig = report.signatures[0]
    assert report.verdict is Verdict.VALID, sig.reasons
    assert sig.is_certification
    assert [c.common_name for c in sig.certificate_chain] == [
        "RootCA chuyên dùng Chính phủ G2 (TEST)",
        "CA phục vụ các cơ quan Nhà nước G2 (TEST)",
        "Nguyễn Thị Lấp Lánh",
    ]
    # offline and nothing embedded: the Circular 15/2025 Annex II warning is shown
    assert "revocation_not_checked" in _codes(report)
    # without the issuing CA in the store and without fetching, no path can be built
    bare = dataclasses.replace(offline, intermediates=())
    assert "untrusted_chain" in _codes(verify_pdf(pdf, bare))


def test_double_signature_certified_then_overlapping_agency_seal(
    double_signed: bytes, policy: VerificationPolicy
) -> None:
    # the two widgets really overlap (seal over the left third of the personal signature)
    reader = PdfFileReader(BytesIO(double_signed))
    rects = {
        str(f["/T"]): [float(v) for v in f["/Rect"]]
        for f in (ref.get_object() for ref in reader.root["/AcroForm"]["/Fields"])
    }
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = rects["NguoiKy"], rects["CoQuan"]
    assert min(ax1, bx1) > max(ax0, bx0)
    assert min(ay1, by1) > max(ay0, by0)
    report = verify_pdf(double_signed, policy)
    assert report.verdict is Verdict.VALID, [s.reasons for s in report.signatures]
    assert report.signature_count == 2
    person, agency = report.signatures
    assert person.field_name == "NguoiKy"
    assert person.is_certification
    assert person.docmdp_permission == 2
    # the agency signature was added later: allowed under P=2, not tampering, despite the
    # overlapping widgets (Decree 30/2020 Appendix I, 8a)
    assert person.modifications.modification_level == "form_filling"
    assert person.modifications.permitted is True
    assert not person.modifications.tampered
    assert "later_changes_permitted" in {r.code for r in person.reasons}
    assert agency.field_name == "CoQuan"
    assert not agency.is_certification
    assert agency.signer_name == "Sở Nông nghiệp và Môi trường tỉnh Ninh Bình"
    assert agency.managing_unit == "Ủy ban nhân dân tỉnh Ninh Bình"
    assert agency.modifications.coverage == "entire_file"


def test_certified_p2_then_document_number_filled_then_agency_signs(
    running_pki: RunningPki, policy: VerificationPolicy
) -> None:
    """Decree 30/2020 Art. 14-15: number and date are filled in after the competent person signs."""
    pki = running_pki.pki
    first = sign(
        make_pdf_with_text_field(),
        running_pki,
        pki.officer_p12,
        field="NguoiKy",
        certify=True,
        box=(300, 100, 500, 170),
    )
    filled = fill_text_field(first, "123/QĐ-SNNMT")
    final = sign(filled, running_pki, pki.agency_p12, field="CoQuan", box=(240, 80, 370, 210))
    report = verify_pdf(final, policy)
    assert report.verdict is Verdict.VALID, [s.reasons for s in report.signatures]
    assert report.signatures[0].modifications.modification_level == "form_filling"
    assert report.signatures[0].docmdp_permission == 2


def test_form_fill_after_no_changes_certification_is_flagged(
    running_pki: RunningPki, policy: VerificationPolicy
) -> None:
    first = sign(
        make_pdf_with_text_field(),
        running_pki,
        running_pki.pki.officer_p12,
        certify=True,
        docmdp=MDPPerm.NO_CHANGES,
    )
    sig = _refused(fill_text_field(first, "123/QĐ-SNNMT"), policy, "modified_after_signing")
    assert sig.docmdp_permission == 1
    assert sig.modifications.permitted is False


# --- tampering -----------------------------------------------------------------------------


def test_incremental_update_changing_page_content_is_flagged(
    pkcs7_pdf: bytes, policy: VerificationPolicy
) -> None:
    sig = _refused(append_content_change(pkcs7_pdf), policy, "modified_after_signing")
    assert sig.verdict_vi == "không hợp lệ"
    modified = next(r for r in sig.reasons if r.code == "modified_after_signing")
    assert modified.message_vi == (
        "Tài liệu đã bị sửa đổi sau khi ký, vượt quá phạm vi được phép "
        "(có thay đổi nội dung hoặc cấu trúc tài liệu)."
    )
    assert sig.modifications.tampered
    assert sig.modifications.modification_level == "other"
    assert sig.integrity.outcome is CheckOutcome.FAILED
    # the cryptographic signature itself is still intact: only the diff analysis catches this
    assert "hash_failure" not in {r.code for r in sig.reasons}


def test_content_change_after_double_signature_invalidates_both(
    double_signed: bytes, policy: VerificationPolicy
) -> None:
    report = verify_pdf(append_content_change(double_signed), policy)
    assert report.verdict is Verdict.INVALID
    assert all(s.modifications.tampered for s in report.signatures)
    assert all(s.verdict is Verdict.INVALID for s in report.signatures)


def test_bytes_overwritten_inside_signed_range_is_hash_failure(
    pkcs7_pdf: bytes, policy: VerificationPolicy
) -> None:
    sig = _refused(overwrite_signed_bytes(pkcs7_pdf), policy, "hash_failure")
    assert sig.ades_indication == "TOTAL-FAILED"
    assert sig.ades_subindication == "HASH_FAILURE"
    assert sig.integrity.outcome is CheckOutcome.FAILED


def _pdfsig(path: Path) -> str:
    proc = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout + proc.stderr


def test_integrity_verdicts_agree_with_poppler_pdfsig(
    pkcs7_pdf: bytes, policy: VerificationPolicy, tmp_path: Path
) -> None:
    good = tmp_path / "good.pdf"
    good.write_bytes(pkcs7_pdf)
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(overwrite_signed_bytes(pkcs7_pdf))
    good_out, bad_out = _pdfsig(good), _pdfsig(bad)
    assert "Signature Validation: Signature is Valid." in good_out
    assert "Signature Validation: Digest Mismatch." in bad_out
    assert verify_pdf(good.read_bytes(), policy).signatures[0].integrity.outcome is CheckOutcome.PASSED
    assert verify_pdf(bad.read_bytes(), policy).signatures[0].integrity.outcome is CheckOutcome.FAILED
    # same signer seen by both tools
    cn = re.search(r"Signer Certificate Common Name: (.+)", good_out)
    assert cn is not None
    assert (
        unicodedata.normalize("NFC", cn.group(1).strip())
        == verify_pdf(pkcs7_pdf, policy).signatures[0].signer_name
    )


def test_long_term_validation_after_signer_certificate_expired(base_pdf: bytes, tmp_path: Path) -> None:
    """Three years on, the officer's 2-year certificate has expired: a bare B-B signature can no
    longer be proven (không xác định), while time-stamped/LTV signatures remain valid because the
    time-stamp proves the signature existed while the certificate was valid (Decree 68/2024
    Art. 31: validity is judged at signing time)."""
    # A PKI of its own: its services cache CRLs, which must not leak into other tests.
    with serve_test_pki(tmp_path / "pki") as own:
        pki = own.pki
        policy = VerificationPolicy.from_trust_store(TrustStore.from_test_pki(pki))
        docs = {
            PadesLevel.B_B: sign(base_pdf, own, pki.officer_p12),
            PadesLevel.B_T: sign(base_pdf, own, pki.officer_p12, timestamp=True),
            PadesLevel.B_LTA: sign(base_pdf, own, pki.officer_p12, lta=True),
        }
        later = datetime.now(UTC) + timedelta(days=3 * 365)
        with freeze_time(later, tick=True):  # also moves the loopback OCSP/CRL/TSA clock
            reports = {level: verify_pdf(pdf, policy) for level, pdf in docs.items()}
    bare = reports[PadesLevel.B_B]
    assert bare.verdict is Verdict.INDETERMINATE
    assert "expired_no_poe" in _codes(bare)
    for level in (PadesLevel.B_T, PadesLevel.B_LTA):
        sig = reports[level].signatures[0]
        assert reports[level].verdict is Verdict.VALID, (level, sig.reasons)
        assert sig.signing_time is not None
        assert sig.signing_time < sig.certificate_valid_to < later
        assert sig.valid_at_signing_time.outcome is CheckOutcome.PASSED


def test_certificate_revoked_after_signing(base_pdf: bytes, tmp_path: Path) -> None:
    """Decree 68/2024 Art. 31: the status at signing time decides. Signed two days ago, revoked
    yesterday: with a time-stamp proving the signing time the signature stays valid; with only
    the signer's claimed time it cannot be decided (không xác định)."""
    with serve_test_pki(tmp_path / "pki") as own:
        pki = own.pki
        policy = VerificationPolicy.from_trust_store(TrustStore.from_test_pki(pki))
        with freeze_time(datetime.now(UTC) - timedelta(days=2), tick=True):
            claimed_only = sign(base_pdf, own, pki.revoked_p12)
            stamped = sign(base_pdf, own, pki.revoked_p12, timestamp=True)
        bare = verify_pdf(claimed_only, policy)
        proven = verify_pdf(stamped, policy)
    assert bare.verdict is Verdict.INDETERMINATE
    assert "revoked_no_poe" in _codes(bare)
    sig = proven.signatures[0]
    assert proven.verdict is Verdict.VALID, sig.reasons
    assert sig.signing_time_source is SigningTimeSource.TIMESTAMP
    assert sig.revocation.revoked_at is not None
    assert sig.signing_time is not None
    assert sig.signing_time < sig.revocation.revoked_at
    assert sig.revocation.outcome is not CheckOutcome.FAILED
    assert sig.valid_at_signing_time.outcome is CheckOutcome.PASSED


# --- certificate problems ------------------------------------------------------------------


@pytest.mark.parametrize("timestamp", [False, True], ids=["B-B", "B-T"])
def test_revoked_signer_is_invalid(
    running_pki: RunningPki, base_pdf: bytes, policy: VerificationPolicy, timestamp: bool
) -> None:
    pdf = sign(base_pdf, running_pki, running_pki.pki.revoked_p12, timestamp=timestamp)
    sig = _refused(pdf, policy, "revoked")
    assert sig.revocation.revoked
    assert sig.revocation.outcome is CheckOutcome.FAILED
    assert sig.revocation.revoked_at is not None
    assert sig.signing_time is not None
    assert sig.revocation.revoked_at < sig.signing_time
    assert any(e.status == "revoked" for e in sig.revocation.evidence)
    assert sig.valid_at_signing_time.outcome is CheckOutcome.FAILED
    if timestamp:
        assert sig.signing_time_source is SigningTimeSource.TIMESTAMP


@pytest.mark.parametrize("timestamp", [False, True], ids=["B-B", "B-T"])
def test_expired_signer_is_invalid(
    running_pki: RunningPki, base_pdf: bytes, policy: VerificationPolicy, timestamp: bool
) -> None:
    pdf = sign(base_pdf, running_pki, running_pki.pki.expired_p12, timestamp=timestamp)
    sig = _refused(pdf, policy, "not_valid_at_signing_time")
    assert sig.valid_at_signing_time.outcome is CheckOutcome.FAILED
    assert sig.signing_time is not None
    assert sig.signing_time > sig.certificate_valid_to
    # EN 319 102-1 §5.1.3: the indication follows the verdict (the hub's rule: the certificate
    # had expired at the signing time), never INDETERMINATE for an invalid signature
    assert sig.ades_indication == "TOTAL-FAILED"
    assert sig.ades_subindication == "EXPIRED"


def test_untrusted_root_is_invalid(
    running_pki: RunningPki, base_pdf: bytes, policy: VerificationPolicy
) -> None:
    sig = _refused(sign(base_pdf, running_pki, running_pki.pki.untrusted_p12), policy, "untrusted_chain")
    assert sig.chain.outcome is CheckOutcome.FAILED
    assert sig.issuing_ca == "Untrusted Root CA (TEST)"


def test_production_anchors_do_not_trust_the_test_pki(pkcs7_pdf: bytes) -> None:
    report = verify_pdf(pkcs7_pdf, VerificationPolicy.production(allow_fetching=False))
    assert report.verdict is Verdict.INVALID
    assert "untrusted_chain" in _codes(report)
    assert any("RootCA chuyên dùng Chính phủ G2" in a for a in report.policy.trust_anchors)


def test_certificate_without_signing_key_usage_is_indeterminate(
    running_pki: RunningPki, base_pdf: bytes, policy: VerificationPolicy
) -> None:
    pdf = sign(base_pdf, running_pki, running_pki.pki.wrong_usage_p12)
    report = verify_pdf(pdf, policy)
    assert report.verdict is Verdict.INDETERMINATE
    assert report.verdict_vi == "không xác định"
    assert "key_usage" in _codes(report)


# --- revocation policy ---------------------------------------------------------------------


def test_revocation_outage_soft_policy_warns(
    pkcs7_pdf: bytes, policy: VerificationPolicy, pki_services: RunningPki
) -> None:
    pki_services.set_revocation_available(False)
    report = verify_pdf(pkcs7_pdf, dataclasses.replace(policy, revocation_mode=RevocationMode.SOFT))
    sig = report.signatures[0]
    assert report.verdict is Verdict.VALID
    assert "revocation_not_checked" in _codes(report)
    warning = next(r for r in sig.reasons if r.code == "revocation_not_checked")
    assert warning.severity == "warning"
    assert warning.message_vi.startswith("Cảnh báo")
    assert sig.revocation.outcome is CheckOutcome.UNKNOWN


def test_revocation_outage_require_policy_is_indeterminate(
    pkcs7_pdf: bytes, policy: VerificationPolicy, pki_services: RunningPki
) -> None:
    pki_services.set_revocation_available(False)
    report = verify_pdf(pkcs7_pdf, dataclasses.replace(policy, revocation_mode=RevocationMode.REQUIRE))
    assert report.verdict is Verdict.INDETERMINATE
    assert "revocation_unavailable" in _codes(report)


# --- bad input -----------------------------------------------------------------------------


def test_non_pdf_is_refused(policy: VerificationPolicy) -> None:
    with pytest.raises(NotPdfError) as exc:
        verify_pdf(b"PK\x03\x04 this is a zip file", policy)
    assert exc.value.code == "not_pdf"
    assert isinstance(exc.value, InvalidPdfError)
    assert http_status_for(exc.value) == 422


@pytest.mark.parametrize(
    "mutilate",
    [
        lambda b: b[: len(b) // 3],
        lambda b: b"%PDF-1.7\n" + b"\x00garbage" * 200,
        lambda b: b.replace(b"/ByteRange", b"/ByteRangX"),
        lambda b: b.replace(b"startxref", b"startxrex"),
    ],
    ids=["truncated", "garbage", "no-byterange", "no-startxref"],
)
def test_broken_pdf_gives_clear_error(pkcs7_pdf: bytes, policy: VerificationPolicy, mutilate: object) -> None:
    data = mutilate(pkcs7_pdf)  # type: ignore[operator]
    with pytest.raises(InvalidPdfError) as exc:
        verify_pdf(data, policy)
    assert exc.value.message
    assert exc.value.message_vi


def test_unsigned_pdf_is_refused(base_pdf: bytes, policy: VerificationPolicy) -> None:
    with pytest.raises(UnsignedPdfError) as exc:
        verify_pdf(base_pdf, policy)
    assert exc.value.message_vi == "Tệp PDF không có chữ ký số nào"


def test_encrypted_pdf_is_refused(pkcs7_pdf: bytes, policy: VerificationPolicy, tmp_path: Path) -> None:
    src, dst = tmp_path / "in.pdf", tmp_path / "enc.pdf"
    src.write_bytes(pkcs7_pdf)
    subprocess.run(
        ["qpdf", "--encrypt", "user", "owner", "256", "--", str(src), str(dst)], check=True, timeout=60
    )
    with pytest.raises(EncryptedPdfError):
        verify_pdf(dst.read_bytes(), policy)


def test_oversized_pdf_is_refused_before_reading(
    pkcs7_pdf: bytes, policy: VerificationPolicy, tmp_path: Path
) -> None:
    small = dataclasses.replace(policy, max_pdf_bytes=1024)
    with pytest.raises(PayloadTooLargeError) as exc:
        verify_pdf(pkcs7_pdf, small)
    assert http_status_for(exc.value) == 413
    path = tmp_path / "big.pdf"
    path.write_bytes(pkcs7_pdf)
    with pytest.raises(PayloadTooLargeError):
        verify_pdf_file(path, small)


def _contents_span(pdf: bytes) -> tuple[int, int]:
    m = re.search(rb"/Contents <([0-9a-fA-F]+)>", pdf)
    assert m is not None
    return m.start(1), m.end(1)


def test_corrupted_signature_value_is_invalid(pkcs7_pdf: bytes, policy: VerificationPolicy) -> None:
    start, end = _contents_span(pkcs7_pdf)
    der_hex_len = len(pkcs7_pdf[start:end].rstrip(b"0"))
    pos = start + der_hex_len - 40  # inside the RSA signature value at the end of the CMS
    flipped = format(int(pkcs7_pdf[pos : pos + 1], 16) ^ 0x1, "x").encode()  # a different hex digit
    report = verify_pdf(pkcs7_pdf[:pos] + flipped + pkcs7_pdf[pos + 1 :], policy)
    assert report.verdict is Verdict.INVALID
    assert "signature_crypto_failure" in _codes(report)
    assert report.signatures[0].integrity.outcome is CheckOutcome.FAILED


def test_unparseable_cms_is_invalid_pdf(pkcs7_pdf: bytes, policy: VerificationPolicy) -> None:
    start, end = _contents_span(pkcs7_pdf)
    with pytest.raises(InvalidPdfError) as exc:
        verify_pdf(pkcs7_pdf[:start] + b"0" * (end - start) + pkcs7_pdf[end:], policy)
    assert exc.value.message_vi.startswith("Tệp PDF bị hỏng")


def test_random_byte_corruption_never_escapes_as_unexpected_error(
    pkcs7_pdf: bytes, policy: VerificationPolicy
) -> None:
    """Seeded mutation run: every outcome is a report or a clear InvalidPdfError (never a 500)."""
    rng = random.Random(20251)
    offline = dataclasses.replace(policy, allow_fetching=False)
    outcomes: set[str] = set()
    messages: list[str] = []
    for _ in range(80):
        data = bytearray(pkcs7_pdf)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            outcomes.add(verify_pdf(bytes(data), offline).verdict.value)
        except InvalidPdfError as exc:
            messages.append(exc.message_vi)
            outcomes.add(exc.code)
    assert outcomes <= {"valid", "invalid", "indeterminate", "invalid_pdf", "unsigned_pdf", "not_pdf"}
    assert outcomes & {"invalid", "invalid_pdf"}
    assert all(messages)


def test_document_with_only_a_document_timestamp(
    running_pki: RunningPki, base_pdf: bytes, policy: VerificationPolicy
) -> None:
    w = IncrementalPdfFileWriter(BytesIO(base_pdf))
    out = PdfTimeStamper(HTTPTimeStamper(running_pki.tsa_url)).timestamp_pdf(w, "sha256")
    report = verify_pdf(out.getvalue(), policy)
    assert report.signature_count == 0
    assert report.document_timestamp_count == 1
    assert report.document_timestamps[0].verdict is Verdict.VALID
    assert report.document_timestamps[0].timestamp.tsa_name == "TSA G2 (TEST)"
    assert report.verdict is Verdict.INDETERMINATE
    assert [r.code for r in report.reasons] == ["timestamps_only"]
