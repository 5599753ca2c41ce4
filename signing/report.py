"""Human-readable verification report, Vietnamese (default) or English.

Rendered only from :class:`signing.verification.VerificationReport`, so the text and the JSON
never disagree. Each signature section lists, in this order, the seven fields Circular
15/2025/TT-BKHCN §2.3.4 requires ("tổ chức cung cấp dịch vụ chứng thực", "người ký", "đơn vị
quản lý", "thời gian ký", "tính toàn vẹn", "hiệu lực tại thời điểm ký", "thời hạn hiệu lực của
chứng thư") and the verdict "hợp lệ" / "không hợp lệ" / "không xác định". Times are shown in
Asia/Ho_Chi_Minh with the +07:00 offset. Output is Unicode NFC (TCVN 6909:2001).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Literal

from signing.verification.model import (
    CheckOutcome,
    CheckResult,
    DocumentTimestampReport,
    Reason,
    SignatureReport,
    SigningTimeSource,
    Verdict,
    VerificationReport,
    to_vn_time,
)
from signing.verification.reasons import not_checked_detail

__all__ = ["Lang", "render_report"]

Lang = Literal["vi", "en"]

_LABELS: dict[str, dict[Lang, str]] = {
    "title": {"vi": "KẾT QUẢ KIỂM TRA CHỮ KÝ SỐ", "en": "DIGITAL SIGNATURE VERIFICATION REPORT"},
    "file": {"vi": "Tệp", "en": "File"},
    "sha256": {"vi": "Mã băm SHA-256", "en": "SHA-256"},
    "verified_at": {"vi": "Thời điểm kiểm tra", "en": "Verified at"},
    "verdict": {"vi": "Kết luận", "en": "Verdict"},
    "reasons": {"vi": "Lý do", "en": "Reasons"},
    "signature": {"vi": "Chữ ký số thứ", "en": "Signature"},
    "field": {"vi": "Trường chữ ký", "en": "Signature field"},
    "issuing_ca": {
        "vi": "Tổ chức cung cấp dịch vụ chứng thực (CA cấp chứng thư)",
        "en": "Issuing certification authority",
    },
    "signer": {"vi": "Người ký", "en": "Signer"},
    "managing_unit": {"vi": "Đơn vị quản lý", "en": "Certificate-managing unit"},
    "signing_time": {"vi": "Thời gian ký", "en": "Signing time"},
    "integrity": {"vi": "Tính toàn vẹn", "en": "Integrity"},
    "valid_at_signing": {
        "vi": "Hiệu lực của chứng thư tại thời điểm ký",
        "en": "Certificate validity at signing time",
    },
    "validity_period": {"vi": "Thời hạn hiệu lực của chứng thư", "en": "Certificate validity period"},
    "format": {"vi": "Định dạng chữ ký", "en": "Signature format"},
    "chain": {"vi": "Đường dẫn chứng thực", "en": "Certification path"},
    "revocation": {"vi": "Trạng thái thu hồi", "en": "Revocation status"},
    "modifications": {"vi": "Thay đổi sau khi ký", "en": "Changes after signing"},
    "certification": {"vi": "Chữ ký chứng nhận (DocMDP)", "en": "Certification signature (DocMDP)"},
    "doc_ts": {"vi": "Dấu thời gian tài liệu thứ", "en": "Document time-stamp"},
    "tsa": {"vi": "Đơn vị cấp dấu thời gian", "en": "Time-stamping authority"},
    "none": {"vi": "không có thông tin", "en": "not available"},
    "from_ts": {"vi": "theo dấu thời gian", "en": "from time-stamp"},
    "claimed": {"vi": "do người ký tự khai", "en": "claimed by the signer"},
    "to": {"vi": "đến", "en": "to"},
    "yes": {"vi": "có", "en": "yes"},
    "bytes": {"vi": "byte", "en": "bytes"},
    "embedded": {"vi": "lưu trong tài liệu", "en": "embedded"},
    "fetched": {"vi": "tra cứu trực tuyến", "en": "fetched online"},
    "no": {"vi": "không", "en": "no"},
    "not_checked": {"vi": "chưa kiểm tra", "en": "not checked"},
}

_OUTCOME: dict[CheckOutcome, dict[Lang, str]] = {
    CheckOutcome.PASSED: {"vi": "đạt", "en": "passed"},
    CheckOutcome.FAILED: {"vi": "không đạt", "en": "failed"},
    CheckOutcome.UNKNOWN: {"vi": "không xác định", "en": "unknown"},
}

_REV_STATUS: dict[str, dict[Lang, str]] = {
    "good": {"vi": "chưa bị thu hồi", "en": "good"},
    "revoked": {"vi": "đã bị thu hồi", "en": "revoked"},
    "unknown": {"vi": "không rõ", "en": "unknown"},
}

_VERDICT_EN = {
    Verdict.VALID: "VALID",
    Verdict.INVALID: "NOT VALID",
    Verdict.INDETERMINATE: "INDETERMINATE",
}

_MOD_LEVEL: dict[str, dict[Lang, str]] = {
    "none": {"vi": "không có", "en": "none"},
    "lta_updates": {
        "vi": "chỉ bổ sung dữ liệu kiểm tra dài hạn/dấu thời gian",
        "en": "long-term validation data / time-stamps only",
    },
    "form_filling": {
        "vi": "bổ sung chữ ký hoặc điền biểu mẫu",
        "en": "further signatures or form filling",
    },
    "annotations": {"vi": "thêm chú thích", "en": "annotations"},
    "other": {"vi": "thay đổi nội dung", "en": "content changes"},
}


def _l(key: str, lang: Lang) -> str:
    return _LABELS[key][lang]


def _time(value: datetime | None, lang: Lang) -> str:
    if value is None:
        return _l("none", lang)
    vn = to_vn_time(value)
    # ISO 8601 with the Vietnam offset, as Decree 30/2020 Appendix I prescribes for signing times.
    return vn.isoformat(timespec="seconds")


def _check(result: CheckResult, lang: Lang) -> str:
    text = _OUTCOME[result.outcome][lang]
    detail = result.detail_vi if lang == "vi" else result.detail
    return f"{text} ({detail})" if detail else text


def _verdict(verdict: Verdict, lang: Lang) -> str:
    return verdict.vi.upper() if lang == "vi" else _VERDICT_EN[verdict]


def _reason_lines(reasons: list[Reason], lang: Lang, indent: str) -> list[str]:
    return [f"{indent}- {r.message_vi if lang == 'vi' else r.message}" for r in reasons]


def _signature_section(sig: SignatureReport, lang: Lang) -> list[str]:
    none = _l("none", lang)
    if sig.signing_time_source is SigningTimeSource.TIMESTAMP:
        source = _l("from_ts", lang)
    elif sig.signing_time_source is SigningTimeSource.CLAIMED:
        source = _l("claimed", lang)
    else:
        source = ""
    signing_time = _time(sig.signing_time, lang) + (f" ({source})" if source else "")
    period = (
        f"{_time(sig.certificate_valid_from, lang)} {_l('to', lang)} {_time(sig.certificate_valid_to, lang)}"
    )
    level = sig.signature_format.value + (
        f" {sig.pades_level.value}" if sig.pades_level.value != "none" else ""
    )
    level += f" ({sig.sub_filter})"
    rev = sig.revocation
    rev_text = _OUTCOME[rev.outcome][lang]
    if rev.outcome is CheckOutcome.UNKNOWN and rev.not_checked_reason:
        en, vi = not_checked_detail(rev.not_checked_reason)
        rev_text += f" ({_l('not_checked', lang)}: {vi if lang == 'vi' else en})"
    if rev.revoked and rev.revoked_at is not None:
        rev_text += f" ({'thu hồi lúc' if lang == 'vi' else 'revoked at'} {_time(rev.revoked_at, lang)})"
    if rev.evidence:
        src_label = {"embedded": _l("embedded", lang), "fetched": _l("fetched", lang)}
        items = [
            f"{e.kind.upper()} {e.authority or ''} {_time(e.issued_at, lang)}, "
            f"{_REV_STATUS.get(e.status, {'vi': e.status, 'en': e.status})[lang]}, "
            f"{src_label.get(e.source.value, e.source.value)}".replace("  ", " ")
            for e in rev.evidence
        ]
        rev_text += "; " + "; ".join(items)
    mods = sig.modifications
    mod_text = (
        _MOD_LEVEL.get(
            mods.modification_level, {"vi": mods.modification_level, "en": mods.modification_level}
        )[lang]
        if mods.modification_level
        else none
    )
    lines = [
        f"{_l('signature', lang)} {sig.index}: {_verdict(sig.verdict, lang)}",
        f"  {_l('field', lang)}: {sig.field_name}",
        f"  1. {_l('issuing_ca', lang)}: {sig.issuing_ca}",
        f"  2. {_l('signer', lang)}: {sig.signer_name}",
        f"  3. {_l('managing_unit', lang)}: {sig.managing_unit or none}",
        f"  4. {_l('signing_time', lang)}: {signing_time}",
        f"  5. {_l('integrity', lang)}: {_check(sig.integrity, lang)}",
        f"  6. {_l('valid_at_signing', lang)}: {_check(sig.valid_at_signing_time, lang)}",
        f"  7. {_l('validity_period', lang)}: {period}",
        f"  {_l('format', lang)}: {level}",
        f"  {_l('chain', lang)}: {_check(sig.chain, lang)}",
        f"  {_l('revocation', lang)}: {rev_text}",
        f"  {_l('modifications', lang)}: {mod_text}",
    ]
    if sig.is_certification:
        lines.append(f"  {_l('certification', lang)}: P={sig.docmdp_permission}")
    if sig.signature_timestamp is not None:
        lines.append(f"  {_l('tsa', lang)}: {sig.signature_timestamp.tsa_name or none}")
    if sig.reasons:
        lines.append(f"  {_l('reasons', lang)}:")
        lines.extend(_reason_lines(sig.reasons, lang, "    "))
    return lines


def _timestamp_section(ts: DocumentTimestampReport, lang: Lang) -> list[str]:
    lines = [
        f"{_l('doc_ts', lang)} {ts.index}: {_verdict(ts.verdict, lang)}",
        f"  {_l('field', lang)}: {ts.field_name}",
        f"  {_l('signing_time', lang)}: {_time(ts.timestamp.time, lang)}",
        f"  {_l('tsa', lang)}: {ts.timestamp.tsa_name or _l('none', lang)}",
    ]
    if ts.reasons:
        lines.append(f"  {_l('reasons', lang)}:")
        lines.extend(_reason_lines(ts.reasons, lang, "    "))
    return lines


def render_report(report: VerificationReport, lang: Lang = "vi") -> str:
    """Plain-text report; ``lang`` is ``"vi"`` (default, Circular 15/2025) or ``"en"``."""
    if lang not in ("vi", "en"):
        raise ValueError(f"unsupported language {lang!r}")
    lines = [
        _l("title", lang),
        f"{_l('file', lang)}: {report.file_name or '-'} ({report.file_size} {_l('bytes', lang)})",
        f"{_l('sha256', lang)}: {report.file_sha256}",
        f"{_l('verified_at', lang)}: {_time(report.verified_at, lang)}",
        f"{_l('verdict', lang)}: {_verdict(report.verdict, lang)}",
    ]
    if report.reasons:
        lines.append(f"{_l('reasons', lang)}:")
        lines.extend(_reason_lines(report.reasons, lang, "  "))
    for sig in report.signatures:
        lines.append("")
        lines.extend(_signature_section(sig, lang))
    for ts in report.document_timestamps:
        lines.append("")
        lines.extend(_timestamp_section(ts, lang))
    return unicodedata.normalize("NFC", "\n".join(lines) + "\n")
