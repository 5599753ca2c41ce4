"""Many rows as one JSON parameter, for PostgreSQL's ``jsonb_to_recordset`` (docs/architecture.md,
"Intake throughput").

A multi-row ``INSERT … VALUES`` of a batch's hundreds of rows has thousands of placeholders,
which psycopg converts from ``%(name)s`` to ``$n`` with a regular expression and caches only
for statements under 4 KB and 50 parameters: converting cost more than running it. The same
rows sent as one JSON array, unpacked by ``jsonb_to_recordset(CAST(:rows AS jsonb)) AS
alias(column type, …)``, make one short statement whatever their number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

NAIVE_REFUSED = "naive datetime refused: the hub stores timezone-aware times only"


def json_rows(rows: Iterable[Mapping[str, Any]], times: tuple[str, ...]) -> str:
    """``rows`` as a JSON array, the columns ``times`` in ISO 8601 (a naive time is refused, as
    :class:`~hub.db.base.UTCDateTime` does)."""
    encoded = []
    for row in rows:
        values = dict(row)
        for name in times:
            value = values[name]
            if value.tzinfo is None:
                raise ValueError(NAIVE_REFUSED)
            values[name] = value.isoformat()
        encoded.append(values)
    return json.dumps(encoded)
