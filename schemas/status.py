"""Dossier status codes 1–10 of the national portal and the one-stop state machine.

Codes and labels: docs/portal.md §3.5. Transitions: §2.2–2.3 (Decree 61/2018 one-stop
chapter, Circular 01/2018 forms; Decree 118/2025 and Circular 03/2025 for new work):
receipt (1→2) or refusal (→3, Mẫu 03); supplement request (2/4→5, Mẫu 02) and back;
transfer/processing (2→4, Mẫu 05); financial obligation (4↔6); withdrawal (→7) and stop
(→8, "Thông báo dừng giải quyết hồ sơ", Circular 03/2025 Art. 7); finished (4→9); returned
(9→10). Lateness is not a state: it triggers an apology (Mẫu 04) and a new due date.
"""

from __future__ import annotations

from enum import IntEnum

from schemas.errors import InvalidTransitionError


class DossierStatus(IntEnum):
    SUBMITTED = 1
    RECEIVED = 2
    REFUSED = 3
    PROCESSING = 4
    SUPPLEMENT_REQUESTED = 5
    FINANCIAL_OBLIGATION = 6
    WITHDRAWAL_REQUESTED = 7
    STOPPED = 8
    FINISHED = 9
    RETURNED = 10

    @property
    def label_vi(self) -> str:
        return _LABELS_VI[self]

    @property
    def label_en(self) -> str:
        return _LABELS_EN[self]

    @property
    def is_final(self) -> bool:
        return self in (DossierStatus.REFUSED, DossierStatus.STOPPED, DossierStatus.RETURNED)

    @property
    def ends_processing(self) -> bool:
        """Statuses whose time counts as the end of processing for the on-time rule (§3.9)."""
        return self in (
            DossierStatus.REFUSED,
            DossierStatus.WITHDRAWAL_REQUESTED,
            DossierStatus.STOPPED,
            DossierStatus.FINISHED,
            DossierStatus.RETURNED,
        )


_LABELS_VI: dict[DossierStatus, str] = {
    DossierStatus.SUBMITTED: "Mới đăng ký",
    DossierStatus.RECEIVED: "Được tiếp nhận",
    DossierStatus.REFUSED: "Không được tiếp nhận",
    DossierStatus.PROCESSING: "Đang xử lý",
    DossierStatus.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung giấy tờ",
    DossierStatus.FINANCIAL_OBLIGATION: "Yêu cầu thực hiện nghĩa vụ tài chính",
    DossierStatus.WITHDRAWAL_REQUESTED: "Công dân yêu cầu rút hồ sơ",
    DossierStatus.STOPPED: "Dừng xử lý",
    DossierStatus.FINISHED: "Đã xử lý xong",
    DossierStatus.RETURNED: "Đã trả kết quả",
}

_LABELS_EN: dict[DossierStatus, str] = {
    DossierStatus.SUBMITTED: "Submitted online",
    DossierStatus.RECEIVED: "Received",
    DossierStatus.REFUSED: "Refused at receipt",
    DossierStatus.PROCESSING: "Processing",
    DossierStatus.SUPPLEMENT_REQUESTED: "Supplement requested",
    DossierStatus.FINANCIAL_OBLIGATION: "Fees or taxes requested",
    DossierStatus.WITHDRAWAL_REQUESTED: "Withdrawal requested by the applicant",
    DossierStatus.STOPPED: "Processing stopped",
    DossierStatus.FINISHED: "Result ready",
    DossierStatus.RETURNED: "Result returned",
}

S = DossierStatus
#: Allowed moves of the one-stop procedure (docs/portal.md §2.3).
ALLOWED_TRANSITIONS: dict[DossierStatus, frozenset[DossierStatus]] = {
    S.SUBMITTED: frozenset({S.RECEIVED, S.REFUSED, S.SUPPLEMENT_REQUESTED, S.WITHDRAWAL_REQUESTED}),
    S.RECEIVED: frozenset(
        {S.PROCESSING, S.SUPPLEMENT_REQUESTED, S.REFUSED, S.WITHDRAWAL_REQUESTED, S.STOPPED}
    ),
    S.PROCESSING: frozenset(
        {
            S.SUPPLEMENT_REQUESTED,
            S.FINANCIAL_OBLIGATION,
            S.FINISHED,
            S.WITHDRAWAL_REQUESTED,
            S.STOPPED,
        }
    ),
    S.SUPPLEMENT_REQUESTED: frozenset(
        {S.RECEIVED, S.PROCESSING, S.WITHDRAWAL_REQUESTED, S.STOPPED, S.REFUSED}
    ),
    S.FINANCIAL_OBLIGATION: frozenset({S.PROCESSING, S.FINISHED, S.WITHDRAWAL_REQUESTED, S.STOPPED}),
    S.WITHDRAWAL_REQUESTED: frozenset({S.STOPPED}),
    S.FINISHED: frozenset({S.RETURNED}),
    S.REFUSED: frozenset(),
    S.STOPPED: frozenset(),
    S.RETURNED: frozenset(),
}


def check_transition(current: DossierStatus, new: DossierStatus) -> None:
    """Raise :class:`InvalidTransitionError` unless the procedure allows ``current → new``."""
    if new in ALLOWED_TRANSITIONS[current]:
        return
    allowed = ", ".join(f"{s.value} ({s.label_vi})" for s in sorted(ALLOWED_TRANSITIONS[current]))
    raise InvalidTransitionError(
        f"status {current.value} ({current.label_en}) cannot change to {new.value} ({new.label_en});"
        f" allowed: {allowed or 'none, the dossier is closed'}",
        message_vi=(
            f"không thể chuyển trạng thái từ {current.value} ({current.label_vi}) sang "
            f"{new.value} ({new.label_vi}); được phép: {allowed or 'không, hồ sơ đã kết thúc'}"
        ),
        details={"from": current.value, "to": new.value},
    )
