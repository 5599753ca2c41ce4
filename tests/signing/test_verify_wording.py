"""What a person reads in a verification report (docs/signing.md §10.1): what was and was not
checked, the trust a signer lacks, an ETSI EN 319 102-1 §5.1.3 indication that agrees with the
verdict, and never the validation library's own text."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from hub.simulators.pki import RunningPki
from signing.report import render_report
from signing.trust import TrustStore
from signing.verification import Verdict, VerificationPolicy, VerificationReport, verify_pdf
from signing.verification.model import CheckOutcome
from signing.verification.reasons import reason
from tests.signing.verify_helpers import (
    append_content_change,
    make_pdf,
    overwrite_signed_bytes,
    self_signed_p12,
    sign,
)

#: Object reprs of pyHanko / pyhanko-certvalidator that must never reach a report.
LIBRARY_TEXT = ("Reference(", "idnum=", "<pyhanko", "PathInRevision(", "Context(path=")

#: EN 319 102-1 §5.1.3: the main indication each verdict carries.
INDICATION = {
    Verdict.VALID: "TOTAL-PASSED",
    Verdict.INVALID: "TOTAL-FAILED",
    Verdict.INDETERMINATE: "INDETERMINATE",
}


@pytest.fixture(scope="module")
def policy(running_pki: RunningPki) -> VerificationPolicy:
    return VerificationPolicy.from_trust_store(TrustStore.from_test_pki(running_pki.pki))


@pytest.fixture(scope="module")
def signed(running_pki: RunningPki) -> bytes:
    return sign(make_pdf(), running_pki, running_pki.pki.officer_p12)


@pytest.fixture(scope="module")
def cases(
    running_pki: RunningPki,
    signed: bytes,
    policy: VerificationPolicy,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, VerificationReport]:
    pki = running_pki.pki
    self_signed = self_signed_p12(tmp_path_factory.mktemp("selfsigned"), pki.p12_password)
    return {
        "online": verify_pdf(signed, policy),
        "offline": verify_pdf(signed, dataclasses.replace(policy, allow_fetching=False)),
        "self_signed": verify_pdf(sign(make_pdf(), running_pki, self_signed), policy),
        "untrusted": verify_pdf(sign(make_pdf(), running_pki, pki.untrusted_p12), policy),
        "tampered_update": verify_pdf(append_content_change(signed), policy),
        "tampered_bytes": verify_pdf(overwrite_signed_bytes(signed), policy),
    }


def _texts(report: VerificationReport) -> dict[str, str]:
    return {
        "vi": render_report(report, "vi"),
        "en": render_report(report, "en"),
        "json": report.model_dump_json(),
    }


def test_offline_report_says_revocation_was_not_checked(cases: dict[str, VerificationReport]) -> None:
    report = cases["offline"]
    sig = report.signatures[0]
    assert report.verdict is Verdict.VALID  # Circular 15/2025 Annex II: warn, not refuse
    assert sig.revocation.outcome is CheckOutcome.UNKNOWN
    vi, en = render_report(report, "vi"), render_report(report, "en")
    assert "chưa bị thu hồi" not in vi
    assert "not revoked" not in en
    assert (
        "6. Hiệu lực của chứng thư tại thời điểm ký: đạt (trong thời hạn hiệu lực tại thời điểm ký; "
        "CHƯA kiểm tra được tình trạng thu hồi: chức năng kiểm tra trực tuyến bị tắt)"
    ) in vi
    assert (
        "6. Certificate validity at signing time: passed (within the validity period at signing "
        "time; revocation NOT checked: online checking is disabled)"
    ) in en
    assert "Trạng thái thu hồi: không xác định (chưa kiểm tra: chức năng kiểm tra trực tuyến bị tắt)" in vi
    assert "Revocation status: unknown (not checked: online checking is disabled)" in en


def test_online_report_says_revocation_was_checked(cases: dict[str, VerificationReport]) -> None:
    vi, en = render_report(cases["online"], "vi"), render_report(cases["online"], "en")
    assert "đạt (trong thời hạn hiệu lực và chưa bị thu hồi tại thời điểm ký, theo OCSP/CRL)" in vi
    assert "passed (within the validity period and not revoked at signing time, per OCSP/CRL)" in en


def test_self_signed_signer_is_named_as_such(cases: dict[str, VerificationReport]) -> None:
    report = cases["self_signed"]
    sig = report.signatures[0]
    assert report.verdict is Verdict.INVALID
    (found,) = [r for r in sig.reasons if r.severity == "error"]
    assert found.code == "self_signed"
    assert "chứng thư tự ký (Đỗ Văn Tự Ký tự cấp cho mình)" in found.message_vi
    assert "RootCA chuyên dùng Chính phủ hoặc chứng thư gốc quốc gia NEAC" in found.message_vi
    assert "self-signed (Đỗ Văn Tự Ký issued it to itself)" in found.message
    assert sig.chain.outcome is CheckOutcome.FAILED
    assert "Đường dẫn chứng thực: không đạt (chứng thư tự ký, không phải chứng thư gốc tin cậy)" in (
        render_report(report, "vi")
    )


def test_untrusted_chain_names_the_issuer_and_the_missing_trust(cases: dict[str, VerificationReport]) -> None:
    sig = cases["untrusted"].signatures[0]
    (found,) = [r for r in sig.reasons if r.severity == "error"]
    assert found.code == "untrusted_chain"
    assert "(do Untrusted Root CA (TEST) cấp)" in found.message_vi
    assert "(issued by Untrusted Root CA (TEST))" in found.message
    assert "Ban Cơ yếu Chính phủ Root G2 or the NEAC national root" in found.message


@pytest.mark.parametrize(
    ("case", "verdict", "subindication"),
    [
        ("online", Verdict.VALID, None),
        ("offline", Verdict.VALID, None),
        ("self_signed", Verdict.INVALID, "NO_CERTIFICATE_CHAIN_FOUND"),
        ("untrusted", Verdict.INVALID, "NO_CERTIFICATE_CHAIN_FOUND"),
        ("tampered_update", Verdict.INVALID, "FORMAT_FAILURE"),
        ("tampered_bytes", Verdict.INVALID, "HASH_FAILURE"),
    ],
)
def test_etsi_indication_agrees_with_the_verdict(
    cases: dict[str, VerificationReport], case: str, verdict: Verdict, subindication: str | None
) -> None:
    report = cases[case]
    sig = report.signatures[0]
    assert (report.verdict, sig.verdict) == (verdict, verdict)
    assert sig.ades_indication == INDICATION[verdict]
    assert sig.ades_subindication == subindication


@pytest.mark.parametrize(
    "case", ["online", "offline", "self_signed", "untrusted", "tampered_update", "tampered_bytes"]
)
def test_no_empty_parentheses_and_no_library_text(cases: dict[str, VerificationReport], case: str) -> None:
    report = cases[case]
    for sig in report.signatures:
        for r in sig.reasons:
            assert "()" not in r.message, r
            assert "()" not in r.message_vi, r
    for lang, text in _texts(report).items():
        assert "()" not in text, lang
        for bad in LIBRARY_TEXT:
            assert bad not in text, (lang, bad)


def test_changed_objects_are_named_in_pdf_terms(cases: dict[str, VerificationReport]) -> None:
    mods = cases["tampered_update"].signatures[0].modifications
    assert mods.tampered
    assert mods.detail is not None
    assert " 0 R" in mods.detail  # indirect references as ISO 32000-1 §7.3.10 writes them
    assert ".Root.Pages.Kids[0]" in mods.detail


def test_a_finding_without_detail_has_no_empty_parentheses() -> None:
    r = reason("chain_failure", detail="")
    assert r.message == "The certification path could not be validated."
    assert r.message_vi == "Không kiểm tra được đường dẫn chứng thực."


def test_self_signed_anchor_is_trusted(running_pki: RunningPki, tmp_path: Path) -> None:
    """A self-signed certificate configured as a trust anchor is no "self_signed" finding."""
    password = running_pki.pki.p12_password
    p12 = self_signed_p12(tmp_path, password)
    _, cert, _ = pkcs12.load_key_and_certificates(p12.read_bytes(), password.encode())
    assert cert is not None
    pem = tmp_path / "anchor.pem"
    pem.write_bytes(cert.public_bytes(Encoding.PEM))
    anchored = VerificationPolicy.from_paths([pem], allow_fetching=False)
    report = verify_pdf(sign(make_pdf(), running_pki, p12), anchored)
    assert report.verdict is Verdict.VALID, report.signatures[0].reasons
    assert report.signatures[0].ades_indication == "TOTAL-PASSED"
