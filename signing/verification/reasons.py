"""Bilingual catalogue of verification findings.

Each finding has a stable ``code`` (JSON consumers filter on it), an English ``message`` and a
Vietnamese ``message_vi`` (Circular 15/2025 §2.3.4: results must be shown in Vietnamese).
"""

from __future__ import annotations

from dataclasses import dataclass

from signing.verification.model import Reason, Severity

__all__ = ["ReasonTemplate", "not_checked_detail", "reason", "revocation_not_checked"]


@dataclass(frozen=True)
class ReasonTemplate:
    severity: Severity
    en: str
    vi: str


_CATALOGUE: dict[str, ReasonTemplate] = {
    "hash_failure": ReasonTemplate(
        "error",
        "The signed content does not match the digest in the signature: the document was altered "
        "inside the signed byte range.",
        "Nội dung tài liệu không khớp với giá trị băm trong chữ ký: tài liệu đã bị sửa đổi trong "
        "phạm vi đã ký.",
    ),
    "signature_crypto_failure": ReasonTemplate(
        "error",
        "The signature value does not verify with the public key of the signer's certificate.",
        "Giá trị chữ ký không kiểm tra được bằng khóa công khai trong chứng thư của người ký.",
    ),
    "format_failure": ReasonTemplate(
        "error",
        "The signature is malformed and cannot be processed ({detail}).",
        "Chữ ký sai định dạng, không xử lý được ({detail}).",
    ),
    "revoked": ReasonTemplate(
        "error",
        "The signer's certificate (or a CA certificate in its path) was revoked on {when}, "
        "before the signing time.",
        "Chứng thư chữ ký số của người ký (hoặc của CA trong đường dẫn chứng thực) đã bị thu hồi "
        "từ {when}, trước thời điểm ký.",
    ),
    "revoked_no_poe": ReasonTemplate(
        "indeterminate",
        "The certificate was revoked on {when} and no trusted time-stamp proves the signature was "
        "made before that.",
        "Chứng thư đã bị thu hồi từ {when} và không có dấu thời gian tin cậy chứng minh chữ ký được "
        "tạo trước thời điểm đó.",
    ),
    "not_valid_at_signing_time": ReasonTemplate(
        "error",
        "The certificate was not within its validity period ({valid_from} – {valid_to}) at the "
        "signing time {when}.",
        "Chứng thư không còn trong thời hạn hiệu lực ({valid_from} – {valid_to}) tại thời điểm ký {when}.",
    ),
    "expired_no_poe": ReasonTemplate(
        "indeterminate",
        "The certificate expired on {valid_to} and no trusted time-stamp proves it was valid at "
        "signing time.",
        "Chứng thư đã hết hạn từ {valid_to} và không có dấu thời gian tin cậy chứng minh chứng thư "
        "còn hiệu lực tại thời điểm ký.",
    ),
    "untrusted_chain": ReasonTemplate(
        "error",
        "No certification path leads from the signer's certificate (issued by {issuer}) to a trusted "
        "root (Ban Cơ yếu Chính phủ Root G2 or the NEAC national root): the issuer is not a "
        "recognised certification authority.",
        "Không xây dựng được đường dẫn chứng thực từ chứng thư của người ký (do {issuer} cấp) tới "
        "chứng thư gốc tin cậy (RootCA chuyên dùng Chính phủ hoặc chứng thư gốc quốc gia NEAC): "
        "tổ chức cấp không phải tổ chức cung cấp dịch vụ chứng thực được công nhận.",
    ),
    "self_signed": ReasonTemplate(
        "error",
        "The signer's certificate is self-signed ({subject} issued it to itself): no recognised "
        "certification authority (Ban Cơ yếu Chính phủ Root G2 or the NEAC national root) vouches "
        "for it, and it is not a trusted root.",
        "Chứng thư của người ký là chứng thư tự ký ({subject} tự cấp cho mình): không do tổ chức "
        "cung cấp dịch vụ chứng thực được công nhận nào (RootCA chuyên dùng Chính phủ hoặc chứng "
        "thư gốc quốc gia NEAC) cấp, và không phải chứng thư gốc tin cậy.",
    ),
    "chain_failure": ReasonTemplate(
        "indeterminate",
        "The certification path could not be validated ({detail}).",
        "Không kiểm tra được đường dẫn chứng thực ({detail}).",
    ),
    "key_usage": ReasonTemplate(
        "indeterminate",
        "The certificate's key usage does not allow signing documents ({detail}).",
        "Mục đích sử dụng khóa của chứng thư không cho phép ký tài liệu ({detail}).",
    ),
    "weak_algorithm": ReasonTemplate(
        "indeterminate",
        "A cryptographic algorithm used is not acceptable ({detail}).",
        "Thuật toán mật mã được sử dụng không đáp ứng yêu cầu ({detail}).",
    ),
    "revocation_unavailable": ReasonTemplate(
        "indeterminate",
        "The revocation status (OCSP/CRL) of the certificate could not be obtained, and the policy "
        "requires it.",
        "Không lấy được trạng thái thu hồi (OCSP/CRL) của chứng thư trong khi chính sách kiểm tra bắt buộc.",
    ),
    "revocation_not_checked": ReasonTemplate(
        "warning",
        "Warning: the revocation status (OCSP/CRL) of the certificate could not be checked ({detail}).",
        "Cảnh báo: không kiểm tra được trạng thái thu hồi (OCSP/CRL) của chứng thư ({detail}).",
    ),
    "modified_after_signing": ReasonTemplate(
        "error",
        "The document was modified after this signature in a way that is not permitted ({detail}).",
        "Tài liệu đã bị sửa đổi sau khi ký, vượt quá phạm vi được phép ({detail}).",
    ),
    "coverage_unclear": ReasonTemplate(
        "error",
        "The signature does not cover its document revision (non-standard /ByteRange).",
        "Chữ ký không bao phủ đầy đủ phiên bản tài liệu đã ký (/ByteRange không chuẩn).",
    ),
    "timestamp_invalid": ReasonTemplate(
        "indeterminate",
        "The signature time-stamp is not valid or not trusted ({detail}).",
        "Dấu thời gian của chữ ký không hợp lệ hoặc không tin cậy ({detail}).",
    ),
    "no_poe": ReasonTemplate(
        "indeterminate",
        "No proof that the signature existed at a time when its certificate was valid ({detail}).",
        "Không có bằng chứng chữ ký tồn tại vào thời điểm chứng thư còn hiệu lực ({detail}).",
    ),
    "generic_indeterminate": ReasonTemplate(
        "indeterminate",
        "The signature could not be fully validated ({detail}).",
        "Không kiểm tra được đầy đủ chữ ký ({detail}).",
    ),
    "claimed_time_only": ReasonTemplate(
        "info",
        "The signing time is the one claimed by the signer; the signature carries no time-stamp.",
        "Thời gian ký do người ký tự khai; chữ ký không có dấu thời gian.",
    ),
    "pkcs7_without_ltv": ReasonTemplate(
        "info",
        "adbe.pkcs7.detached signature without long-term validation data (usual for documents "
        "signed with VGCA-style tools); accepted.",
        "Chữ ký định dạng adbe.pkcs7.detached không kèm dữ liệu kiểm tra dài hạn (phổ biến với "
        "tài liệu ký bằng công cụ của Ban Cơ yếu); được chấp nhận.",
    ),
    "later_changes_permitted": ReasonTemplate(
        "info",
        "Later revisions only add signatures, form field values or validation data, which is permitted.",
        "Các phiên bản sau chỉ bổ sung chữ ký, giá trị trường biểu mẫu hoặc dữ liệu kiểm tra, được phép.",
    ),
    "form_fields_filled": ReasonTemplate(
        "info",
        "After this signature the form fields {fields} were filled, a permitted change.",
        "Sau chữ ký này đã điền các trường biểu mẫu {fields}, là thay đổi được phép.",
    ),
    "document_timestamp_invalid": ReasonTemplate(
        "indeterminate",
        "The document time-stamp is not valid or not trusted ({detail}).",
        "Dấu thời gian tài liệu không hợp lệ hoặc không tin cậy ({detail}).",
    ),
    "signature_invalid": ReasonTemplate(
        "error",
        "Signature {index} ({field}) is not valid.",
        "Chữ ký số thứ {index} ({field}) không hợp lệ.",
    ),
    "signature_indeterminate": ReasonTemplate(
        "indeterminate",
        "Signature {index} ({field}) could not be confirmed.",
        "Chữ ký số thứ {index} ({field}) không xác định được tính hợp lệ.",
    ),
    "timestamps_only": ReasonTemplate(
        "indeterminate",
        "The document carries only document time-stamps, no signature: it proves when the "
        "document existed, not who issued it.",
        "Tài liệu chỉ có dấu thời gian tài liệu, không có chữ ký số: chỉ chứng minh thời điểm "
        "tồn tại của tài liệu, không xác định được người ký.",
    ),
    "all_valid": ReasonTemplate(
        "info",
        "All {count} signature(s) are valid.",
        "Tất cả {count} chữ ký số đều hợp lệ.",
    ),
}


