"""Dossiers for the report tests: a terse builder over the canonical model."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from schemas.dossier import Channel, Dossier, Owner, ProcessingStep, SupplementRequest
from schemas.status import DossierStatus as S
from schemas.timefmt import VN_TZ

AGENCY = "000.00.18.H42"


def at(day: str, hour: int = 9, minute: int = 0) -> datetime:
    """``2025-03-03`` at ``hour``:``minute``, Vietnam time."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), VN_TZ).replace(
        hour=hour, minute=minute
    )


def dossier(
    seq: int,
    received: datetime,
    due: datetime | None,
    steps: list[tuple[S, datetime]] = (),  # type: ignore[assignment]
    *,
    redates: list[tuple[datetime, datetime | None, datetime]] = (),  # type: ignore[assignment]
    procedure: str = "1.003901.H42",
    field: str | None = "G01",
    channel: Channel = Channel.IN_PERSON,
    agency: str = AGENCY,
    **extra: Any,
) -> Dossier:
    """A dossier received at ``received``, moved through ``steps`` (status, time) as intake
    records them (``finished_at`` = first ending status, ``returned_at``, ``refused_at``) and
    re-dated by ``redates`` (recorded at, old due, new due); the current due date is the last."""
    status = S.RECEIVED
    fields: dict[str, Any] = {}
    for new, when in steps:
        status = new
        if new is S.REFUSED:
            fields["refused_at"] = when
        if new.ends_processing and new is not S.RETURNED:
            fields.setdefault("finished_at", when)
        if new is S.RETURNED:
            fields["returned_at"] = when
    supplements = [
        SupplementRequest(
            id=f"BS{i}", requested_by="Cán bộ", content="Hẹn lại", requested_at=r, old_due_at=o, new_due_at=n
        )
        for i, (r, o, n) in enumerate(redates, start=1)
    ]
    return Dossier.model_validate(
        {
            "code": f"{agency}-{received:%y%m%d}-{seq:04d}",
            "agency_code": agency,
            "procedure_code": procedure,
            "procedure_name": f"Thủ tục {procedure}",
            "field_code": field,
            "field_name": None if field is None else f"Lĩnh vực {field}",
            "channel": channel,
            "owner": Owner(name="Nguyễn Văn An"),
            "received_at": received,
            "due_at": supplements[-1].new_due_at if supplements else due,
            "status": status,
            "steps": [
                ProcessingStep(handler="Cán bộ", at=when, content=new.label_vi, status=new)
                for new, when in steps
            ],
            "supplements": supplements,
            **fields,
            **extra,
        }
    )


#: Procedures of a department (code, field, share of dossiers, processing days).
PROCEDURES = [
    ("1.003901.H42", "G01", 0.30, 5),
    ("1.000234.H42", "G01", 0.20, 10),
    ("1.001612.H42", "G02", 0.15, 15),
    ("1.004227.H42", "G02", 0.15, 3),
    ("2.000889.H42", "G03", 0.10, 20),
    ("1.010002.H42", "G04", 0.10, 7),
]
UNITS = [AGENCY, "000.00.19.H42", "000.00.20.H42"]


def generate(count: int, year: int, seed: int = 12) -> list[Dossier]:
    """``count`` dossiers received over ``year`` with a realistic mix: mostly finished on time,
    some late, early, refused, withdrawn, re-dated (in time or not), supplements outstanding or
    answered, some still in progress; channels 55% online, 40% in person, 5% by post."""
    import random

    from hub.reports.calendar import WorkCalendar

    calendar = WorkCalendar.load()
    rng = random.Random(seed)
    out: list[Dossier] = []
    start = date(year, 1, 1).toordinal()
    days = date(year, 12, 31).toordinal() - start + 1
    weights = [p[2] for p in PROCEDURES]
    for seq in range(1, count + 1):
        code, field, _share, limit = rng.choices(PROCEDURES, weights)[0]
        day = date.fromordinal(start + rng.randrange(days))
        while not calendar.is_working(day):
            day = date.fromordinal(day.toordinal() + 1)
        received = at(day.isoformat(), rng.randrange(7, 17), rng.randrange(60))
        due = at(calendar.add_working_days(day, limit).isoformat(), 17)
        channel = rng.choices(list(Channel), [0.40, 0.55, 0.05])[0]
        steps: list[tuple[S, datetime]] = [(S.PROCESSING, received.replace(hour=17))]
        redates: list[tuple[datetime, datetime | None, datetime]] = []
        roll = rng.random()
        hours = limit * 24

        def later(base: datetime, low: float, high: float) -> datetime:
            return base + timedelta(hours=rng.uniform(low, high))

        if roll < 0.03:
            steps = [(S.REFUSED, later(received, 0, 2))]
        elif roll < 0.06:
            w = later(received, 2, hours)
            steps += [(S.WITHDRAWAL_REQUESTED, w), (S.STOPPED, later(w, 1, 48))]
        elif roll < 0.14:
            s = later(received, 2, hours * 0.8)
            steps.append((S.SUPPLEMENT_REQUESTED, s))
            if rng.random() < 0.6:  # papers come back, clock restarts with a new due date
                back = later(s, 24, 24 * 20)
                new_due = (
                    due if back < due else at(calendar.add_working_days(back.date(), limit).isoformat(), 17)
                )
                steps.append((S.PROCESSING, back))
                if new_due != due:
                    redates.append((back, due, new_due))
                    due = new_due
                steps.append((S.FINISHED, later(back, 2, (new_due - back).total_seconds() / 3600 * 1.1)))
        elif roll < 0.18:
            r = later(received, 1, hours * (1.3 if rng.random() < 0.3 else 0.9))
            new_due = r + (due - received) / 2
            redates.append((r, due, new_due))
            due = new_due
            steps.append((S.FINISHED, later(r, 1, (new_due - r).total_seconds() / 3600 * 1.05)))
        elif roll < 0.25 and day.month >= 11:
            pass  # still in progress at the end of the year
        else:
            kind = rng.random()
            if kind < 0.25:  # on the due day
                f = due.replace(hour=rng.randrange(8, 17))
            elif kind < 0.88:  # a few days early
                f = later(received, 1, max(2.0, (due - received).total_seconds() / 3600 - 24))
            else:  # late by up to a week
                f = later(due, 1, 24 * 7)
            steps.append((S.FINISHED, max(f, received + timedelta(hours=1))))
        if steps[-1][0] is S.FINISHED and rng.random() < 0.7:
            steps.append((S.RETURNED, later(steps[-1][1], 1, 96)))
        steps = [(s, w) for s, w in steps if w.year <= year + 1]
        out.append(
            dossier(
                seq,
                received,
                due if not redates else None,
                steps,
                redates=redates,
                procedure=code,
                field=field,
                channel=channel,
                agency=UNITS[seq % len(UNITS)],
            )
        )
    return out


def dossier_rows(dossiers: list[Dossier]) -> list[dict[str, Any]]:
    """``dossiers`` as rows of the ``dossiers`` table (for a direct insert)."""
    return [
        {
            "code": d.code,
            "agency_code": d.agency_code,
            "procedure_code": d.procedure_code,
            "status": d.status.value,
            "document": d.model_dump(mode="json"),
        }
        for d in dossiers
    ]
