"""``report_dossiers``: the narrow, indexed projection the on-time reports aggregate over.

One row per dossier, written by intake in the same transaction as the dossier
(:func:`hub.reports.projection.project_dossiers`) and backfilled by migration 0009: the
dossier's grouping keys and the times of :class:`hub.reports.ontime.DossierFacts`, so a report
is one ``GROUP BY`` over this table, never a parse of the JSON documents (docs/reports.md §3).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base


class ReportDossier(Base):
    __tablename__ = "report_dossiers"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    agency_code: Mapped[str] = mapped_column(String(40))
    procedure_code: Mapped[str] = mapped_column(String(40))
    procedure_name: Mapped[str | None] = mapped_column(Text)
    field_code: Mapped[str | None] = mapped_column(String(100))
    field_name: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[int] = mapped_column(SmallInteger)
    received_at: Mapped[datetime] = mapped_column()
    #: The due date in force for the statistics (re-dating rule, docs/reports.md §2.3).
    due_at: Mapped[datetime | None] = mapped_column()
    #: ``NgayKetThucXuLy``: end of processing, and how (1 finished, 2 refused, 3 withdrawn).
    end_at: Mapped[datetime | None] = mapped_column()
    end_kind: Mapped[int | None] = mapped_column(SmallInteger)
    #: Vietnam-time dates of ``end_at`` / ``due_at`` as day numbers (``date.toordinal``), for
    #: the early/on-time split by working days.
    end_day: Mapped[int | None] = mapped_column(Integer)
    due_day: Mapped[int | None] = mapped_column(Integer)
    #: The last supplement round (status 5): its start, and its close (``NULL`` while open).
    supplement_from: Mapped[datetime | None] = mapped_column()
    supplement_until: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_report_dossiers_received_at", "received_at"),
        Index("ix_report_dossiers_end_at", "end_at"),
    )


class ReportExportRun(Base):
    """One scheduled export of one period (docs/reports.md §10): the row is the claim. The
    unique ``(schedule, period)`` lets exactly one runner insert it, so two runners racing (cron
    on two hosts, several workers) export a period once."""

    __tablename__ = "report_export_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule: Mapped[str] = mapped_column(String(40))
    #: The period exported: ``2026-11``, ``2026-Q3`` or ``2026``.
    period: Mapped[str] = mapped_column(String(7))
    #: ``running`` (claimed), ``done``, ``failed`` (claimed again by a later run).
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    claimed_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    #: ``folder:<path of the file>`` or ``endpoint:<name>#<outbox seq>``.
    target: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("schedule", "period"),)
