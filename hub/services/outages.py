"""Outages: when the hub, its database or the department's software was down.

Decision 692/QĐ-SNN Art. 13.2 has the unit work by hand during an outage and enter the work
afterwards (late entries, :mod:`hub.services.late_entry`); the outage itself is recorded so the
usage report shows it (docs/architecture.md, "Late entries"):

* ``database`` — a hub process found the database unreachable
  (:class:`~hub.db.availability.OutageReporter`); written once the database is back;
* ``hub`` — no hub process was running: every process records its run in ``hub_runs``
  (start, a sign of life every ``outages.heartbeat_seconds``, stop); a process starting after
  a gap longer than ``outages.min_gap_seconds`` since the last sign of life of any run records
  that gap (its start is known to within the heartbeat interval);
* ``department`` (or any of the three) — added by an operator (``hub outage add``), audited.

Several processes may record the same outage: the report merges overlapping periods of one
kind (:func:`outage_report`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import func, insert, select, update

from hub.audit.log import record
from hub.config import OutageSettings
from hub.db.availability import OutageReporter, OutageSpan
from hub.db.models import HubRun, OutageRow
from hub.db.session import Database
from schemas.errors import InvalidInputError
from schemas.timefmt import now_utc

log = logging.getLogger("hub.outages")

#: ``recorded_by`` of the outages a hub process records itself.
RECORDED_BY_HUB = "hub"


class OutageKind(StrEnum):
    DATABASE = "database"
    """The hub's database was unreachable."""
    HUB = "hub"
    """No hub process was running."""
    DEPARTMENT = "department"
    """The department's one-stop software was down (added by an operator)."""


class OutageView(BaseModel):
    kind: OutageKind
    started_at: datetime
    ended_at: datetime
    seconds: float
    reasons: list[str]
    recorded_by: list[str]


class OutageReport(BaseModel):
    """Outages overlapping ``[start, end)``, clipped to it; overlapping periods of a kind merged."""

    start: datetime
    end: datetime
    outages: list[OutageView]
    seconds_by_kind: dict[str, float]


# --- recording ------------------------------------------------------------------------------------


def record_outages(db: Database, kind: OutageKind, spans: Sequence[OutageSpan], recorded_by: str) -> None:
    """Insert ``spans`` as outages of ``kind`` (one transaction)."""
    if not spans:
        return
    rows = [
        {
            "kind": kind.value,
            "started_at": span.started_at,
            "ended_at": span.ended_at,
            "reason": span.reason,
            "recorded_by": recorded_by,
            "recorded_at": now_utc(),
        }
        for span in spans
    ]
    with db.transaction() as session:
        session.execute(insert(OutageRow), rows)


def add_outage(
    db: Database, kind: OutageKind, started_at: datetime, ended_at: datetime, reason: str, actor: str
) -> int:
    """An operator records an outage (``hub outage add``), audited; returns its id."""
    if started_at.tzinfo is None or ended_at.tzinfo is None:
        raise InvalidInputError(
            "outage times need a UTC offset (e.g. 2026-03-05T08:00:00+07:00)",
            message_vi="thời điểm phải có múi giờ",
        )
    if ended_at <= started_at:
        raise InvalidInputError(
            "an outage ends after it starts", message_vi="thời điểm kết thúc phải sau bắt đầu"
        )
    if ended_at > now_utc():
        raise InvalidInputError(
            "an outage is recorded once it is over: its end is in the future",
            message_vi="chỉ ghi nhận sự cố đã kết thúc",
        )
    if not reason.strip():
        raise InvalidInputError("say why (--reason)", message_vi="cần nêu lý do")
    with db.transaction() as session:
        outage_id = session.execute(
            insert(OutageRow)
            .values(
                kind=kind.value,
                started_at=started_at,
                ended_at=ended_at,
                reason=reason.strip(),
                recorded_by=actor,
                recorded_at=now_utc(),
            )
            .returning(OutageRow.id)
        ).scalar_one()
        details = {
            "id": outage_id,
            "kind": kind.value,
            "started_at": started_at.isoformat(),
            "ended_at": ended_at.isoformat(),
            "reason": reason.strip(),
        }
        record(session, actor=actor, action="outage.add", target=f"outage:{outage_id}", details=details)
    return int(outage_id)


