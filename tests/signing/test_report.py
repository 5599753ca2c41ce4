"""Verification report: Circular 15/2025 §2.3.4 fields in Vietnamese (NFC), English, and JSON."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest

from hub.simulators.pki import RunningPki
from signing.report import render_report
from signing.trust import TrustStore
from signing.verification import VerificationPolicy, VerificationReport, verify_pdf
from tests.signing.verify_helpers import make_pdf, overwrite_signed_bytes, sign


@pytest.fixture(scope="module")
def policy(running_pki: RunningPki) -> VerificationPolicy:
    return VerificationPolicy.from_trust_store(TrustStore.from_test_pki(running_pki.pki))


@pytest.fixture(scope="module")
def valid_report(running_pki: RunningPki, policy: VerificationPolicy) -> VerificationReport:
    pdf = sign(make_pdf(), running_pki, running_pki.pki.officer_p12, timestamp=True)
    return verify_pdf(pdf, policy, file_name="Quyết định 123.pdf")


@pytest.fixture(scope="module")
def invalid_report(running_pki: RunningPki, policy: VerificationPolicy) -> VerificationReport:
    pdf = sign(make_pdf(), running_pki, running_pki.pki.officer_p12, pades=False)
    return verify_pdf(overwrite_signed_bytes(pdf), policy)


#: The seven §2.3.4 fields, as labelled in the Vietnamese report.
MANDATORY_VI = (
    "Tổ chức cung cấp dịch vụ chứng thực",
    "Người ký",
    "Đơn vị quản lý",
    "Thời gian ký",
    "Tính toàn vẹn",
    "Hiệu lực của chứng thư tại thời điểm ký",
    "Thời hạn hiệu lực của chứng thư",
)


def test_vietnamese_report_has_mandatory_fields_in_nfc(valid_report: VerificationReport) -> None:
    text = render_report(valid_report)  # Vietnamese is the default
    assert text == unicodedata.normalize("NFC", text)
    for label in MANDATORY_VI:
        assert f"{label}" in text, label
        assert unicodedata.is_normalized("NFC", label)
    assert "Kết luận: HỢP LỆ" in text
    assert "Người ký: Nguyễn Thị Lấp Lánh" in text
    assert "Đơn vị quản lý: Văn phòng Sở, Sở Nông nghiệp và Môi trường tỉnh Ninh Bình" in text
    assert "CA phục vụ các cơ quan Nhà nước G2 (TEST)" in text
    assert "(theo dấu thời gian)" in text
    assert "Tính toàn vẹn: đạt" in text
    assert "chưa bị thu hồi, tra cứu trực tuyến" in text
    # times are Vietnam time, ISO 8601 with +07:00
    times = re.findall(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2})", text)
    assert times
    assert set(times) == {"+07:00"}
    # the decomposed (NFD) form must not leak in
    assert unicodedata.normalize("NFD", "Người ký") not in text


def test_vietnamese_report_for_tampered_document(invalid_report: VerificationReport) -> None:
    text = render_report(invalid_report, "vi")
    assert "Kết luận: KHÔNG HỢP LỆ" in text
    assert "Tính toàn vẹn: không đạt" in text
    assert "Nội dung tài liệu không khớp với giá trị băm trong chữ ký" in text
    assert "Chữ ký số thứ 1 (Sig1) không hợp lệ." in text


def test_english_report(valid_report: VerificationReport, invalid_report: VerificationReport) -> None:
    text = render_report(valid_report, "en")
    for label in ("Issuing certification authority", "Signer", "Certificate-managing unit", "Signing time"):
        assert label in text
    assert "Verdict: VALID" in text
    assert "Verdict: NOT VALID" in render_report(invalid_report, "en")


def test_unknown_language_is_rejected(valid_report: VerificationReport) -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        render_report(valid_report, "fr")  # type: ignore[arg-type]


STABLE_TOP = {
    "schema_version",
    "file_name",
    "file_sha256",
    "file_size",
    "verified_at",
    "verdict",
    "verdict_vi",
    "reasons",
    "signature_count",
    "document_timestamp_count",
    "signatures",
    "document_timestamps",
    "policy",
}
STABLE_SIGNATURE = {
    "issuing_ca",
    "signer_name",
    "managing_unit",
    "signing_time",
    "signing_time_source",
    "integrity",
    "valid_at_signing_time",
    "certificate_valid_from",
    "certificate_valid_to",
    "signature_format",
    "pades_level",
    "revocation",
    "modifications",
    "verdict",
    "verdict_vi",
    "reasons",
    "ades_indication",
}


def test_json_report_schema_and_round_trip(valid_report: VerificationReport) -> None:
    payload = json.loads(valid_report.model_dump_json())
    assert set(payload) >= STABLE_TOP
    assert payload["schema_version"] == "1.0"
    assert payload["verdict"] == "valid"
    assert payload["verdict_vi"] == "hợp lệ"
    assert payload["file_name"] == "Quyết định 123.pdf"
    sig = payload["signatures"][0]
    assert set(sig) >= STABLE_SIGNATURE
    assert sig["pades_level"] == "B-T"
    assert sig["integrity"]["outcome"] == "passed"
    for key in ("signing_time", "certificate_valid_from", "certificate_valid_to"):
        assert sig[key].endswith("+07:00"), sig[key]
    assert payload["verified_at"].endswith("+07:00")
    assert all({"code", "severity", "message", "message_vi"} == set(r) for r in payload["reasons"])
    # the published JSON schema names the same fields and round-trips the document
    schema = VerificationReport.model_json_schema()
    assert set(schema["properties"]) >= STABLE_TOP
    assert set(schema["$defs"]["SignatureReport"]["properties"]) >= STABLE_SIGNATURE
    assert VerificationReport.model_validate(payload) == valid_report


def test_model_normalises_vietnamese_to_nfc(valid_report: VerificationReport) -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Lấp Lánh")
    sig = valid_report.signatures[0].model_dump()
    sig["signer_name"] = decomposed
    rebuilt = type(valid_report.signatures[0]).model_validate(sig)
    assert rebuilt.signer_name == "Nguyễn Thị Lấp Lánh"
    assert unicodedata.is_normalized("NFC", rebuilt.signer_name)
