"""``hub dlq``: inspect and repair the dead-letter queue from the command line.

``list`` (filters), ``show SEQ`` (attempts, payload revisions), ``retry SEQ`` / ``retry --all``,
``discard SEQ --reason`` / ``discard --all --reason``, ``edit SEQ --payload-file``, ``jobs``
(bulk jobs: progress, ``--cancel``), ``endpoints`` (circuit-breaker state). Every action is
audited with the actor ``cli:<user>`` (or ``--actor``). ``--all`` creates a bulk job that a
worker runs; ``--wait`` runs it here and now.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from hub.commands.option_groups import with_options
from hub.dlq.models import BulkAction, BulkJobView, DlqFilter, ViewState
from schemas.masking import mask_pii

__all__ = ["app"]

app = typer.Typer(help="Hàng đợi bản tin lỗi / dead-letter queue operations.", no_args_is_help=True)

EndpointOpt = Annotated[str | None, typer.Option(help="Only this endpoint")]
StateOpt = Annotated[ViewState | None, typer.Option(help="Message state (blocked = held by a dead one)")]
DossierOpt = Annotated[str | None, typer.Option("--dossier", help="Only this dossier code")]
ErrorOpt = Annotated[str | None, typer.Option("--error-class", help="e.g. EndpointBusyError")]
SinceOpt = Annotated[datetime | None, typer.Option(help="Changed at/after (ISO 8601, with offset)")]
UntilOpt = Annotated[datetime | None, typer.Option(help="Changed before (ISO 8601, with offset)")]
ActorOpt = Annotated[str | None, typer.Option(help="Who is acting (default cli:$USER)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
WaitOpt = Annotated[bool, typer.Option(help="With --all: run the job here instead of by a worker")]


def _db() -> Any:
    from hub.config import load_settings
    from hub.db.session import Database

    return Database.connect(load_settings().database_url, pool_size=2)


def _actor(actor: str | None) -> str:
    return actor or f"cli:{os.environ.get('USER') or os.environ.get('USERNAME') or 'unknown'}"


@dataclass(frozen=True)
class FilterOptions:
    """Which messages ``list``, ``retry --all`` and ``discard --all`` apply to."""

    endpoint: EndpointOpt = None
    state: StateOpt = ViewState.DEAD
    dossier_code: DossierOpt = None
    error_class: ErrorOpt = None
    since: SinceOpt = None
    until: UntilOpt = None

    def build(self) -> DlqFilter:
        return DlqFilter(**asdict(self))


def _echo_job(job: BulkJobView) -> None:
    typer.echo(
        f"job {job.id}: {job.action.value} {job.state.value} {job.processed}/{job.total} "
        f"by {job.created_by}" + (f" error={job.error}" if job.error else "")
    )


@app.command("list")
@with_options(matching=FilterOptions)
def list_(
    matching: FilterOptions,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List messages (dead ones by default)."""
    from hub.dlq import service

    db = _db()
    flt = matching.build()
    rows = service.list_messages(db, flt, limit=limit)
    if as_json:
        typer.echo(json.dumps([row.model_dump(mode="json") for row in rows], ensure_ascii=False, indent=2))
        return
    typer.echo(f"{service.count_messages(db, flt)} matching; showing {len(rows)}")
    for row in rows:
        typer.echo(
            f"{row.seq:>8} {row.state.value:9} {row.endpoint:14} {row.dossier_code or '-':24} "
            f"attempts={row.attempts} {row.error_class or ''}"
            + (f" blocked_by={row.blocked_by}" if row.blocked_by else "")
        )


@app.command("show")
def show(
    seq: int,
    as_json: JsonOpt = False,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="show ID and phone numbers in clear (e.g. to edit the payload)")
    ] = False,
) -> None:
    """One message with every attempt and payload revision (personal data masked unless --reveal)."""
    from hub.dlq import service

    detail = service.get_message(_db(), seq)
    shown = (lambda text: text) if reveal else mask_pii
    if as_json:
        typer.echo(shown(json.dumps(detail.model_dump(mode="json"), ensure_ascii=False, indent=2)))
        return
    typer.echo(f"message {detail.seq} ({detail.message_id}) → {detail.endpoint}, kind {detail.kind}")
    typer.echo(f"  dossier {detail.dossier_code}  state {detail.state.value}  attempts {detail.attempts}")
    if detail.last_error:
        typer.echo(shown(f"  last error [{detail.error_class}]: {detail.last_error}"))
    if detail.note:
        typer.echo(f"  note: {detail.note}")
    for attempt in detail.attempt_log:
        typer.echo(
            f"  #{attempt.attempt_no} {attempt.outcome:10} {attempt.started_at:%Y-%m-%d %H:%M:%S} "
            f"{attempt.status_code or '-'} {attempt.error_class or ''} {'(manual)' if attempt.manual else ''}"
        )
    for revision in detail.revisions:
        typer.echo(f"  revision {revision.revision} replaced by {revision.replaced_by}: {revision.reason}")
    typer.echo(shown(json.dumps(detail.payload, ensure_ascii=False, indent=2)))


