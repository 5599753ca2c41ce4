"""Late entries: work done by hand while the hub or the department's software was down.

Decision 692/QĐ-SNN Art. 13.2 asks the unit to keep working on paper during an outage and to
enter everything as soon as the system is back. A status change, step or re-dating sent with
a ``late_entry`` object (:class:`schemas.changes.LateEntry`) is such an event: its ``at`` is
the real time it happened, and the hub

* bounds it: not in the future, not older than ``intake.late_entry_window_days`` (422);
* places it after everything already recorded for the dossier, or refuses it (409, nothing
  stored, naming the recorded event it would precede). The state the dossier was in at the
  event's real time is then its recorded state, and the procedure's transition rule
  (:mod:`schemas.status`) is checked from it. Slotting an event before recorded ones would
  rewrite the history those were checked against, and its message would reach the portals
  after theirs (the outbox keeps each dossier's messages in order, docs/delivery.md §6);
* stores the real time where the figures read it (the step's ``at``, the dossier's
  ``finished_at``/``returned_at``/``refused_at``, the re-dating record), so a dossier returned
  on time on paper counts on time, and marks the step (:class:`schemas.dossier.LateEntryMark`);
* writes one audit row per late entry (:data:`AUDIT_ACTION`: event, real time, entry time);
* applies the late entries of one dossier in a batch in real-time order
  (:func:`application_order`), so their messages are enqueued, and delivered, in that order.

Changes without ``late_entry`` never reach this module (intake's hot path is unchanged).
docs/architecture.md, "Late entries".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.changes import DueDateChange, LateEntry, StatusChange, StepAdd
from schemas.dossier import Dossier, LateEntryMark, ProcessingStep
from schemas.errors import ConflictError, InvalidInputError
from schemas.status import ALLOWED_TRANSITIONS
from schemas.timefmt import iso_vn, now_utc

#: The audit action of a late entry (one row each, besides the change's own row).
AUDIT_ACTION = "dossier.late_entry"

#: A command that may be entered late.
LateCommand = StatusChange | StepAdd | DueDateChange


class LateEntryConflictError(ConflictError):
    """A late entry that contradicts the dossier's recorded history (409, nothing stored)."""

    code = "late_entry_conflict"


def occurred_at(command: LateCommand) -> datetime:
    """The real time of the event a command records."""
    return command.step.at if isinstance(command, StepAdd) else command.at


def _event_name(command: LateCommand) -> str:
    if isinstance(command, StatusChange):
        return f"status {command.status.value}"
    if isinstance(command, StepAdd):
        return "step"
    return "due date"


def last_recorded_event(dossier: Dossier) -> tuple[datetime, str]:
    """The latest event recorded for ``dossier`` (its time, and a name for messages): the
    receipt, submission, end dates, re-dating or supplement records, and steps."""
    events: list[tuple[datetime, str]] = [(dossier.received_at, "receipt (received_at)")]
    for name in ("submitted_at", "refused_at", "finished_at", "returned_at"):
        value = getattr(dossier, name)
        if value is not None:
            events.append((value, name))
    for supplement in dossier.supplements:
        events.append((supplement.requested_at, f"supplement record {supplement.id}"))
        if supplement.received_at is not None:
            events.append((supplement.received_at, f"supplement record {supplement.id} (received)"))
    for step in dossier.steps:
        events.append((step.at, f"step '{step.content}' (status {step.status.value})"))
    return max(events, key=lambda event: event[0])


def _same_step(a: ProcessingStep, b: ProcessingStep) -> bool:
    return a.model_copy(update={"late_entry": None}) == b.model_copy(update={"late_entry": None})


