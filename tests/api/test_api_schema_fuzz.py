"""Schemathesis over every operation of the OpenAPI document, against a real server with an
admin key (admin passes every role check, so every handler is reached): whatever it sends,
positive and negative cases, no answer is a server error (docs/security.md §4). The hub runs
without server-held signing keys, so the routes that need them answer 503 ``not_configured``;
those answers are counted apart, any other 5xx fails the test.

The figures (requests sent, server errors) are printed at the end; run with ``-s`` to see them.
"""

from __future__ import annotations

from collections import Counter

import hypothesis
import hypothesis.errors
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis.generation import GenerationMode

from hub.api.access_matrix import app_routes
from tests.api.livehub import LiveHub

#: Cases per operation and mode; ~40 operations × 2 modes × this many requests in all.
EXAMPLES = 15


def _not_configured(response: requests.Response) -> bool:
    """503 ``not_configured``: this deployment has no server-held signing keys (a documented
    answer, not a failure; the signing tests fuzz nothing but cover those paths with keys)."""
    try:
        return bool(response.json()["error"]["code"] == "not_configured")
    except (ValueError, KeyError, TypeError):
        return False


def test_every_operation_answers_without_server_errors(full_hub: LiveHub) -> None:
    schema = schemathesis.openapi.from_url(f"{full_hub.base_url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {(op.path, op.method.upper()) for op in operations}
    served = {(path, method) for path, route in app_routes(full_hub.app) for method in route.methods}
    served -= {(path, "HEAD") for path, _ in served}
    assert documented == served, "every served route is in the OpenAPI document and fuzzed"

    headers = {"Authorization": f"Bearer {full_hub.tokens['admin']}"}
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []
    without_negative: list[str] = []
    not_configured: set[str] = set()
    with requests.Session() as session:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @hypothesis.settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def call(case: schemathesis.Case) -> None:
                    response = case.call(base_url=full_hub.base_url, session=session, headers=headers)
                    statuses[response.status_code] += 1
                    if response.status_code == 503 and _not_configured(response):
                        not_configured.add(f"{case.method} {case.path}")
                    elif response.status_code >= 500:
                        answer = f"{response.status_code}: {response.text[:200]}"
                        server_errors.append(f"{case.method} {case.formatted_path} → {answer}")

                try:
                    call()
                except hypothesis.errors.Unsatisfiable:
                    # Nothing to break (no parameters, no body): only positive cases exist.
                    assert mode is GenerationMode.NEGATIVE, operation.label
                    without_negative.append(operation.label)
    requests_sent = sum(statuses.values())
    print(
        f"\nschemathesis: {len(operations)} operations, {requests_sent} requests, "
        f"{len(server_errors)} server errors; statuses {dict(sorted(statuses.items()))}; "
        f"no negative cases for {without_negative}; 503 not_configured from {sorted(not_configured)}"
    )
    assert server_errors == []
    assert requests_sent >= len(operations) * 2
