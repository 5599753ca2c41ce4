"""The LGSP's REST flavour (WSO2 API Manager shape) and its OAuth2 ``/token`` endpoint.

``POST /token`` issues bearer tokens for the client-credentials grant (RFC 6749 §4.4, form body,
``invalid_client``/``unsupported_grant_type`` errors). ``POST /{context}/{version}/Document/{op}``
takes the same documents as SOAP, in JSON: bearer token (401 ``invalid_token`` with
``WWW-Authenticate``), ``application/json``, a JSON object valid for the operation (XSD or wire
models, :meth:`LgspContract.json_problem`), duplicates by ``X-Message-ID`` acknowledged.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from hub.simulators.faults import Fault
from hub.simulators.lgsp.contract import LgspContract, RestValidation
from hub.simulators.lgsp.faults import MRESULT_FAULTS, LgspFault, retry_after_headers
from hub.simulators.lgsp.state import LgspState, SimulatorRecord

#: (HTTP status, headers, body) of an answer.
Answer = tuple[int, dict[str, str], bytes]


def json_answer(status: int, body: Any) -> Answer:
    return (
        status,
        {"Content-Type": "application/json; charset=utf-8"},
        json.dumps(body, ensure_ascii=False).encode(),
    )


class RestReject(Exception):
    """A request the LGSP refuses with an HTTP error."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass(frozen=True)
class RestCall:
    """A request that passed every check: what to process."""

    operation: str
    data: dict[str, Any]
    message_id: str
    body: bytes


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str
    token_lifetime_seconds: int = 3600


class RestEndpoint:
    """``/token`` and the REST document operations."""

    def __init__(
        self,
        contract: LgspContract,
        state: LgspState,
        client: OAuthClient,
        validation: RestValidation,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.contract = contract
        self.state = state
        self.client = client
        self.validation = validation
        self._clock = clock

    # --- OAuth2 -----------------------------------------------------------------------------

    def token(self, headers: Any, body: bytes) -> Answer:
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return json_answer(400, {"error": "invalid_request", "error_description": "form body required"})
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return json_answer(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != self.client.client_id or not secrets.compare_digest(
            form.get("client_secret", ""), self.client.client_secret
        ):
            self.state.reject("token: invalid client credentials")
            return json_answer(401, {"error": "invalid_client"})
        value = secrets.token_hex(16)
        lifetime = self.client.token_lifetime_seconds
        with self.state.lock:
            self.state.tokens[value] = self._clock() + lifetime
            self.state.token_count += 1
        return json_answer(
            200, {"access_token": value, "token_type": "Bearer", "expires_in": lifetime, "scope": "default"}
        )

    def expire_tokens(self) -> None:
        """Revoke every issued token (server-side expiry the client cannot predict)."""
        with self.state.lock:
            self.state.tokens.clear()

    # --- document operations ----------------------------------------------------------------

    def check(self, operation: str, headers: Any, body: bytes) -> RestCall:
        """Everything the gateway and the service verify before acting; raises :class:`RestReject`."""
        auth = headers.get("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        with self.state.lock:
            expiry = self.state.tokens.get(value) if scheme.lower() == "bearer" else None
        if expiry is None or expiry < self._clock():
            raise RestReject(
                401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise RestReject(415, {"Status": 0, "Message": f"Content-Type {content_type!r} not supported"})
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RestReject(400, {"Status": 0, "Message": f"malformed JSON: {exc}"}) from None
        if operation not in self.contract.actions:
            raise RestReject(404, {"Status": 0, "Message": f"unknown operation {operation!r}"})
        if not isinstance(data, dict):
            raise RestReject(400, {"Status": 0, "Message": "JSON body must be an object"})
        problem = self.contract.json_problem(operation, data, self.validation)
        if problem is not None:
            raise RestReject(400, {"Status": 0, "Message": f"invalid {operation}: {problem}"})
        return RestCall(operation, data, headers.get("X-Message-ID") or "", body)

    def refuse(self, operation: str, exc: RestReject) -> Answer:
        """The answer to a refused request (recorded as a rejection, never stored)."""
        if exc.status == 401:
            with self.state.lock:
                self.state.unauthorized_count += 1
        self.state.reject(f"REST {operation}: HTTP {exc.status} {exc.body}")
        status, headers, payload = json_answer(exc.status, exc.body)
        return status, {**headers, **exc.headers}, payload

    def answer(self, call: RestCall, fault: Fault | None) -> Answer:
        """Carry out a protocol fault, or process the call."""
        try:
            outcome = self._protocol_fault(fault)
        except RestReject as exc:
            return self.refuse(call.operation, exc)
        if outcome is not None:
            return json_answer(200, {"Status": outcome[0], "Message": outcome[1]})
        return self._process(call)

    def _protocol_fault(self, fault: Fault | None) -> tuple[int, str] | None:
        if fault is None:
            return None
        if fault.kind == LgspFault.SOAP_CLIENT_FAULT:
            raise RestReject(400, {"Status": 0, "Message": "Dữ liệu không hợp lệ (injected)"})
        if fault.kind == LgspFault.SOAP_SERVER_FAULT:
            raise RestReject(
                500, {"Status": 0, "Message": "Hệ thống đang bận (injected)"}, retry_after_headers(fault)
            )
        if fault.kind == LgspFault.EXPIRED_TOKEN:
            self.expire_tokens()
            raise RestReject(
                401,
                {"error": "invalid_token", "error_description": "token expired"},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return MRESULT_FAULTS.get(fault.kind)

    def _process(self, call: RestCall) -> Answer:
        data = call.data
        if call.operation == "GetDocument":
            code = str(data.get("DocCode", ""))
            with self.state.lock:
                document = self.state.documents_json.get(code)
            if document is None:
                return json_answer(
                    200, {"Result": {"Status": 0, "Message": "Không tìm thấy hồ sơ (not found)"}}
                )
            return json_answer(
                200,
                {
                    "Result": {"Status": 1, "Message": "Thành công", "DocumentId": self.state.doc_id(code)},
                    "Document": document,
                },
            )
        if not self.state.first_time("rest", call.message_id) and call.message_id:
            return json_answer(200, {"Status": 1, "Message": "Đã nhận trước đó (duplicate message id)"})
        doc_code = str(data.get("DocCode") or (data.get("Traces") or [{}])[0].get("DocCode", ""))
        record = SimulatorRecord("rest", call.operation, call.message_id, None, call.body, datetime.now(UTC))
        with self.state.lock:
            self.state.records.append(record)
            if call.operation == "SyncDocument":
                self.state.documents_json[doc_code] = data
        return json_answer(
            200, {"Status": 1, "Message": "Thành công", "DocumentId": self.state.doc_id(doc_code)}
        )
