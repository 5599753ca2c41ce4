"""Reports for technicians and administrators (``/api/v1/reports``).

``GET /reports/outages``: when the hub's database was unreachable, the hub was not running, or
the department's software was down (:mod:`hub.services.outages`), for the usage report and for
checking a late-entry backlog against the outage it comes from (docs/architecture.md,
"Late entries").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from hub.api.deps import DatabaseDep, require_role
from hub.api.errors import error_responses
from hub.auth.keys import Principal
from hub.services.outages import OutageReport, outage_report
from schemas.timefmt import now_utc

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], responses=error_responses(401, 403, 422))

Operator = Annotated[Principal, Depends(require_role("technician", "admin"))]

#: The period reported when ``from`` is not given.
DEFAULT_PERIOD = timedelta(days=30)


@router.get("/outages", summary="Recorded outages of the hub, its database and the department's software")
def outages(
    db: DatabaseDep,
    _principal: Operator,
    from_: Annotated[
        AwareDatetime | None,
        Query(alias="from", description="Start (ISO 8601 with offset); default 30 days ago"),
    ] = None,
    to: Annotated[AwareDatetime | None, Query(description="End (ISO 8601 with offset); default now")] = None,
) -> OutageReport:
    end: datetime = to or now_utc()
    start: datetime = from_ or end - DEFAULT_PERIOD
    return outage_report(db, start, end)