def reason(code: str, **params: object) -> Reason:
    """Instantiate a catalogue entry; unknown placeholders are a programming error.

    ``detail_vi`` (optional) replaces ``{detail}`` in the Vietnamese message. An empty
    ``{detail}`` drops its parentheses, so no message ends in an empty "()".
    """
    tpl = _CATALOGUE[code]
    fmt = {k: ("" if v is None else str(v)) for k, v in params.items() if k != "detail_vi"}
    fmt_vi = dict(fmt)
    if "detail_vi" in params:  # a Vietnamese rendering of {detail}, when one exists
        fmt_vi["detail"] = str(params["detail_vi"] or "")
    return Reason(
        code=code,
        severity=tpl.severity,
        message=_fill(tpl.en, fmt),
        message_vi=_fill(tpl.vi, fmt_vi),
    )


def _fill(template: str, values: dict[str, str]) -> str:
    if not values.get("detail", "x").strip():
        template = template.replace(" ({detail})", "")
    return template.format(**values)


#: ``revocation_not_checked`` details by :class:`signing.revocation_fetch.NotChecked` code.
_NOT_CHECKED_DETAIL: dict[str, tuple[str, str]] = {
    "untrusted_chain": (
        "the certificate does not chain to a trusted root, so its OCSP/CRL addresses were not contacted",
        "chứng thư không thuộc hệ thống chứng thực tin cậy nên không truy cập địa chỉ OCSP/CRL của nó",
    ),
    "scheme_not_allowed": (
        "the OCSP/CRL address is not http or https",
        "địa chỉ OCSP/CRL không dùng giao thức http hoặc https",
    ),
    "host_not_allowed": (
        "the OCSP/CRL server is not on the list of permitted servers",
        "máy chủ OCSP/CRL không thuộc danh sách được phép truy cập",
    ),
    "response_too_large": (
        "the OCSP/CRL answer exceeded the size limit",
        "dữ liệu OCSP/CRL trả về vượt giới hạn dung lượng",
    ),
    "timeout": ("the OCSP/CRL server did not answer in time", "máy chủ OCSP/CRL không trả lời kịp thời hạn"),
    "fetch_failed": ("the OCSP/CRL server could not be reached", "không truy cập được máy chủ OCSP/CRL"),
    "no_revocation_urls": (
        "the certificate names no OCSP/CRL address and none is embedded",
        "chứng thư không có địa chỉ OCSP/CRL và tài liệu không kèm dữ liệu thu hồi",
    ),
    "offline": ("online checking is disabled", "chức năng kiểm tra trực tuyến bị tắt"),
    "not_attempted": ("no usable revocation data was obtained", "không có dữ liệu thu hồi dùng được"),
}


def not_checked_detail(code: str) -> tuple[str, str]:
    """Why revocation was not checked, in English and Vietnamese (docs/signing.md §12.4)."""
    return _NOT_CHECKED_DETAIL.get(code, _NOT_CHECKED_DETAIL["not_attempted"])


def revocation_not_checked(code: str) -> Reason:
    """The Circular 15/2025 Annex II warning, saying why (docs/signing.md §12.4)."""
    en, vi = not_checked_detail(code)
    return reason("revocation_not_checked", detail=f"{code}: {en}", detail_vi=vi)
