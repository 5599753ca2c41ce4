"""The ETSI EN 319 102-1 indication a signature report carries, consistent with its verdict.

EN 319 102-1 §5.1.3 defines three main indications, TOTAL-PASSED, TOTAL-FAILED and
INDETERMINATE, each with its own sub-indications. pyHanko runs the EN 319 102-1 process; the hub
then applies the Vietnamese rules the process does not know (docs/signing.md §10.2): a path that
does not reach a recognised root, a certificate outside its validity period at the claimed
signing time and a change after signing the DocMDP/FieldMDP permissions do not allow all make a
signature "không hợp lệ". The report's indication is therefore derived from the hub's verdict
(valid → TOTAL-PASSED, invalid → TOTAL-FAILED, indeterminate → INDETERMINATE); the
sub-indication is the process's own when it belongs to that main indication, otherwise the one
naming the finding that decided the verdict (table ``_BY_REASON``). A document judged invalid
never carries TOTAL-PASSED. Sub-indication descriptions follow EN 319 102-1 §5.1.3 Table 6.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pyhanko.sign.ades.report import AdESIndeterminate, AdESStatus, AdESSubIndic

from signing.verification.model import Reason, Verdict

__all__ = ["Indication", "indication_for", "subindication_text"]

Indication = Literal["TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE"]

_MAIN: dict[Verdict, Indication] = {
    Verdict.VALID: "TOTAL-PASSED",
    Verdict.INVALID: "TOTAL-FAILED",
    Verdict.INDETERMINATE: "INDETERMINATE",
}
_STATUS: dict[Verdict, AdESStatus] = {
    Verdict.VALID: AdESStatus.PASSED,
    Verdict.INVALID: AdESStatus.FAILED,
    Verdict.INDETERMINATE: AdESStatus.INDETERMINATE,
}

#: Sub-indication for the finding (reason code) that decided the verdict.
_BY_REASON: dict[str, str] = {
    "hash_failure": "HASH_FAILURE",
    "signature_crypto_failure": "SIG_CRYPTO_FAILURE",
    "format_failure": "FORMAT_FAILURE",
    "revoked": "REVOKED",
    "revoked_no_poe": "REVOKED_NO_POE",
    "expired_no_poe": "OUT_OF_BOUNDS_NO_POE",
    "untrusted_chain": "NO_CERTIFICATE_CHAIN_FOUND",
    "self_signed": "NO_CERTIFICATE_CHAIN_FOUND",
    "chain_failure": "CERTIFICATE_CHAIN_GENERAL_FAILURE",
    "key_usage": "CHAIN_CONSTRAINTS_FAILURE",
    "weak_algorithm": "CRYPTO_CONSTRAINTS_FAILURE",
    "revocation_unavailable": "TRY_LATER",
    "no_poe": "NO_POE",
    "timestamp_invalid": "SIG_CONSTRAINTS_FAILURE",
    # PDF changes after signing: EU DSS judges them in the format-checking building block.
    "modified_after_signing": "FORMAT_FAILURE",
    "coverage_unclear": "FORMAT_FAILURE",
}

#: Short bilingual descriptions of the sub-indications (EN 319 102-1 §5.1.3 Table 6), used as
#: the detail of a finding instead of the validation library's own wording.
_TEXT: dict[str, tuple[str, str]] = {
    "FORMAT_FAILURE": (
        "the signature is not conformant to the signature format",
        "chữ ký không tuân thủ định dạng chữ ký",
    ),
    "SIG_CONSTRAINTS_FAILURE": (
        "the signature does not meet the validation constraints",
        "chữ ký không đáp ứng các ràng buộc kiểm tra",
    ),
    "CHAIN_CONSTRAINTS_FAILURE": (
        "the certification path does not meet the validation constraints",
        "đường dẫn chứng thực không đáp ứng các ràng buộc kiểm tra",
    ),
    "CERTIFICATE_CHAIN_GENERAL_FAILURE": (
        "the certification path could not be validated",
        "không kiểm tra được đường dẫn chứng thực",
    ),
    "CRYPTO_CONSTRAINTS_FAILURE": (
        "an algorithm or key size is below the accepted level",
        "thuật toán hoặc độ dài khóa dưới mức được chấp nhận",
    ),
    "CRYPTO_CONSTRAINTS_FAILURE_NO_POE": (
        "an algorithm is no longer accepted and nothing proves the signature existed before",
        "thuật toán không còn được chấp nhận và không có bằng chứng chữ ký tồn tại trước đó",
    ),
    "POLICY_PROCESSING_ERROR": (
        "the signature policy could not be processed",
        "không xử lý được chính sách chữ ký",
    ),
    "SIGNATURE_POLICY_NOT_AVAILABLE": (
        "the signature policy is not available",
        "không có chính sách chữ ký",
    ),
    "TIMESTAMP_ORDER_FAILURE": (
        "the time-stamps are not in the required order",
        "các dấu thời gian không theo đúng thứ tự",
    ),
    "NO_SIGNING_CERTIFICATE_FOUND": (
        "the signer's certificate was not found",
        "không tìm thấy chứng thư của người ký",
    ),
    "NO_CERTIFICATE_CHAIN_FOUND": (
        "no certification path to a trusted root",
        "không có đường dẫn chứng thực tới chứng thư gốc tin cậy",
    ),
    "NO_POE": (
        "no proof that the signature existed at a time the certificate was valid",
        "không có bằng chứng chữ ký tồn tại khi chứng thư còn hiệu lực",
    ),
    "TRY_LATER": (
        "revocation information is not available yet",
        "chưa có thông tin thu hồi",
    ),
    "SIGNED_DATA_NOT_FOUND": (
        "the signed data was not found",
        "không tìm thấy dữ liệu đã ký",
    ),
    "GENERIC": ("the validation ended without a conclusion", "quá trình kiểm tra không đi đến kết luận"),
}


def subindication_text(subindic: AdESSubIndic) -> tuple[str, str]:
    """English and Vietnamese description of ``subindic`` (never the library's own text)."""
    name = str(subindic.standard_name)
    return _TEXT.get(name, (name, name))


def indication_for(
    verdict: Verdict, process: AdESSubIndic, reasons: Iterable[Reason], *, not_yet_valid: bool = False
) -> tuple[Indication, str | None]:
    """Main and sub-indication for a signature judged ``verdict`` (EN 319 102-1 §5.1.3).

    ``process`` is the sub-indication the EN 319 102-1 process itself returned;
    ``not_yet_valid``: the signing time precedes the certificate's notBefore (else a signing
    time outside the validity period is after notAfter).
    """
    if verdict is Verdict.VALID:
        return "TOTAL-PASSED", None
    wanted = _STATUS[verdict]
    if process.status is wanted:
        return _MAIN[verdict], str(process.standard_name)
    severity = "error" if verdict is Verdict.INVALID else "indeterminate"
    for r in reasons:
        if r.severity != severity:
            continue
        if r.code == "not_valid_at_signing_time":  # the (claimed) signing time outside the period
            return _MAIN[verdict], "NOT_YET_VALID" if not_yet_valid else "EXPIRED"
        if r.code in _BY_REASON:
            return _MAIN[verdict], _BY_REASON[r.code]
    return _MAIN[verdict], str(AdESIndeterminate.GENERIC.standard_name)
