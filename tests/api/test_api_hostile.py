"""Bad input never yields a 500: malformed JSON, oversized and chunked bodies, wrong types."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from hub.db.models import DossierRow, OutboxMessage
from tests.api.livehub import LiveHub, dossier_json
from tests.rowcounts import row_counts

CREATE = "/api/v1/dossiers"


def nothing_written(hub: LiveHub) -> bool:
    return row_counts(hub.db, DossierRow, OutboxMessage) == (0, 0)


@pytest.mark.parametrize("body", [b"{", b'{"dossier": ', b"\xff\xfe", b'{"dossier": {}}}', b"[1,2"])
def test_malformed_json_is_400(hub: LiveHub, body: bytes) -> None:
    with hub.client("source") as client:
        response = client.post(CREATE, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["code"] in ("malformed_json", "invalid_input")
    assert nothing_written(hub)


def test_truncated_json_names_the_problem(hub: LiveHub) -> None:
    with hub.client("source") as client:
        response = client.post(CREATE, content=b'{"dossier": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_declared_oversized_body_is_413_before_reading(hub: LiveHub) -> None:
    limit = hub.settings.api.max_body_bytes
    with hub.client("source") as client:
        response = client.post(
            CREATE, content=b"{" + b" " * limit + b"}", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["error"]["details"]["limit"] == limit
    assert nothing_written(hub)


def test_chunked_oversized_body_is_cut_off(hub: LiveHub) -> None:
    limit = hub.settings.api.max_body_bytes
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"dossier": "'
        for _ in range(limit // 1024 * 4):
            sent += 1024
            yield b"a" * 1024
        yield b'"}'

    with hub.client("source") as client:
        try:
            response = client.post(CREATE, content=chunks(), headers={"Content-Type": "application/json"})
        except httpx.TransportError:
            pytest.fail("connection dropped instead of a 413 answer")
    assert response.status_code == 413
    assert nothing_written(hub)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_wrong_content_type_is_415(hub: LiveHub, content_type: str) -> None:
    with hub.client("source") as client:
        response = client.post(CREATE, content=b'{"dossier": {}}', headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_unknown_fields_are_422_with_paths(hub: LiveHub) -> None:
    dossier = dossier_json(nickname="x")
    with hub.client("source") as client:
        response = client.post(CREATE, json={"dossier": dossier, "extra": 1})
    assert response.status_code == 422
    locations = {e["loc"] for e in response.json()["error"]["details"]["errors"]}
    assert {"body.dossier.nickname", "body.extra"} <= locations
    assert nothing_written(hub)


def test_validation_errors_do_not_echo_personal_data(hub: LiveHub) -> None:
    dossier = dossier_json(owner={"name": "Phạm Văn Dũng", "id_number": "0010990123456789012345"})
    with hub.client("source") as client:
        response = client.post(CREATE, json={"dossier": dossier})
    assert response.status_code == 422
    assert "0010990123456789012345" not in response.text


@pytest.mark.parametrize(
    "bad_code",
    ["000.00.18.H42-251325-0001", "H42-1", "000.00.18.H42-251125-1", "x" * 300, "'; DROP TABLE dossiers;--"],
)
def test_invalid_dossier_code_is_422(hub: LiveHub, bad_code: str) -> None:
    with hub.client("source") as client:
        in_body = client.post(CREATE, json={"dossier": dossier_json(code=bad_code)})
        in_path = client.get(f"/api/v1/dossiers/{bad_code}")
    assert in_body.status_code == 422
    assert in_path.status_code == 422
    assert in_path.json()["error"]["code"] == "invalid_input"
    assert "mã hồ sơ" in in_path.json()["error"]["message_vi"]


def test_wrong_types_and_naive_datetimes(hub: LiveHub) -> None:
    with hub.client("source") as client:
        naive = client.post(CREATE, json={"dossier": dossier_json(received_at="2025-11-25T08:05:00")})
        wrong = client.post(CREATE, json={"dossier": dossier_json(status="processing")})
        missing = client.post(CREATE, headers={"Content-Type": "application/json"})
        not_object = client.post(CREATE, json=[1, 2, 3])
    for response in (naive, wrong, missing, not_object):
        assert response.status_code == 422, response.text
    assert nothing_written(hub)


def test_idempotency_key_too_long_is_422(hub: LiveHub) -> None:
    with hub.client("source", headers={"Idempotency-Key": "k" * 201}) as client:
        response = client.post(CREATE, json={"dossier": dossier_json()})
    assert response.status_code == 422
    assert nothing_written(hub)


def test_unknown_route_and_method_keep_the_error_shape(hub: LiveHub) -> None:
    with hub.client("source") as client:
        missing = client.get("/api/v1/nothing-here")
        method = client.delete(CREATE)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert method.status_code == 405
    assert method.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "body",
    [
        {"dossier": dossier_json(owner={"name": "Nguyễn\u0000An"})},
        {"dossier": dossier_json(summary="tóm tắt\u0000")},
        {"dossier": dossier_json(), "version": 10**30},
    ],
)
def test_values_the_database_cannot_hold_are_422_on_every_backend(
    hub: LiveHub, body: dict[str, object]
) -> None:
    with hub.client("source") as client:
        response = client.post(CREATE, json=body)
        follow_up = client.get("/healthz")  # the connection and the server are still fine
    assert response.status_code == 422, response.text
    assert follow_up.status_code == 200
    assert nothing_written(hub)


def test_escaped_backslash_before_u0000_is_plain_text(hub: LiveHub) -> None:
    dossier = dossier_json(summary="đường dẫn C:\\u0000\\tệp")  # a literal backslash, then "u0000"
    with hub.client("source") as client:
        response = client.post(CREATE, json={"dossier": dossier})
    assert response.status_code == 201, response.text


def test_deeply_nested_json_is_a_client_error(hub: LiveHub) -> None:
    with hub.client("source") as client:
        response = client.post(
            CREATE, content=b"[" * 30000 + b"]" * 30000, headers={"Content-Type": "application/json"}
        )
    assert 400 <= response.status_code < 500


def test_large_declared_body_gets_a_readable_413(hub: LiveHub) -> None:
    limit = hub.settings.api.max_body_bytes
    with hub.client("source") as client:
        response = client.post(
            CREATE, content=b"x" * (limit * 8), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413


@pytest.mark.parametrize("day", ["1999-12-31", "2100-01-01", "9999-12-31"])
def test_code_allocation_refuses_days_outside_the_yymmdd_range(hub: LiveHub, day: str) -> None:
    with hub.client("source") as client:
        response = client.post("/api/v1/dossier-codes", json={"agency_code": "000.00.18.H42", "day": day})
    assert response.status_code == 422
