"""Bindings of server-held signing keys to accounts, set by an admin (docs/security.md,
"Signing keys bound to accounts"), and the console's batch-signing jobs.

A row lets one principal — ``user:<username>`` (a console account and the API keys tied to it)
or an API key's name — use one key of ``[signing.keys]``. The key's purpose stays in the
configuration; the effective principals of a key are its configured ``principals`` and its rows
here (:class:`hub.services.key_bindings.BoundGrants`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base, JsonDocument, utcnow


class SigningKeyBinding(Base):
    __tablename__ = "signing_key_bindings"

    key_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    principal: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: The admin who bound it (``user:<username>`` in the console, ``cli:<login>`` from the CLI).
    bound_by: Mapped[str] = mapped_column(String(100))
    bound_at: Mapped[datetime] = mapped_column(default=utcnow)


class SigningBatchJob(Base):
    """An officer's batch signature over several drafts with one key (the console's desk;
    :class:`hub.services.signing_batches.BatchJobs`).

    A row, not process memory, so that any API process (``hub serve --processes N``) shows its
    progress and takes its cancellation, and a restart keeps its page. The process that started
    it signs the drafts one after another and writes ``items`` after each one."""

    __tablename__ = "signing_batch_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: The officer's account; another account's job is as unknown as a missing one.
    owner: Mapped[str] = mapped_column(String(100), index=True)
    key_id: Mapped[str] = mapped_column(String(100))
    #: running | done | cancelled (an interrupted run stays ``running``; readers tell it apart).
    state: Mapped[str] = mapped_column(String(20), default="running")
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    #: One object per draft: file_id, name, dossier_code, outcome, error, output_file_id.
    items: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)
    #: ``host:pid`` of the process signing them.
    runner: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Written with every document's outcome: a running job not updated for long was interrupted.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