def _one_or_all(
    action: BulkAction,
    seq: int | None,
    all_matching: bool,
    matching: FilterOptions,
    *,
    reason: str,
    wait: bool,
    actor: str | None,
) -> None:
    """Message ``seq``, or with ``--all`` a bulk job over every message ``matching`` selects (run
    here and now with ``--wait``, else by a worker)."""
    from hub.dlq import service

    db, who = _db(), _actor(actor)
    if all_matching:
        job = service.create_bulk_job(db, action, matching.build(), actor=who, reason=reason)
        _echo_job(job)
        if wait:
            _echo_job(service.run_bulk_job(db, job.id))
        return
    if seq is None:
        raise typer.BadParameter("give a message number or --all")
    if action is BulkAction.RETRY:
        row = service.retry_message(db, seq, actor=who, reason=reason)
        typer.echo(f"message {row.seq} queued again ({row.state.value})")
    else:
        row = service.discard_message(db, seq, actor=who, reason=reason)
        typer.echo(f"message {row.seq} discarded")


@app.command("retry")
@with_options(matching=FilterOptions)
def retry(
    matching: FilterOptions,
    seq: Annotated[int | None, typer.Argument(help="Message to retry (or --all)")] = None,
    all_matching: Annotated[bool, typer.Option("--all", help="Retry everything matching the filter")] = False,
    reason: Annotated[str, typer.Option(help="Why (audited)")] = "",
    wait: WaitOpt = False,
    actor: ActorOpt = None,
) -> None:
    """Retry one message, or every message matching a filter (bulk job)."""
    _one_or_all(BulkAction.RETRY, seq, all_matching, matching, reason=reason, wait=wait, actor=actor)


@app.command("discard")
@with_options(matching=FilterOptions)
def discard(
    reason: Annotated[str, typer.Option(help="Why (mandatory, audited)")],
    matching: FilterOptions,
    seq: Annotated[int | None, typer.Argument(help="Message to discard (or --all)")] = None,
    all_matching: Annotated[
        bool, typer.Option("--all", help="Discard everything matching the filter")
    ] = False,
    wait: WaitOpt = False,
    actor: ActorOpt = None,
) -> None:
    """Discard one message (releases its dossier's queue), or everything matching a filter."""
    _one_or_all(BulkAction.DISCARD, seq, all_matching, matching, reason=reason, wait=wait, actor=actor)


@app.command("edit")
def edit(
    seq: int,
    payload_file: Annotated[Path | None, typer.Option(help="JSON file with the new payload")] = None,
    payload: Annotated[str | None, typer.Option(help="The new payload as JSON text")] = None,
    reason: Annotated[str, typer.Option(help="Why (audited)")] = "",
    retry: Annotated[bool, typer.Option("--retry/--no-retry", help="Queue it again after editing")] = True,
    actor: ActorOpt = None,
) -> None:
    """Replace a message's payload (the original is kept as a revision) and retry it."""
    from hub.dlq import service
    from schemas.errors import InvalidInputError

    if (payload_file is None) == (payload is None):
        raise typer.BadParameter("give exactly one of --payload-file or --payload")
    text = payload_file.read_text(encoding="utf-8") if payload_file is not None else str(payload)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"the new payload is not valid JSON: {exc.msg} at line {exc.lineno}",
            message_vi="Nội dung mới không phải JSON hợp lệ",
        ) from None
    row = service.edit_message(_db(), seq, document, actor=_actor(actor), reason=reason, retry=retry)
    typer.echo(f"message {row.seq} edited ({row.state.value})")


@app.command("jobs")
def jobs(
    job_id: Annotated[int | None, typer.Argument(help="Show (cancel, resume) this job")] = None,
    cancel: Annotated[bool, typer.Option("--cancel", help="Cancel the job")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Finish a job left running by a worker that died")
    ] = False,
    actor: ActorOpt = None,
) -> None:
    """Bulk jobs and their progress."""
    from hub.dlq import service

    db = _db()
    if job_id is None:
        for job in service.list_bulk_jobs(db):
            _echo_job(job)
        return
    if cancel and resume:
        raise typer.BadParameter("--cancel and --resume exclude each other")
    if cancel:
        _echo_job(service.cancel_bulk_job(db, job_id, actor=_actor(actor)))
    elif resume:
        _echo_job(service.resume_bulk_job(db, job_id, actor=_actor(actor)))
    else:
        _echo_job(service.get_bulk_job(db, job_id))


@app.command("endpoints")
def endpoints() -> None:
    """Circuit-breaker state of each endpoint, as published by the workers."""
    from hub.dlq import service

    for health in service.endpoint_health(_db()):
        typer.echo(
            f"{health.endpoint:20} {health.state:9} failures={health.consecutive_failures} "
            f"{health.last_error or ''}"
        )


if __name__ == "__main__":  # pragma: no cover
    app()