def start_run(db: Database, kind: str, settings: OutageSettings, now: datetime | None = None) -> int:
    """Register a starting hub process; first, record the gap since the last sign of life of
    any run as an outage of the hub when it is longer than ``settings.min_gap_seconds``."""
    now = now or now_utc()
    with db.transaction() as session:
        last = session.scalar(select(func.max(func.coalesce(HubRun.stopped_at, HubRun.last_seen_at))))
        alive = session.scalar(select(func.max(HubRun.last_seen_at)))
        if last is not None and alive is not None:
            last = max(last, alive)
        if last is not None and (now - last).total_seconds() > settings.min_gap_seconds:
            session.execute(
                insert(OutageRow).values(
                    kind=OutageKind.HUB.value,
                    started_at=last,
                    ended_at=now,
                    reason="no hub process was running",
                    recorded_by=RECORDED_BY_HUB,
                    recorded_at=now,
                )
            )
            log.warning("hub was not running for %.0f s: recorded as an outage", (now - last).total_seconds())
        run_id = session.execute(
            insert(HubRun)
            .values(kind=kind, host=socket.gethostname(), pid=os.getpid(), started_at=now, last_seen_at=now)
            .returning(HubRun.id)
        ).scalar_one()
    return int(run_id)


def touch_run(db: Database, run_id: int, *, stopped: bool = False) -> None:
    """A sign of life of run ``run_id`` (or its stop)."""
    now = now_utc()
    values: dict[str, datetime] = {"last_seen_at": now}
    if stopped:
        values["stopped_at"] = now
    with db.transaction() as session:
        session.execute(update(HubRun).where(HubRun.id == run_id).values(values))


class OutageRecorder:
    """The task of a running hub process: its run's signs of life, and its database outages
    written once the database is back. Failures are reported to the process's
    :class:`OutageReporter` and tried again at the next beat."""

    def __init__(self, db: Database, settings: OutageSettings, reporter: OutageReporter, kind: str) -> None:
        self._db = db
        self._settings = settings
        self._reporter = reporter
        self._kind = kind
        self.run_id: int | None = None

    def start(self) -> None:
        self.run_id = start_run(self._db, self._kind, self._settings)

    def beat(self) -> None:
        """Record this run alive and the database outages closed since the last beat."""
        spans = self._reporter.take_closed()
        try:
            if self.run_id is not None:
                touch_run(self._db, self.run_id)
            record_outages(self._db, OutageKind.DATABASE, spans, RECORDED_BY_HUB)
        except Exception as exc:  # noqa: BLE001  # the database is down again: keep them for later
            self._reporter.put_back(spans)
            self._reporter.failed("outage record", exc)
        else:
            self._reporter.succeeded("outage record")

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with_timeout = asyncio.ensure_future(stop.wait())
            await asyncio.wait([with_timeout], timeout=self._settings.heartbeat_seconds)
            with_timeout.cancel()
            await asyncio.to_thread(self.beat)

    def stop(self) -> None:
        """Record the stop (and any outage not written yet); a failure is only logged."""
        spans = self._reporter.take_closed()
        try:
            record_outages(self._db, OutageKind.DATABASE, spans, RECORDED_BY_HUB)
            if self.run_id is not None:
                touch_run(self._db, self.run_id, stopped=True)
        except Exception as exc:  # noqa: BLE001  # stopping anyway; the next start sees the gap
            log.warning("could not record the stop of this hub process: %s", exc)


# --- reporting --------------------------------------------------------------------------------------


def outage_report(db: Database, start: datetime, end: datetime) -> OutageReport:
    """Outages overlapping ``[start, end)``: clipped to it, overlapping periods of one kind
    merged (several processes record one database outage), with the total per kind."""
    if end <= start:
        raise InvalidInputError("'to' must be after 'from'", message_vi="'to' phải sau 'from'")
    with db.sessions() as session:
        rows = session.execute(
            select(
                OutageRow.kind,
                OutageRow.started_at,
                OutageRow.ended_at,
                OutageRow.reason,
                OutageRow.recorded_by,
            )
            .where(OutageRow.started_at < end, OutageRow.ended_at > start)
            .order_by(OutageRow.kind, OutageRow.started_at)
        ).all()
    merged: list[OutageView] = []
    for row in rows:
        begin, finish = max(row.started_at, start), min(row.ended_at, end)
        last = merged[-1] if merged else None
        if last is not None and last.kind == row.kind and begin <= last.ended_at:
            last.ended_at = max(last.ended_at, finish)
            if row.reason and row.reason not in last.reasons:
                last.reasons.append(row.reason)
            if row.recorded_by not in last.recorded_by:
                last.recorded_by.append(row.recorded_by)
            continue
        merged.append(
            OutageView(
                kind=OutageKind(row.kind),
                started_at=begin,
                ended_at=finish,
                seconds=0,
                reasons=[row.reason] if row.reason else [],
                recorded_by=[row.recorded_by],
            )
        )
    totals: dict[str, float] = {kind.value: 0.0 for kind in OutageKind}
    for view in merged:
        view.seconds = (view.ended_at - view.started_at).total_seconds()
        totals[view.kind.value] += view.seconds
    merged.sort(key=lambda view: view.started_at)
    return OutageReport(start=start, end=end, outages=merged, seconds_by_kind=totals)