@dataclass(frozen=True, slots=True)
class LateEntryPolicy:
    """The bounds of a late entry (``intake.late_entry_window_days``) and the clock."""

    window: timedelta
    clock: Callable[[], datetime] = now_utc

    @classmethod
    def from_days(cls, days: int) -> LateEntryPolicy:
        return cls(timedelta(days=days))

    def admit(
        self, dossier: Dossier, command: LateCommand, entry: LateEntry, actor: str
    ) -> tuple[LateEntryMark, dict[str, Any]] | None:
        """Check a late ``command`` against its bounds and ``dossier``'s recorded history;
        returns the mark for its step and the audit details (``None``: a step already
        recorded, a no-op like any repeated step). Raises 422 out of bounds, 409 on a
        contradiction."""
        now = self.clock()
        at = occurred_at(command)
        if isinstance(command, StepAdd) and any(_same_step(command.step, s) for s in dossier.steps):
            return None
        self._check_bounds(at, now)
        self._check_order(dossier, command, at)
        mark = LateEntryMark(entered_by=entry.entered_by or actor, entered_at=now, reason=entry.reason)
        details = {
            "event": _event_name(command),
            "occurred_at": iso_vn(at),
            "entered_at": iso_vn(now),
            "entered_by": mark.entered_by,
            "reason": entry.reason,
        }
        return mark, details

    def _check_bounds(self, at: datetime, now: datetime) -> None:
        if at > now:
            raise InvalidInputError(
                f"a late entry happened in the past; its time {iso_vn(at)} is in the future",
                message_vi=f"sự kiện nhập bổ sung phải đã xảy ra; thời điểm {iso_vn(at)} ở tương lai",
                details={"occurred_at": iso_vn(at), "now": iso_vn(now)},
            )
        earliest = now - self.window
        if at < earliest:
            days = self.window.days
            raise InvalidInputError(
                f"a late entry may go back at most {days} days (intake.late_entry_window_days); "
                f"{iso_vn(at)} is before {iso_vn(earliest)}",
                message_vi=(
                    f"chỉ được nhập bổ sung sự kiện trong vòng {days} ngày; "
                    f"{iso_vn(at)} trước {iso_vn(earliest)}"
                ),
                details={"occurred_at": iso_vn(at), "earliest": iso_vn(earliest), "window_days": days},
            )

    @staticmethod
    def _check_order(dossier: Dossier, command: LateCommand, at: datetime) -> None:
        """After everything recorded; a status change allowed from the state at ``at``."""
        last_at, last_name = last_recorded_event(dossier)
        if at < last_at:
            raise LateEntryConflictError(
                f"late entry at {iso_vn(at)} contradicts the recorded history of dossier "
                f"{dossier.code}: its {last_name} at {iso_vn(last_at)} comes after it. Late "
                "entries go after everything recorded for the dossier: enter the backlog in "
                "time order, before new work on it",
                message_vi=(
                    f"sự kiện nhập bổ sung lúc {iso_vn(at)} mâu thuẫn với lịch sử đã ghi của hồ sơ "
                    f"{dossier.code}: sự kiện đã ghi ({last_name}) lúc {iso_vn(last_at)} xảy ra sau; "
                    "hãy nhập bổ sung theo thứ tự thời gian, trước các xử lý mới"
                ),
                details={
                    "occurred_at": iso_vn(at),
                    "recorded_event": last_name,
                    "recorded_at": iso_vn(last_at),
                },
            )
        state = dossier.status  # at or after the last recorded event: the recorded state
        if isinstance(command, StatusChange) and command.status not in ALLOWED_TRANSITIONS[state]:
            raise LateEntryConflictError(
                f"late entry of status {command.status.value} ({command.status.label_en}) at "
                f"{iso_vn(at)}: dossier {dossier.code} was then in status {state.value} "
                f"({state.label_en}), from which the procedure does not allow it",
                message_vi=(
                    f"không thể nhập bổ sung trạng thái {command.status.value} lúc {iso_vn(at)}: "
                    f"khi đó hồ sơ {dossier.code} ở trạng thái {state.value} ({state.label_vi})"
                ),
                details={"occurred_at": iso_vn(at), "from": state.value, "to": command.status.value},
            )
        if isinstance(command, StepAdd) and command.step.status is not state:
            raise LateEntryConflictError(
                f"late step at {iso_vn(at)} says status {command.step.status.value}, but dossier "
                f"{dossier.code} was then in status {state.value} ({state.label_en}); a status "
                "changes through a status change",
                message_vi=(
                    f"bước xử lý nhập bổ sung lúc {iso_vn(at)} ghi trạng thái "
                    f"{command.step.status.value}, nhưng khi đó hồ sơ ở trạng thái {state.value}"
                ),
                details={
                    "occurred_at": iso_vn(at),
                    "state": state.value,
                    "step_status": command.step.status.value,
                },
            )


def mark_steps(steps: Sequence[ProcessingStep], mark: LateEntryMark) -> None:
    """Put the late-entry mark on the steps a late change recorded."""
    for step in steps:
        step.late_entry = mark


def refuse_sent_marks(steps: Sequence[ProcessingStep]) -> None:
    """Only the hub marks a step as entered late (after its checks): refuse a sent mark (422)."""
    if any(step.late_entry is not None for step in steps):
        raise InvalidInputError(
            "steps cannot carry late_entry: send the change with a late_entry object "
            "(POST /api/v1/dossiers/{code}/status or /steps) and the hub marks the step",
            message_vi="bước xử lý không được tự ghi late_entry; hãy gửi thay đổi kèm đối tượng late_entry",
        )


def application_order(changes: Sequence[object], codes: Sequence[str]) -> list[int]:
    """The order a batch's changes are applied in: as sent, except that the late entries of
    each dossier take the places of that dossier's late entries in real-time order (stable
    for equal times), so their messages are enqueued in real-time order."""
    slots: dict[str, list[int]] = {}
    for index, change in enumerate(changes):
        if getattr(change, "late_entry", None) is not None:
            slots.setdefault(codes[index], []).append(index)
    order = list(range(len(changes)))
    for indices in slots.values():
        if len(indices) > 1:
            by_time = sorted(indices, key=lambda index: occurred_at(changes[index]))  # type: ignore[arg-type]
            for slot, index in zip(indices, by_time, strict=True):
                order[slot] = index
    return order
