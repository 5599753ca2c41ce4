"""SMS status lookup: ``<KEYWORD> <MaHoSo>`` in, a short ASCII reply out (docs/portal.md §8).

Modelled on OpenCPS ``SMSGateway``: the body is split on whitespace and the second token is
the dossier code; the sender's ``+84``/``84`` prefix becomes ``0``; replies are unaccented
ASCII (GSM-7 safe) and chosen by status. Replies never include the applicant's name or ID
number, since anyone who knows a code can send the message.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hub.lookup.service import LookupOutcome, LookupService
from schemas.dossier import Dossier
from schemas.masking import mask_phone
from schemas.status import DossierStatus
from schemas.text import strip_diacritics
from schemas.timefmt import VN_TZ

log = logging.getLogger("hub.sms")
_PHONE_RE = re.compile(r"^\+?\d{6,15}$")


class ReplyKind(StrEnum):
    PROCESSING = "processing"
    SUPPLEMENT = "supplement"
    FINISHED_ON_TIME = "finished_on_time"
    FINISHED_LATE = "finished_late"
    RETURNED = "returned"
    REFUSED = "refused"
    STOPPED = "stopped"
    SYNTAX_ERROR = "syntax_error"
    UNKNOWN_CODE = "unknown_code"


@dataclass(frozen=True, slots=True)
class SmsReply:
    kind: ReplyKind
    text: str
    dossier_code: str | None


def normalise_sender(number: str) -> str:
    """``+84912345678`` / ``84912345678`` → ``0912345678`` (OpenCPS ``SMSGateway``)."""
    digits = re.sub(r"[\s.()-]", "", number.strip())
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) >= 11:
        digits = "0" + digits[2:]
    return digits


def _date(value: datetime | None) -> str:
    return value.astimezone(VN_TZ).strftime("%d/%m/%Y") if value else "chua xac dinh"


def _place(dossier: Dossier) -> str:
    return dossier.processing_agency or "Bo phan Mot cua"


def reply_for(dossier: Dossier) -> tuple[ReplyKind, str]:
    """The Vietnamese reply for a dossier's status, before diacritics are stripped."""
    code = dossier.code
    status = dossier.status
    if status is DossierStatus.SUPPLEMENT_REQUESTED:
        return ReplyKind.SUPPLEMENT, (
            f"Xin chào! Hồ sơ {code} cần bổ sung giấy tờ. Đề nghị Công dân/ doanh nghiệp sớm hoàn thiện "
            "bổ sung hồ sơ theo yêu cầu. Trân trọng cảm ơn!"
        )
    if status is DossierStatus.FINISHED:
        if dossier.finished_on_time() is False:
            return ReplyKind.FINISHED_LATE, (
                f"Đề nghị đến nhận kết quả tại {_place(dossier)}. Hồ sơ đã giải quyết xong (quá hạn), "
                f"xin lỗi vì sự chậm trễ. Mã hồ sơ là {code}. *Lưu ý: mang theo giấy tờ cần thiết."
            )
        return ReplyKind.FINISHED_ON_TIME, (
            f"Đề nghị đến nhận kết quả tại {_place(dossier)}. Hồ sơ đã giải quyết đúng hạn. "
            f"Mã hồ sơ là {code}."
        )
    if status is DossierStatus.RETURNED:
        return ReplyKind.RETURNED, (
            f"Hồ sơ {code} đã trả kết quả ngày {_date(dossier.returned_at)}. Trân trọng cảm ơn!"
        )
    if status is DossierStatus.REFUSED:
        return ReplyKind.REFUSED, (
            f"Xin chào! Hồ sơ {code} đã bị từ chối giải quyết. Vui lòng liên hệ {_place(dossier)} "
            "để biết lý do. Trân trọng cảm ơn!"
        )
    if status in (DossierStatus.WITHDRAWAL_REQUESTED, DossierStatus.STOPPED):
        return ReplyKind.STOPPED, f"Hồ sơ {code}: {status.label_vi}. Trân trọng cảm ơn!"
    return ReplyKind.PROCESSING, (
        f"Xin chào! Hồ sơ {code} đang trong quá trình thẩm định, hẹn trả ngày {_date(dossier.due_at)}. "
        "Trân trọng cảm ơn!"
    )


class SmsResponder:
    def __init__(self, lookup: LookupService, keyword: str) -> None:
        self._lookup = lookup
        self._keyword = keyword.strip().upper()

    def handle(self, sender: str, body: str) -> SmsReply:
        """Answer one MO message; logs MO and MT with the sender masked."""
        phone = mask_phone(normalise_sender(sender))
        log.info("sms MO from %s: %s", phone, body[:160])
        reply = self._answer(body)
        self._lookup.record("sms", usage_outcome(reply.kind), detail=reply.kind.value)
        log.info("sms MT to %s (%s): %s", phone, reply.kind.value, reply.text)
        return reply

    def _answer(self, body: str) -> SmsReply:
        tokens = body.split()
        if len(tokens) != 2 or tokens[0].upper() != self._keyword:
            text = (
                f"Sai cú pháp. Soạn tin: {self._keyword} <Mã hồ sơ>, ví dụ "
                f"{self._keyword} 000.00.18.H42-251125-0001"
            )
            return SmsReply(ReplyKind.SYNTAX_ERROR, strip_diacritics(text), None)
        code = tokens[1].upper()
        dossier = self._lookup.dossier_for_sms(code)
        if dossier is None:
            text = f"Không tìm thấy hồ sơ {code[:40]}. Vui lòng kiểm tra lại mã hồ sơ."
            return SmsReply(ReplyKind.UNKNOWN_CODE, strip_diacritics(text), None)
        kind, text = reply_for(dossier)
        return SmsReply(kind, strip_diacritics(text), dossier.code)


def usage_outcome(kind: ReplyKind) -> LookupOutcome:
    """How the usage report counts an SMS reply: a status sent is a dossier found."""
    if kind is ReplyKind.SYNTAX_ERROR:
        return LookupOutcome.INVALID
    return LookupOutcome.NOT_FOUND if kind is ReplyKind.UNKNOWN_CODE else LookupOutcome.FOUND


def valid_sender(sender: str) -> bool:
    return bool(_PHONE_RE.match(normalise_sender(sender)))
