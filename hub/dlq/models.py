"""Views and filters of the dead-letter operations (what the API and the CLI show)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.outbox.identity import MessageIdentity
from hub.outbox.transitions import AttemptOutcome


class ViewState(enum.StrEnum):
    """Message states as operators see them; ``blocked`` = pending behind a dead message."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    DEAD = "dead"
    DISCARDED = "discarded"
    BLOCKED = "blocked"


class BulkAction(enum.StrEnum):
    RETRY = "retry"
    DISCARD = "discard"


class BulkState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class DlqFilter(BaseModel):
    """Which messages an operation applies to; unset fields match everything."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = None
    state: ViewState | None = ViewState.DEAD
    dossier_code: str | None = None
    error_class: str | None = None
    since: datetime | None = None
    """Last change at or after this time."""
    until: datetime | None = None
    """Last change before this time."""
    error_text: str | None = Field(default=None, max_length=200)
    """Text found in the last error (case-insensitive for ASCII letters)."""

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must carry a time zone (e.g. +07:00)")
        return value


class SortKey(enum.StrEnum):
    """Columns the message list may be sorted by."""

    SEQ = "seq"
    UPDATED = "updated_at"
    ENDPOINT = "endpoint"
    DOSSIER = "dossier_code"
    ERROR_CLASS = "error_class"
    ATTEMPTS = "attempts"


class MessageSummary(BaseModel, MessageIdentity):  # its first fields: hub/outbox/identity.py
    """Read from an ``OutboxMessage`` row (``from_attributes``): the fields are its columns."""

    model_config = ConfigDict(from_attributes=True)

    state: ViewState
    attempts: int
    error_class: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    dead_at: datetime | None
    delivered_at: datetime | None
    blocked_by: int | None = None
    """For a blocked message: the seq of the dead message holding its dossier's queue."""
    note: str | None = None


class AttemptView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt_no: int
    outcome: AttemptOutcome
    manual: bool
    worker_id: str
    started_at: datetime
    finished_at: datetime
    status_code: int | None
    error_class: str | None
    error: str | None
    request_summary: str | None
    response_summary: str | None


class RevisionView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    revision: int
    payload: dict[str, Any]
    replaced_by: str
    replaced_at: datetime
    reason: str


class MessageDetail(MessageSummary):
    payload: dict[str, Any]
    attempt_log: list[AttemptView] = Field(default_factory=list)
    revisions: list[RevisionView] = Field(default_factory=list)


class BulkJobView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    action: BulkAction
    filter: DlqFilter
    reason: str
    state: BulkState
    total: int
    processed: int
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    error: str | None


class EndpointHealthView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    endpoint: str
    state: str
    consecutive_failures: int
    opened_at: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    updated_at: datetime
