"""Keeping ``report_dossiers`` in step with the dossiers (docs/reports.md §3).

:func:`project_dossiers` is intake's one hook: the facts of every dossier a transaction held
are upserted by one statement on the transaction's connection, so a dossier and its report row
commit together. :func:`rebuild` recomputes every row (after a rule change; migration 0009
backfills with it).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.db.models import DossierRow
from hub.reports.models import ReportDossier
from hub.reports.ontime import DossierFacts, facts_of
from schemas.dossier import Dossier

_COLUMNS = [c.name for c in ReportDossier.__table__.columns if c.name != "code"]


def fact_row(facts: DossierFacts) -> dict[str, Any]:
    return {
        "code": facts.code,
        "agency_code": facts.agency_code,
        "procedure_code": facts.procedure_code,
        "procedure_name": facts.procedure_name,
        "field_code": facts.field_code,
        "field_name": facts.field_name,
        "channel": facts.channel,
        "received_at": facts.received_at,
        "due_at": facts.due_at,
        "end_at": facts.end_at,
        "end_kind": None if facts.end_kind is None else int(facts.end_kind),
        "end_day": facts.end_day,
        "due_day": facts.due_day,
        "supplement_from": facts.supplement_from,
        "supplement_until": facts.supplement_until,
    }


@functools.cache
def _upsert(dialect: str) -> Executable:
    """``INSERT … ON CONFLICT (code) DO UPDATE`` of report rows, built once per dialect."""
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(ReportDossier)
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[ReportDossier.code],
        set_={name: statement.excluded[name] for name in _COLUMNS},
    )
    return upsert


def upsert_rows(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Write report rows made by :func:`fact_row` (one statement for all of them)."""
    if rows:
        connection.execute(_upsert(connection.dialect.name), list(rows))


def project_dossiers(connection: Connection, dossiers: Iterable[Dossier]) -> None:
    """Upsert the report rows of ``dossiers``."""
    upsert_rows(connection, list({d.code: fact_row(facts_of(d)) for d in dossiers}.values()))


def rebuild(connection: Connection, batch: int = 1000) -> int:
    """Recompute the report row of every stored dossier; the number of dossiers."""
    done = 0
    last_id = 0
    while True:
        chunk = connection.execute(DossierRow.page(last_id, batch, DossierRow.document)).all()
        if not chunk:
            return done
        project_dossiers(connection, (Dossier.model_validate(row.document) for row in chunk))
        last_id = chunk[-1].id
        done += len(chunk)
